package thing

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	_ "crypto/sha1"   // crypto.SHA1 of legacy RSA-SHA1 signatures
	_ "crypto/sha256" // crypto.SHA256
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
)

// XML-DSig identifiers used by HealthVault thing signatures (SPEC §8).
const (
	NamespaceDSig       = "http://www.w3.org/2000/09/xmldsig#"
	NamespaceSigning2   = "urn:com.microsoft.wc.thing.signing.2.xsl"
	AlgC14N             = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
	AlgXSLT             = "http://www.w3.org/TR/1999/REC-xslt-19991116"
	AlgRSASHA256        = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
	AlgRSASHA1          = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
	AlgDigestSHA256     = "http://www.w3.org/2001/04/xmlenc#sha256"
	AlgDigestSHA1       = "http://www.w3.org/2000/09/xmldsig#sha1"
	algorithmTagSHA256  = "RSA-SHA256"
	algorithmTagSHA1    = "RSA-SHA1"
	maxSignatureXMLSize = 64 << 10
)

// signingStylesheet is the XSLT named in the first Reference transform. It
// reduces a thing to hv:signed-thing-data; Verify and Sign do not run it but
// build the same document directly (see signedThingData).
const signingStylesheet = `<xsl:stylesheet xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:hv="` + NamespaceSigning2 + `" version="1.0">` +
	`<xsl:template match="/"><hv:signed-thing-data><xsl:copy-of select="thing/data-xml"/>` +
	`<xsl:copy-of select="thing/signature-info/sig-data"/></hv:signed-thing-data></xsl:template></xsl:stylesheet>`

// ErrBadSignature is returned (wrapped) by Verify when a thing's signature
// does not verify; the server answers it with BAD_SIG.
var ErrBadSignature = errors.New("thing: bad signature")

// ErrUnsignable is returned by Sign when the thing cannot be signed, e.g. a
// blob without hash-info.
var ErrUnsignable = errors.New("thing: cannot sign")

// Sign signs t with HVSignatureMethod2 (SPEC §8): it fills
// t.SignatureInfo with sig-data listing every blob's hash-info, in blob order,
// and an enveloped XML-DSig signature over data-xml and sig-data. h is
// crypto.SHA256 (the default when 0) or crypto.SHA1 (HealthVault's legacy
// choice). Every blob must carry its SHA256Block hash-info; the blob bytes
// are covered through those hashes. cert is embedded as X509Data.
func Sign(t *Thing, key *rsa.PrivateKey, cert *x509.Certificate, h crypto.Hash) error {
	if h == 0 {
		h = crypto.SHA256
	}
	sigAlg, digestAlg, tag, err := algorithms(h)
	if err != nil {
		return err
	}
	sd := SigData{Method: SignatureMethod2, AlgorithmTag: tag}
	if t.BlobPayload != nil && len(t.BlobPayload.Blobs) > 0 {
		bsi := &BlobSignatureInfo{}
		for _, b := range t.BlobPayload.Blobs {
			if b.Info.HashInfo == nil {
				return fmt.Errorf("%w: blob %q has no hash-info", ErrUnsignable, b.Info.Name)
			}
			info := b.Info
			hi := *info.HashInfo
			info.HashInfo = &hi
			bsi.Items = append(bsi.Items, BlobSignatureItem{BlobInfo: info})
		}
		sd.BlobSignatureInfo = bsi
	}
	t.SignatureInfo = &SignatureInfo{SigData: sd}

	canon, err := signedThingData(t)
	if err != nil {
		return err
	}
	digest := hashBytes(h, canon)

	signedInfo := `<SignedInfo xmlns="` + NamespaceDSig + `">` +
		`<CanonicalizationMethod Algorithm="` + AlgC14N + `"/>` +
		`<SignatureMethod Algorithm="` + sigAlg + `"/>` +
		`<Reference URI=""><Transforms>` +
		`<Transform Algorithm="` + AlgXSLT + `">` + signingStylesheet + `</Transform>` +
		`<Transform Algorithm="` + AlgC14N + `"/>` +
		`</Transforms><DigestMethod Algorithm="` + digestAlg + `"/>` +
		`<DigestValue>` + base64.StdEncoding.EncodeToString(digest) + `</DigestValue>` +
		`</Reference></SignedInfo>`
	siCanon, err := canonicalize([]byte(signedInfo))
	if err != nil {
		return err
	}
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, h, hashBytes(h, siCanon))
	if err != nil {
		return fmt.Errorf("thing: sign: %w", err)
	}
	inner := signedInfo +
		`<SignatureValue>` + base64.StdEncoding.EncodeToString(sig) + `</SignatureValue>` +
		`<KeyInfo><X509Data><X509Certificate>` + base64.StdEncoding.EncodeToString(cert.Raw) +
		`</X509Certificate></X509Data></KeyInfo>`
	t.SignatureInfo.Signature = &RawElement{
		XMLName: xml.Name{Space: NamespaceDSig, Local: "Signature"},
		Inner:   []byte(inner),
	}
	return nil
}

