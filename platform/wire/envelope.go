package wire

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"time"
)

// Namespaces of the envelope.
const (
	NamespaceRequest = "urn:com.microsoft.wc.request"
	// ResponseNamespacePrefix starts the namespace of every response info
	// element, e.g. urn:com.microsoft.wc.methods.response.GetThings3.
	ResponseNamespacePrefix = "urn:com.microsoft.wc.methods.response."
	// RequestNamespacePrefix starts the namespace of request info schemas
	// (used only to validate, requests carry no namespace on info).
	RequestNamespacePrefix = "urn:com.microsoft.wc.methods."

	AlgHMACSHA256 = "HMACSHA256"
	AlgSHA256     = "SHA256"

	// Version is what dicomgate's client puts in header/version.
	Version = "dicomgate/1"
)

// MaxDepth bounds element nesting in a request: thing data is a few levels
// deep, and a deeper document is an attack on the parser, not data.
const MaxDepth = 64

// Header is the request header (SPEC §2), in schema order.
type Header struct {
	XMLName        xml.Name     `xml:"header"`
	Method         string       `xml:"method"`
	MethodVersion  int          `xml:"method-version"`
	TargetPersonID string       `xml:"target-person-id,omitempty"`
	RecordID       string       `xml:"record-id,omitempty"`
	AuthSession    *AuthSession `xml:"auth-session,omitempty"`
	AppID          string       `xml:"app-id,omitempty"`
	CultureCode    string       `xml:"culture-code,omitempty"`
	MsgTime        time.Time    `xml:"msg-time"`
	MsgTTL         int          `xml:"msg-ttl"`
	Version        string       `xml:"version"`
	InfoHash       *InfoHash    `xml:"info-hash,omitempty"`
}

// AuthSession carries the session token of an authenticated request.
type AuthSession struct {
	AuthToken         string             `xml:"auth-token"`
	OfflinePersonInfo *OfflinePersonInfo `xml:"offline-person-info,omitempty"`
	UserAuthToken     string             `xml:"user-auth-token,omitempty"`
}

// OfflinePersonInfo names the person an offline application acts for.
type OfflinePersonInfo struct {
	OfflinePersonID string `xml:"offline-person-id"`
}

// HashData is a base64 hash or HMAC with its algorithm name.
type HashData struct {
	AlgName string `xml:"algName,attr"`
	Value   string `xml:",chardata"`
}

// InfoHash is header/info-hash.
type InfoHash struct {
	HashData HashData `xml:"hash-data"`
}

// Auth is the request's auth element.
type Auth struct {
	HMACData HashData `xml:"hmac-data"`
}

// Request is a parsed request envelope. HeaderRaw and InfoRaw are the exact
// bytes of the <header> and <info> elements as sent, which the HMAC and the
// info-hash cover.
type Request struct {
	Auth      *Auth
	Header    Header
	HeaderRaw []byte
	InfoRaw   []byte
}

func invalidXML(format string, args ...any) *Error { return Errorf(InvalidXML, format, args...) }

// ParseRequest parses a request envelope. It refuses DTDs, processing
// instructions other than the XML declaration, nesting deeper than MaxDepth,
// unknown or misordered envelope children, and content outside the root, each
// with an INVALID_XML *Error saying what was wrong. It does not check
// hashes; see VerifyInfoHash and VerifyHMAC.
func ParseRequest(b []byte) (*Request, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	var (
		req       Request
		depth     int
		seenRoot  bool
		childName string
		childOff  int64
		order     = map[string]int{"auth": 0, "header": 1, "info": 2}
		lastOrder = -1
		authRaw   []byte
	)
	for {
		off := d.InputOffset()
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, invalidXML("request is not well-formed XML: %v", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth > MaxDepth {
				return nil, invalidXML("elements nested deeper than %d", MaxDepth)
			}
			switch depth {
			case 1:
				if seenRoot {
					return nil, invalidXML("more than one root element")
				}
				seenRoot = true
				if t.Name.Local != "request" || t.Name.Space != NamespaceRequest {
					return nil, invalidXML("root element is {%s}%s, want {%s}request", t.Name.Space, t.Name.Local, NamespaceRequest)
				}
			case 2:
				o, ok := order[t.Name.Local]
				if !ok || t.Name.Space != "" {
					return nil, invalidXML("unexpected element %q in request (want auth?, header, info)", t.Name.Local)
				}
				if o <= lastOrder {
					return nil, invalidXML("element %q out of order or repeated (want auth?, header, info)", t.Name.Local)
				}
				lastOrder = o
				childName, childOff = t.Name.Local, off
			}
		case xml.EndElement:
			if depth == 2 {
				raw := b[childOff:d.InputOffset()]
				switch childName {
				case "auth":
					authRaw = raw
				case "header":
					req.HeaderRaw = raw
				case "info":
					req.InfoRaw = raw
				}
			}
			depth--
		case xml.CharData:
			if depth <= 1 && len(bytes.TrimSpace(t)) > 0 {
				return nil, invalidXML("text outside the envelope's elements")
			}
		case xml.Directive:
			return nil, invalidXML("DTDs and other directives are not allowed")
		case xml.ProcInst:
			if t.Target != "xml" || off != 0 {
				return nil, invalidXML("processing instruction %q not allowed", t.Target)
			}
		}
	}
	if !seenRoot {
		return nil, invalidXML("empty request")
	}
	if req.HeaderRaw == nil {
		return nil, invalidXML("request has no header")
	}
	if req.InfoRaw == nil {
		return nil, invalidXML("request has no info")
	}
	if err := xml.Unmarshal(req.HeaderRaw, &req.Header); err != nil {
		return nil, invalidXML("header: %v", err)
	}
	if req.Header.Method == "" {
		return nil, invalidXML("header has no method")
	}
	if authRaw != nil {
		req.Auth = new(Auth)
		if err := xml.Unmarshal(authRaw, req.Auth); err != nil {
			return nil, invalidXML("auth: %v", err)
		}
	}
	return &req, nil
}

