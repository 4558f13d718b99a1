// Package thing holds HealthVault's thing2 data model (urn:com.microsoft.wc.thing,
// healthvault/xsd/thing.xsd) as Go types that marshal to and from the exact
// element names and order of the Thing2 schema type, plus the SHA256Block
// blob hash description (hash-info) and HealthVault thing signatures
// (HVSignatureMethod2, see Sign and Verify).
//
// HealthVault puts no namespace on thing children, so neither do these types.
// Type-specific XML inside data-xml is kept as the raw bytes received, so a
// thing read back is byte-for-byte what was written (which signatures need).
package thing

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"time"
)

// Well-known values used on the wire.
const (
	// StateActive is the thing-state of a live thing.
	StateActive = "Active"
	// StateDeleted is the thing-state of a removed thing.
	StateDeleted = "Deleted"

	// HashAlgorithmSHA256Block names the blob hash of SPEC §4.
	HashAlgorithmSHA256Block = "SHA256Block"

	// SignatureMethod2 is the only thing signature method dicomgate writes or accepts.
	SignatureMethod2 = "HVSignatureMethod2"
)

// Key identifies one version of a thing (wc-thing:ThingKey): the thing id as
// text and the version stamp as attribute.
type Key struct {
	ID           string `xml:",chardata"`
	VersionStamp string `xml:"version-stamp,attr"`
}

// TypeID names a thing type (wc-thing:ThingType).
type TypeID struct {
	ID   string `xml:",chardata"`
	Name string `xml:"name,attr,omitempty"`
}

// NamedID is a guid with a display name (wc-thing:GuidAndName).
type NamedID struct {
	ID   string `xml:",chardata"`
	Name string `xml:"name,attr"`
}

// Audit says who created or last updated a thing and when (wc-thing:Audit2).
type Audit struct {
	Timestamp    time.Time `xml:"timestamp"`
	AppID        NamedID   `xml:"app-id"`
	PersonID     NamedID   `xml:"person-id"`
	AccessAvenue string    `xml:"access-avenue,omitempty"`
	AuditAction  string    `xml:"audit-action"`
}

// DataXML is one data-xml element. Inner holds its content (the type's root
// element and an optional common element) exactly as it was received.
type DataXML struct {
	Transform string `xml:"transform,attr,omitempty"`
	Inner     []byte `xml:",innerxml"`
}

// WriteElement writes d to b as a data-xml element holding its content as
// received: how a thing's data-xml is stored and how it is signed.
func (d *DataXML) WriteElement(b *bytes.Buffer) {
	b.WriteString("<data-xml")
	if d.Transform != "" {
		b.WriteString(` transform="`)
		xml.EscapeText(b, []byte(d.Transform)) // a bytes.Buffer does not fail
		b.WriteString(`"`)
	}
	b.WriteString(">")
	b.Write(d.Inner)
	b.WriteString("</data-xml>")
}

// HashParams carries the parameters of a blob hash algorithm
// (wc-types:BlobHashAlgorithmParameters).
type HashParams struct {
	BlockSize int64 `xml:"block-size,omitempty"`
}

// HashInfo describes a blob's hash (wc-thing:BlobHashInfo). For SHA256Block,
// Hash is the base64 root hash and Params.BlockSize the block size.
type HashInfo struct {
	Algorithm string      `xml:"algorithm"`
	Params    *HashParams `xml:"params,omitempty"`
	Hash      string      `xml:"hash"`
}

// SHA256BlockInfo is the hash-info of a blob whose SHA256Block root hash
// over blocks of blockSize bytes is root (base64).
func SHA256BlockInfo(blockSize int64, root string) *HashInfo {
	return &HashInfo{Algorithm: HashAlgorithmSHA256Block, Params: &HashParams{BlockSize: blockSize}, Hash: root}
}

// BlockSize returns the SHA256Block block size, or 0 when none is given.
func (h *HashInfo) BlockSize() int64 {
	if h == nil || h.Params == nil {
		return 0
	}
	return h.Params.BlockSize
}

// BlobInfo names a blob and says what it holds (wc-thing:BlobInfo). The
// empty name is the thing's default blob.
type BlobInfo struct {
	Name        string    `xml:"name"`
	ContentType string    `xml:"content-type"`
	HashInfo    *HashInfo `xml:"hash-info,omitempty"`
}

// Blob is one blob of a blob-payload (wc-thing:BlobPayloadItem): either
// inline (Base64Data) or streamed (RefURL).
type Blob struct {
	Info            BlobInfo `xml:"blob-info"`
	ContentLength   *int64   `xml:"content-length,omitempty"`
	Base64Data      string   `xml:"base64data,omitempty"`
	RefURL          string   `xml:"blob-ref-url,omitempty"`
	LegacyEncoding  string   `xml:"legacy-content-encoding,omitempty"`
	CurrentEncoding string   `xml:"current-content-encoding,omitempty"`
}

