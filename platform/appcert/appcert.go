// Package appcert handles an application's HealthVault credentials: an
// RSA key pair and self-signed X.509 certificate (as in
// healthvault/docs/connectivity-creating-key-pairs.md), their PEM files, and
// the certificate thumbprint HealthVault uses to name a certificate
// (uppercase hex SHA-1 of the DER bytes).
package appcert

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// File names inside a credentials directory.
const (
	KeyFile  = "app.key"
	CertFile = "app.crt"
	IDFile   = "app.id"
)

// Credentials are what an application needs to authenticate: its id, key
// and certificate.
type Credentials struct {
	AppID string
	Key   *rsa.PrivateKey
	Cert  *x509.Certificate
}

// Thumbprint returns HealthVault's name for a certificate: uppercase hex
// SHA-1 of its DER encoding.
func Thumbprint(cert *x509.Certificate) string {
	s := sha1.Sum(cert.Raw)
	return strings.ToUpper(hex.EncodeToString(s[:]))
}

// Generate makes a 2048-bit RSA key and a self-signed certificate for an
// application named name, valid for validity.
func Generate(name string, validity time.Duration) (*rsa.PrivateKey, *x509.Certificate, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, fmt.Errorf("appcert: generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "WildcatApp-" + name},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("appcert: create certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return key, cert, nil
}

// Save writes c's key (mode 0600), certificate and app id into dir.
func Save(dir string, c *Credentials) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(c.Key)})
	if err := writeFile(filepath.Join(dir, KeyFile), keyPEM, 0o600); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, CertFile), EncodeCert(c.Cert), 0o644); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, IDFile), []byte(c.AppID+"\n"), 0o644); err != nil {
		return err
	}
	// The renames are durable only once the directory is: without this a
	// crash could lose credentials the platform already registered.
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// writeFile writes atomically: a crash leaves the old file or the new one.
func writeFile(path string, b []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// EncodeCert returns the PEM encoding of cert.
func EncodeCert(cert *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
}

// ErrNoCredentials means the directory holds no saved credentials.
var ErrNoCredentials = errors.New("appcert: no credentials")

// Load reads credentials saved by Save.
func Load(dir string) (*Credentials, error) {
	id, err := os.ReadFile(filepath.Join(dir, IDFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w in %s", ErrNoCredentials, dir)
	}
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, KeyFile))
	if err != nil {
		return nil, err
	}
	key, err := ParseKey(keyPEM)
	if err != nil {
		return nil, err
	}
	certPEM, err := os.ReadFile(filepath.Join(dir, CertFile))
	if err != nil {
		return nil, err
	}
	cert, err := ParseCert(certPEM)
	if err != nil {
		return nil, err
	}
	return &Credentials{AppID: strings.TrimSpace(string(id)), Key: key, Cert: cert}, nil
}

// ParseKey parses a PEM RSA private key (PKCS#1 or PKCS#8).
func ParseKey(b []byte) (*rsa.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("appcert: key is not PEM")
	}
	if k, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("appcert: parse key: %w", err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("appcert: key is not RSA")
	}
	return rk, nil
}

// ParseCert parses a PEM or DER X.509 certificate with an RSA key.
func ParseCert(b []byte) (*x509.Certificate, error) {
	if blk, _ := pem.Decode(b); blk != nil {
		b = blk.Bytes
	}
	cert, err := x509.ParseCertificate(b)
	if err != nil {
		return nil, fmt.Errorf("appcert: parse certificate: %w", err)
	}
	if _, ok := cert.PublicKey.(*rsa.PublicKey); !ok {
		return nil, errors.New("appcert: certificate key is not RSA")
	}
	return cert, nil
}
