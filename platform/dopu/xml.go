package dopu

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// MaxDataXMLSize bounds the data-xml UnmarshalDataXML accepts. A genuine
// one is a few hundred bytes.
const MaxDataXMLSize = 16 << 10

// Package is a Password Protected Package: the data-xml fields of
// password-protected-package.xsd plus the ciphertext, which travels as the
// thing's inline blob (base64data, content type BlobContentType, empty
// name).
type Package struct {
	Algorithm      Algorithm
	Salt           string // the salt string; its UTF-8 bytes are the salt
	IterationCount int
	KeyLength      int // bits
	Ciphertext     []byte
}

// FormatError describes why a package's data-xml or parameters were
// refused. It wraps ErrMalformedPackage, or ErrUnsupportedAlgorithm for an
// unknown algorithm.
type FormatError struct {
	Field  string // element (path) or parameter concerned
	Reason string
	Err    error // ErrMalformedPackage unless set
}

func (e *FormatError) Error() string {
	return "dopu: password-protected-package " + e.Field + ": " + e.Reason
}

// Unwrap returns the sentinel the error belongs to.
func (e *FormatError) Unwrap() error {
	if e.Err != nil {
		return e.Err
	}
	return ErrMalformedPackage
}

// check validates the parameters used to derive a key.
func (p *Package) check() error {
	if _, err := algParams(p.Algorithm); err != nil {
		return &FormatError{Field: "algorithm-name", Reason: fmt.Sprintf("%q not supported", string(p.Algorithm)), Err: ErrUnsupportedAlgorithm}
	}
	if !keyLengthOK(p.Algorithm, p.KeyLength) {
		return &FormatError{Field: "key-length", Reason: fmt.Sprintf("%d bits does not match %s", p.KeyLength, p.Algorithm), Err: ErrUnsupportedAlgorithm}
	}
	if p.Salt == "" || len(p.Salt) > MaxSaltLength {
		return &FormatError{Field: "salt", Reason: fmt.Sprintf("length %d outside 1..%d", len(p.Salt), MaxSaltLength)}
	}
	if p.IterationCount < 1 || p.IterationCount > MaxIterations {
		return &FormatError{Field: "iteration-count", Reason: fmt.Sprintf("%d outside 1..%d", p.IterationCount, MaxIterations)}
	}
	return nil
}

// MarshalDataXML returns the thing's data-xml content:
// <password-protected-package><encrypt-algorithm><algorithm-name>…
// <parameters><salt>…</salt><iteration-count>…</iteration-count>
// <key-length>…</key-length></parameters></encrypt-algorithm>
// </password-protected-package>, with no namespace (HealthVault wire form).
// It refuses parameters that Open would refuse.
func (p *Package) MarshalDataXML() ([]byte, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString("<password-protected-package><encrypt-algorithm><algorithm-name>")
	b.WriteString(string(p.Algorithm)) // one of the schema's enumeration values
	b.WriteString("</algorithm-name><parameters><salt>")
	if err := xml.EscapeText(&b, []byte(p.Salt)); err != nil {
		return nil, err
	}
	b.WriteString("</salt><iteration-count>")
	b.WriteString(strconv.Itoa(p.IterationCount))
	b.WriteString("</iteration-count><key-length>")
	b.WriteString(strconv.Itoa(p.KeyLength))
	b.WriteString("</key-length></parameters></encrypt-algorithm></password-protected-package>")
	return b.Bytes(), nil
}

// UnmarshalDataXML parses a thing's data-xml content into a Package
// (Ciphertext left nil: it comes from the thing's blob). The root element
// may carry no namespace (wire form) or Namespace. Element order and
// cardinality follow password-protected-package.xsd; anything else is a
// *FormatError. Input is bounded by MaxDataXMLSize; DTDs are refused.
func UnmarshalDataXML(data []byte) (*Package, error) {
	if len(data) > MaxDataXMLSize {
		return nil, &FormatError{Field: "data-xml", Reason: fmt.Sprintf("%d bytes exceeds %d", len(data), MaxDataXMLSize)}
	}
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	p := &parser{d: d}
	pkg, err := p.document()
	if err != nil {
		var fe *FormatError
		if errors.As(err, &fe) {
			return nil, err
		}
		return nil, &FormatError{Field: "data-xml", Reason: err.Error()}
	}
	return pkg, nil
}

// parser is a small pull parser over the schema's fixed structure.
type parser struct {
	d *xml.Decoder
}