// Length returns the content length, or -1 when absent.
func (b *Blob) Length() int64 {
	if b.ContentLength == nil {
		return -1
	}
	return *b.ContentLength
}

// BlobPayload lists a thing's blobs (wc-thing:BlobPayload).
type BlobPayload struct {
	Blobs []Blob `xml:"blob"`
}

// EffPermissions lists what the caller may do with a thing.
type EffPermissions struct {
	Immutable   *bool    `xml:"immutable,attr,omitempty"`
	Permissions []string `xml:"permission"`
}

// BlobSignatureItem is one item of blob-signature-info.
type BlobSignatureItem struct {
	BlobInfo BlobInfo `xml:"blob-info"`
}

// BlobSignatureInfo lists the blobs a signature covers, in blob order.
type BlobSignatureInfo struct {
	Items []BlobSignatureItem `xml:"item"`
}

// SigData is the signed part of signature-info (wc-thing:SignatureData).
type SigData struct {
	Method            string             `xml:"hv-signature-method"`
	BlobSignatureInfo *BlobSignatureInfo `xml:"blob-signature-info,omitempty"`
	AlgorithmTag      string             `xml:"algorithm-tag"`
}

// RawElement keeps an element whose content dicomgate does not model (the
// XML-DSig Signature): its name and its content as received. Its own
// attributes are not kept (the namespace comes back from the name), so the
// content must not use prefixes declared on the element itself.
type RawElement struct {
	XMLName xml.Name
	Inner   []byte `xml:",innerxml"`
}

// SignatureInfo is a thing's signature (wc-thing:SignatureInfo): sig-data and
// an enveloped XML-DSig Signature.
type SignatureInfo struct {
	SigData   SigData     `xml:"sig-data"`
	Signature *RawElement `xml:"http://www.w3.org/2000/09/xmldsig# Signature,omitempty"`
}

// Thing is a HealthVault thing in the Thing2 format. Every field is optional
// on the wire; the field order is the schema's.
type Thing struct {
	XMLName        xml.Name        `xml:"thing"`
	Key            *Key            `xml:"thing-id,omitempty"`
	Type           *TypeID         `xml:"type-id,omitempty"`
	State          string          `xml:"thing-state,omitempty"`
	Flags          *uint32         `xml:"flags,omitempty"`
	EffDate        *time.Time      `xml:"eff-date,omitempty"`
	Created        *Audit          `xml:"created,omitempty"`
	Updated        *Audit          `xml:"updated,omitempty"`
	Data           []DataXML       `xml:"data-xml"`
	BlobPayload    *BlobPayload    `xml:"blob-payload,omitempty"`
	EffPermissions *EffPermissions `xml:"eff-permissions,omitempty"`
	Tags           string          `xml:"tags,omitempty"`
	SignatureInfo  *SignatureInfo  `xml:"signature-info,omitempty"`
	UpdatedEndDate *time.Time      `xml:"updated-end-date,omitempty"`
}

// Blob returns the blob with the given name, or nil.
func (t *Thing) Blob(name string) *Blob {
	if t.BlobPayload == nil {
		return nil
	}
	for i := range t.BlobPayload.Blobs {
		if t.BlobPayload.Blobs[i].Info.Name == name {
			return &t.BlobPayload.Blobs[i]
		}
	}
	return nil
}

// SetBlob adds b to the thing's blob payload, replacing a blob of the same
// name (how HealthVault replaces a blob: a new blob under the old name).
func (t *Thing) SetBlob(b Blob) {
	if t.BlobPayload == nil {
		t.BlobPayload = &BlobPayload{}
	}
	for i := range t.BlobPayload.Blobs {
		if t.BlobPayload.Blobs[i].Info.Name == b.Info.Name {
			t.BlobPayload.Blobs[i] = b
			return
		}
	}
	t.BlobPayload.Blobs = append(t.BlobPayload.Blobs, b)
}

// TypeSpecific returns the inner bytes of the first data-xml element (the
// type's root element and common), or nil.
func (t *Thing) TypeSpecific() []byte {
	if len(t.Data) == 0 {
		return nil
	}
	return t.Data[0].Inner
}

// SetData replaces the thing's data-xml with one element holding inner, the
// serialized type root element (e.g. <medical-image-study>…</medical-image-study>)
// optionally followed by <common>.
func (t *Thing) SetData(inner []byte) {
	t.Data = []DataXML{{Inner: append([]byte(nil), inner...)}}
}

// Marshal serializes the thing without indentation.
func (t *Thing) Marshal() ([]byte, error) {
	b, err := xml.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("thing: marshal: %w", err)
	}
	return b, nil
}

// Unmarshal parses one <thing> element.
func Unmarshal(b []byte) (*Thing, error) {
	var t Thing
	if err := xml.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("thing: unmarshal: %w", err)
	}
	return &t, nil
}
