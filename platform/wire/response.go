package wire

import (
	"bytes"
	"encoding/xml"
	"fmt"
)

// Response is a parsed response document.
type Response struct {
	Code    Code
	Message string
	// InfoNamespace is the namespace of the wc:info element, naming the
	// response schema (e.g. urn:com.microsoft.wc.methods.response.PutThings).
	InfoNamespace string
	// Info is the whole wc:info element as received, or nil.
	Info []byte
}

// Err returns the response's status as an *Error, or nil for OK.
func (r *Response) Err() error {
	if r.Code == OK {
		return nil
	}
	return &Error{Code: r.Code, Message: r.Message}
}

// MarshalResponse serializes a successful response whose info element is
// <wc:info xmlns:wc="ns"> holding v's fields as children. A nil v gives a
// response without info.
func MarshalResponse(ns string, v any) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`<response><status><code>0</code></status>`)
	if v != nil {
		start := xml.StartElement{
			Name: xml.Name{Local: "wc:info"},
			Attr: []xml.Attr{{Name: xml.Name{Local: "xmlns:wc"}, Value: ns}},
		}
		if err := xml.NewEncoder(&b).EncodeElement(v, start); err != nil {
			return nil, fmt.Errorf("wire: marshal response info: %w", err)
		}
	}
	b.WriteString(`</response>`)
	return b.Bytes(), nil
}

// MarshalError serializes a failed response: the status code and an
// error/message.
func MarshalError(e *Error) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `<response><status><code>%d</code><error><message>`, int(e.Code))
	_ = xml.EscapeText(&b, []byte(e.Message))
	b.WriteString(`</message></error></status></response>`)
	return b.Bytes()
}

type responseDoc struct {
	XMLName xml.Name `xml:"response"`
	Status  struct {
		Code  int `xml:"code"`
		Error *struct {
			Message string `xml:"message"`
		} `xml:"error"`
	} `xml:"status"`
	Info *struct {
		XMLName xml.Name
		Inner   []byte `xml:",innerxml"`
	} `xml:"info"`
}

// ParseResponse parses a response document. It keeps the info element so
// callers can decode it with UnmarshalInfo.
func ParseResponse(b []byte) (*Response, error) {
	var doc responseDoc
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	if err := d.Decode(&doc); err != nil {
		return nil, fmt.Errorf("wire: response is not a HealthVault response: %w", err)
	}
	r := &Response{Code: Code(doc.Status.Code)}
	if doc.Status.Error != nil {
		r.Message = doc.Status.Error.Message
	}
	if doc.Info != nil {
		r.InfoNamespace = doc.Info.XMLName.Space
		// Rebuild a self-contained info element: the inner bytes are unqualified.
		r.Info = append(append([]byte("<info>"), doc.Info.Inner...), "</info>"...)
	}
	return r, nil
}
