package thing

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

func testKey(t *testing.T) (*rsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "signer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return key, cert
}

func sample() *Thing {
	n := int64(3)
	t := &Thing{Type: &TypeID{ID: "c75651c8-548e-449f-8942-9e6379b0b88a"}}
	t.SetData([]byte(`<medical-image-study><when b="2" a="1">x &amp; y</when><empty></empty>
  <study-instance-uid>1.2.3</study-instance-uid></medical-image-study><common/>`))
	t.SetBlob(Blob{Info: BlobInfo{Name: "img", ContentType: "application/dicom",
		HashInfo: &HashInfo{Algorithm: HashAlgorithmSHA256Block, Params: &HashParams{BlockSize: 4194304}, Hash: "q1w2e3=="}},
		ContentLength: &n, RefURL: "http://x/streaming/wildcatblob.ashx?blob-ref-token=t"})
	return t
}

func TestSignVerifyRoundTrip(t *testing.T) {
	key, cert := testKey(t)
	for _, h := range []crypto.Hash{crypto.SHA256, crypto.SHA1} {
		th := sample()
		if err := Sign(th, key, cert, h); err != nil {
			t.Fatal(err)
		}
		// Through the wire and back.
		b, err := th.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		back, err := Unmarshal(b)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Verify(back)
		if err != nil {
			t.Fatalf("%v: %v\n%s", h, err, b)
		}
		if !got.Equal(cert) {
			t.Fatal("wrong certificate")
		}

		tampered := []func(*Thing){
			func(t *Thing) { t.Data[0].Inner = bytes.Replace(t.Data[0].Inner, []byte("1.2.3"), []byte("1.2.4"), 1) },
			func(t *Thing) { t.BlobPayload.Blobs[0].Info.HashInfo.Hash = "other==" },
			func(t *Thing) { t.BlobPayload.Blobs = nil },
			func(t *Thing) { t.SignatureInfo.SigData.AlgorithmTag = "x" },
			func(t *Thing) {
				t.SignatureInfo.Signature.Inner = bytes.Replace(t.SignatureInfo.Signature.Inner, []byte("<SignatureValue>"), []byte("<SignatureValue>AAAA"), 1)
			},
		}
		for i, tamper := range tampered {
			x, _ := Unmarshal(b)
			tamper(x)
			if _, err := Verify(x); !errors.Is(err, ErrBadSignature) {
				t.Errorf("%v tamper %d: %v", h, i, err)
			}
		}
	}
}

func TestSignNeedsBlobHashes(t *testing.T) {
	key, cert := testKey(t)
	th := sample()
	th.BlobPayload.Blobs[0].Info.HashInfo = nil
	if err := Sign(th, key, cert, 0); !errors.Is(err, ErrUnsignable) {
		t.Fatalf("err = %v", err)
	}
	if _, err := Verify(sample()); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("unsigned thing: %v", err)
	}
}

// TestCanonicalFormMatchesLibxml2 checks the C14N of signed-thing-data
// against libxml2's (xmllint --c14n), an independent implementation.
func TestCanonicalFormMatchesLibxml2(t *testing.T) {
	xmllint, err := exec.LookPath("xmllint")
	if err != nil {
		if os.Getenv("DICOMGATE_REQUIRE_PEERS") == "1" {
			t.Fatal("xmllint required")
		}
		t.Skip("xmllint not installed")
	}
	key, cert := testKey(t)
	th := sample()
	if err := Sign(th, key, cert, 0); err != nil {
		t.Fatal(err)
	}
	ours, err := signedThingData(th)
	if err != nil {
		t.Fatal(err)
	}
	// The uncanonical document, as the XSLT would produce it.
	var raw bytes.Buffer
	raw.WriteString(`<hv:signed-thing-data xmlns:hv="` + NamespaceSigning2 + `"><data-xml>`)
	raw.Write(th.Data[0].Inner)
	raw.WriteString(`</data-xml>`)
	b, _ := th.Marshal()
	start := bytes.Index(b, []byte("<sig-data>"))
	end := bytes.Index(b, []byte("</sig-data>")) + len("</sig-data>")
	raw.Write(b[start:end])
	raw.WriteString(`</hv:signed-thing-data>`)
	p := filepath.Join(t.TempDir(), "std.xml")
	if err := os.WriteFile(p, raw.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	theirs, err := exec.Command(xmllint, "--c14n", p).Output()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ours, theirs) {
		t.Fatalf("C14N differs:\nours:   %s\nlibxml2: %s", ours, theirs)
	}
}

// FuzzVerify feeds untrusted thing XML (as PutThings receives it) to
// Unmarshal and Verify.
func FuzzVerify(f *testing.F) {
	f.Add([]byte(`<thing><signature-info><sig-data><hv-signature-method>HVSignatureMethod2</hv-signature-method><algorithm-tag>RSA-SHA256</algorithm-tag></sig-data>` +
		`<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignedInfo><Reference URI=""/></SignedInfo></Signature></signature-info></thing>`))
	f.Add([]byte(`<thing><data-xml><a/></data-xml></thing>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		th, err := Unmarshal(b)
		if err != nil {
			return
		}
		if _, err := Verify(th); err == nil {
			t.Fatal("unsigned fuzz input verified")
		}
	})
}