// Verify checks t's HVSignatureMethod2 signature: that sig-data lists exactly
// the thing's blobs with their current hash-info, that the reference digest
// matches the canonical signed-thing-data, and that the RSA signature over
// SignedInfo verifies with the embedded certificate (RSA-SHA256 or RSA-SHA1).
// It returns that certificate. Whether the certificate is trusted is the
// caller's decision. Every failure wraps ErrBadSignature.
func Verify(t *Thing) (*x509.Certificate, error) {
	si := t.SignatureInfo
	if si == nil || si.Signature == nil {
		return nil, fmt.Errorf("%w: no signature", ErrBadSignature)
	}
	if si.SigData.Method != SignatureMethod2 {
		return nil, fmt.Errorf("%w: signature method %q is not %s", ErrBadSignature, si.SigData.Method, SignatureMethod2)
	}
	if err := checkBlobCoverage(t); err != nil {
		return nil, err
	}
	if len(si.Signature.Inner) > maxSignatureXMLSize {
		return nil, fmt.Errorf("%w: Signature element too large", ErrBadSignature)
	}
	doc := etree.NewDocument()
	raw := `<Signature xmlns="` + NamespaceDSig + `">` + string(si.Signature.Inner) + `</Signature>`
	if err := doc.ReadFromString(raw); err != nil {
		return nil, fmt.Errorf("%w: Signature is not well-formed: %v", ErrBadSignature, err)
	}
	sigEl := doc.Root()
	signedInfo := child(sigEl, "SignedInfo")
	if signedInfo == nil {
		return nil, fmt.Errorf("%w: no SignedInfo", ErrBadSignature)
	}
	if a := attr(child(signedInfo, "CanonicalizationMethod"), "Algorithm"); a != AlgC14N {
		return nil, fmt.Errorf("%w: canonicalization %q not supported", ErrBadSignature, a)
	}
	var h crypto.Hash
	switch a := attr(child(signedInfo, "SignatureMethod"), "Algorithm"); a {
	case AlgRSASHA256:
		h = crypto.SHA256
	case AlgRSASHA1:
		h = crypto.SHA1
	default:
		return nil, fmt.Errorf("%w: signature method %q not supported", ErrBadSignature, a)
	}
	refs := children(signedInfo, "Reference")
	if len(refs) != 1 || attr(refs[0], "URI") != "" {
		return nil, fmt.Errorf("%w: want exactly one Reference with URI=\"\"", ErrBadSignature)
	}
	ref := refs[0]
	transforms := children(child(ref, "Transforms"), "Transform")
	if len(transforms) != 2 || attr(transforms[0], "Algorithm") != AlgXSLT || attr(transforms[1], "Algorithm") != AlgC14N {
		return nil, fmt.Errorf("%w: transforms must be the signing XSLT then inclusive C14N", ErrBadSignature)
	}
	var dh crypto.Hash
	switch a := attr(child(ref, "DigestMethod"), "Algorithm"); a {
	case AlgDigestSHA256:
		dh = crypto.SHA256
	case AlgDigestSHA1:
		dh = crypto.SHA1
	default:
		return nil, fmt.Errorf("%w: digest method %q not supported", ErrBadSignature, a)
	}
	wantDigest, err := base64.StdEncoding.DecodeString(strings.TrimSpace(text(child(ref, "DigestValue"))))
	if err != nil {
		return nil, fmt.Errorf("%w: DigestValue is not base64", ErrBadSignature)
	}
	canon, err := signedThingData(t)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	if !bytes.Equal(hashBytes(dh, canon), wantDigest) {
		return nil, fmt.Errorf("%w: digest of data-xml and sig-data does not match", ErrBadSignature)
	}
	certB64 := text(child(child(child(sigEl, "KeyInfo"), "X509Data"), "X509Certificate"))
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(certB64), ""))
	if err != nil || len(der) == 0 {
		return nil, fmt.Errorf("%w: no X509Certificate in KeyInfo", ErrBadSignature)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%w: certificate: %v", ErrBadSignature, err)
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: certificate key is not RSA", ErrBadSignature)
	}
	sigValue, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(text(child(sigEl, "SignatureValue"))), ""))
	if err != nil {
		return nil, fmt.Errorf("%w: SignatureValue is not base64", ErrBadSignature)
	}
	detached := signedInfo.Copy()
	if detached.SelectAttr("xmlns") == nil {
		detached.CreateAttr("xmlns", NamespaceDSig)
	}
	siCanon, err := dsig.MakeC14N10RecCanonicalizer().Canonicalize(detached)
	if err != nil {
		return nil, fmt.Errorf("%w: canonicalize SignedInfo: %v", ErrBadSignature, err)
	}
	if err := rsa.VerifyPKCS1v15(pub, h, hashBytes(h, siCanon), sigValue); err != nil {
		return nil, fmt.Errorf("%w: RSA signature does not verify", ErrBadSignature)
	}
	return cert, nil
}

