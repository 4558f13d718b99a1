package appcert

import (
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSaveLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "creds")
	if _, err := Load(dir); !errors.Is(err, ErrNoCredentials) {
		t.Fatalf("empty dir: %v", err)
	}
	key, cert, err := Generate("gateway", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := Save(dir, &Credentials{AppID: "app-1", Key: key, Cert: cert}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, KeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi.Mode(), err)
	}
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.AppID != "app-1" || !got.Cert.Equal(cert) || !got.Key.Equal(key) {
		t.Fatal("loaded credentials differ")
	}
}

func TestThumbprint(t *testing.T) {
	_, cert, err := Generate("x", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s := sha1.Sum(cert.Raw)
	if got := Thumbprint(cert); got != strings.ToUpper(hex.EncodeToString(s[:])) || len(got) != 40 {
		t.Fatalf("thumbprint %s", got)
	}
}

func TestParse(t *testing.T) {
	key, cert, err := Generate("x", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	k, err := ParseKey(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err != nil || !k.Equal(key) {
		t.Fatalf("PKCS#8: %v", err)
	}
	if _, err := ParseKey([]byte("not pem")); err == nil {
		t.Fatal("garbage key accepted")
	}
	for _, in := range [][]byte{EncodeCert(cert), cert.Raw} {
		c, err := ParseCert(in)
		if err != nil || !c.Equal(cert) {
			t.Fatalf("ParseCert: %v", err)
		}
	}
	if _, err := ParseCert([]byte("junk")); err == nil {
		t.Fatal("garbage certificate accepted")
	}
}