// InfoHashOf returns base64 SHA-256 of the serialized info element.
func InfoHashOf(info []byte) string {
	s := sha256.Sum256(info)
	return base64.StdEncoding.EncodeToString(s[:])
}

// HMACOf returns base64 HMAC-SHA256 of the serialized header keyed with secret.
func HMACOf(secret, header []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(header)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// ErrHash is wrapped in the BAD_SIG errors of VerifyInfoHash and VerifyHMAC.
var ErrHash = errors.New("wire: hash mismatch")

// VerifyInfoHash checks header/info-hash against the info bytes sent.
func (r *Request) VerifyInfoHash() error {
	ih := r.Header.InfoHash
	if ih == nil {
		return invalidXML("header has no info-hash")
	}
	if ih.HashData.AlgName != AlgSHA256 {
		return Errorf(BadSig, "info-hash algorithm %q not supported (want %s)", ih.HashData.AlgName, AlgSHA256)
	}
	if !hmac.Equal([]byte(ih.HashData.Value), []byte(InfoHashOf(r.InfoRaw))) {
		return Errorf(BadSig, "info-hash does not match the info element sent")
	}
	return nil
}

// VerifyHMAC checks auth/hmac-data over the header bytes with the session's
// shared secret.
func (r *Request) VerifyHMAC(secret []byte) error {
	if r.Auth == nil {
		return Errorf(BadSig, "authenticated request has no auth/hmac-data")
	}
	if r.Auth.HMACData.AlgName != AlgHMACSHA256 {
		return Errorf(BadSig, "HMAC algorithm %q not supported (want %s)", r.Auth.HMACData.AlgName, AlgHMACSHA256)
	}
	if !hmac.Equal([]byte(r.Auth.HMACData.Value), []byte(HMACOf(secret, r.HeaderRaw))) {
		return Errorf(BadSig, "HMAC of the header does not match")
	}
	return nil
}

// BuildRequest serializes a request: it sets h's info-hash over info (the
// complete <info>…</info> element), marshals the header without indentation
// and, when secret is non-nil, adds the HMAC of the header bytes.
func BuildRequest(h Header, info []byte, secret []byte) ([]byte, error) {
	h.InfoHash = &InfoHash{HashData: HashData{AlgName: AlgSHA256, Value: InfoHashOf(info)}}
	hb, err := xml.Marshal(&h)
	if err != nil {
		return nil, fmt.Errorf("wire: marshal header: %w", err)
	}
	var b bytes.Buffer
	b.WriteString(`<wc-request:request xmlns:wc-request="` + NamespaceRequest + `">`)
	if secret != nil {
		b.WriteString(`<auth><hmac-data algName="` + AlgHMACSHA256 + `">` + HMACOf(secret, hb) + `</hmac-data></auth>`)
	}
	b.Write(hb)
	b.Write(info)
	b.WriteString(`</wc-request:request>`)
	return b.Bytes(), nil
}

// MarshalInfo serializes v as an <info> element (v's fields become its
// children); a nil v gives <info/>.
func MarshalInfo(v any) ([]byte, error) {
	if v == nil {
		return []byte("<info/>"), nil
	}
	var b bytes.Buffer
	if err := xml.NewEncoder(&b).EncodeElement(v, xml.StartElement{Name: xml.Name{Local: "info"}}); err != nil {
		return nil, fmt.Errorf("wire: marshal info: %w", err)
	}
	return b.Bytes(), nil
}

// UnmarshalInfo decodes the children of an info element into v. Errors are
// INVALID_XML.
func UnmarshalInfo(info []byte, v any) error {
	if err := xml.Unmarshal(info, v); err != nil {
		return invalidXML("info: %v", err)
	}
	return nil
}