// checkBlobCoverage makes sure sig-data names every blob of the thing, in
// order, with the hash-info the blob carries now: a blob swapped after signing
// changes its hash and so fails here.
func checkBlobCoverage(t *Thing) error {
	var blobs []Blob
	if t.BlobPayload != nil {
		blobs = t.BlobPayload.Blobs
	}
	var items []BlobSignatureItem
	if bsi := t.SignatureInfo.SigData.BlobSignatureInfo; bsi != nil {
		items = bsi.Items
	}
	if len(items) != len(blobs) {
		return fmt.Errorf("%w: signature covers %d blobs, thing has %d", ErrBadSignature, len(items), len(blobs))
	}
	for i, b := range blobs {
		s := items[i].BlobInfo
		if s.Name != b.Info.Name {
			return fmt.Errorf("%w: blob %d is %q, signature lists %q", ErrBadSignature, i, b.Info.Name, s.Name)
		}
		if b.Info.HashInfo == nil || s.HashInfo == nil {
			return fmt.Errorf("%w: blob %q has no hash-info", ErrBadSignature, b.Info.Name)
		}
		bh, sh := b.Info.HashInfo, s.HashInfo
		if bh.Algorithm != sh.Algorithm || bh.BlockSize() != sh.BlockSize() || bh.Hash != sh.Hash {
			return fmt.Errorf("%w: hash of blob %q differs from the signed hash", ErrBadSignature, b.Info.Name)
		}
	}
	return nil
}

// signedThingData builds what the signing XSLT yields for t (the
// hv:signed-thing-data element with copies of data-xml and sig-data) and
// returns its inclusive C14N form.
func signedThingData(t *Thing) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`<hv:signed-thing-data xmlns:hv="` + NamespaceSigning2 + `">`)
	for i := range t.Data {
		t.Data[i].WriteElement(&b)
	}
	sd, err := xml.Marshal(struct {
		XMLName xml.Name `xml:"sig-data"`
		SigData
	}{SigData: t.SignatureInfo.SigData})
	if err != nil {
		return nil, fmt.Errorf("thing: marshal sig-data: %w", err)
	}
	b.Write(sd)
	b.WriteString(`</hv:signed-thing-data>`)
	return canonicalize(b.Bytes())
}

func canonicalize(doc []byte) ([]byte, error) {
	d := etree.NewDocument()
	if err := d.ReadFromBytes(doc); err != nil {
		return nil, fmt.Errorf("thing: parse for canonicalization: %w", err)
	}
	if d.Root() == nil {
		return nil, errors.New("thing: nothing to canonicalize")
	}
	out, err := dsig.MakeC14N10RecCanonicalizer().Canonicalize(d.Root())
	if err != nil {
		return nil, fmt.Errorf("thing: canonicalize: %w", err)
	}
	return out, nil
}

func algorithms(h crypto.Hash) (sig, digest, tag string, err error) {
	switch h {
	case crypto.SHA256:
		return AlgRSASHA256, AlgDigestSHA256, algorithmTagSHA256, nil
	case crypto.SHA1:
		return AlgRSASHA1, AlgDigestSHA1, algorithmTagSHA1, nil
	}
	return "", "", "", fmt.Errorf("%w: hash %v not supported (SHA-256 or SHA-1)", ErrUnsignable, h)
}

// hashBytes returns the h digest of b; h is SHA-256 or SHA-1 (see algorithms).
func hashBytes(h crypto.Hash, b []byte) []byte {
	d := h.New()
	d.Write(b)
	return d.Sum(nil)
}

func child(el *etree.Element, local string) *etree.Element {
	if el == nil {
		return nil
	}
	for _, c := range el.ChildElements() {
		if c.Tag == local {
			return c
		}
	}
	return nil
}

func children(el *etree.Element, local string) []*etree.Element {
	if el == nil {
		return nil
	}
	var out []*etree.Element
	for _, c := range el.ChildElements() {
		if c.Tag == local {
			out = append(out, c)
		}
	}
	return out
}

func attr(el *etree.Element, name string) string {
	if el == nil {
		return "\x00missing"
	}
	return el.SelectAttrValue(name, "\x00missing")
}

func text(el *etree.Element) string {
	if el == nil {
		return ""
	}
	return el.Text()
}