// next returns the next start or end element, skipping whitespace,
// comments and the XML declaration; text other than whitespace, DTDs and
// processing instructions are errors.
func (p *parser) next() (xml.Token, error) {
	for {
		tok, err := p.d.Token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement, xml.EndElement:
			return t, nil
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return nil, &FormatError{Field: "data-xml", Reason: "unexpected text"}
			}
		case xml.Comment:
		case xml.ProcInst:
			if t.Target != "xml" {
				return nil, &FormatError{Field: "data-xml", Reason: "processing instruction"}
			}
		case xml.Directive:
			return nil, &FormatError{Field: "data-xml", Reason: "DTD or directive not allowed"}
		}
	}
}

// start expects <name> (with namespace ns, "" for unqualified).
func (p *parser) start(name string, nsOK func(string) bool) error {
	tok, err := p.next()
	if err != nil {
		return err
	}
	se, ok := tok.(xml.StartElement)
	if !ok || se.Name.Local != name || !nsOK(se.Name.Space) {
		return &FormatError{Field: name, Reason: "expected element " + name + ", got " + describe(tok)}
	}
	return nil
}

func (p *parser) end(name string) error {
	tok, err := p.next()
	if err != nil {
		return err
	}
	if _, ok := tok.(xml.EndElement); !ok {
		return &FormatError{Field: name, Reason: "unexpected " + describe(tok) + " in " + name}
	}
	return nil
}

func unqualified(ns string) bool { return ns == "" }

// text reads the character content of a simple element whose start tag has
// been consumed, up to and including its end tag.
func (p *parser) text(name string) (string, error) {
	var sb strings.Builder
	for {
		tok, err := p.d.Token()
		if err != nil {
			return "", err
		}
		switch t := tok.(type) {
		case xml.CharData:
			sb.Write(t)
		case xml.Comment:
		case xml.EndElement:
			return sb.String(), nil
		default:
			return "", &FormatError{Field: name, Reason: "unexpected " + describe(tok) + " in " + name}
		}
	}
}

func (p *parser) simple(name string) (string, error) {
	if err := p.start(name, unqualified); err != nil {
		return "", err
	}
	return p.text(name)
}

func (p *parser) intElem(name string) (int, error) {
	s, err := p.simple(name)
	if err != nil {
		return 0, err
	}
	s = strings.TrimSpace(s) // xs:int collapses whitespace
	if name == "iteration-count" && s == "" {
		return DefaultIterations, nil // the schema's default="20000"
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, &FormatError{Field: name, Reason: "not an xs:int"}
	}
	return int(n), nil
}

func (p *parser) document() (*Package, error) {
	if err := p.start("password-protected-package", func(ns string) bool { return ns == "" || ns == Namespace }); err != nil {
		return nil, err
	}
	if err := p.start("encrypt-algorithm", unqualified); err != nil {
		return nil, err
	}
	name, err := p.simple("algorithm-name")
	if err != nil {
		return nil, err
	}
	pkg := &Package{Algorithm: Algorithm(strings.TrimSpace(name))}
	switch pkg.Algorithm {
	case None, HMACSHA13DES, HMACSHA256AES256:
	default:
		return nil, &FormatError{Field: "algorithm-name", Reason: "not in the schema's enumeration", Err: ErrUnsupportedAlgorithm}
	}
	// parameters is optional (minOccurs="0").
	tok, err := p.next()
	if err != nil {
		return nil, err
	}
	if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "parameters" && se.Name.Space == "" {
		if pkg.Salt, err = p.simple("salt"); err != nil {
			return nil, err
		}
		if len(pkg.Salt) > MaxSaltLength {
			return nil, &FormatError{Field: "salt", Reason: "too long"}
		}
		if pkg.IterationCount, err = p.intElem("iteration-count"); err != nil {
			return nil, err
		}
		if pkg.KeyLength, err = p.intElem("key-length"); err != nil {
			return nil, err
		}
		if err := p.end("parameters"); err != nil {
			return nil, err
		}
		if tok, err = p.next(); err != nil {
			return nil, err
		}
	}
	if _, ok := tok.(xml.EndElement); !ok { // </encrypt-algorithm>
		return nil, &FormatError{Field: "encrypt-algorithm", Reason: "unexpected " + describe(tok)}
	}
	if err := p.end("password-protected-package"); err != nil {
		return nil, err
	}
	// Nothing but whitespace, comments or the XML declaration may follow.
	tok, err = p.next()
	if errors.Is(err, io.EOF) {
		return pkg, nil
	}
	if err != nil {
		return nil, err
	}
	return nil, &FormatError{Field: "data-xml", Reason: "content after the root element: " + describe(tok)}
}

func describe(tok xml.Token) string {
	switch t := tok.(type) {
	case xml.StartElement:
		return "element " + t.Name.Local
	case xml.EndElement:
		return "end of " + t.Name.Local
	}
	return "token"
}
