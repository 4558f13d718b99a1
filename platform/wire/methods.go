package wire

import (
	"bytes"
	"encoding/xml"
	"time"

	"dicomgate/platform/thing"
)

// Response namespaces (the wc:info namespace names the response schema).
const (
	NSCreateAuthenticatedSessionToken2 = ResponseNamespacePrefix + "CreateAuthenticatedSessionToken2"
	NSPutThings                        = ResponseNamespacePrefix + "PutThings"
	NSGetThings3                       = ResponseNamespacePrefix + "GetThings3"
	NSBeginPutBlob                     = ResponseNamespacePrefix + "BeginPutBlob"
	NSRemoveThings                     = ResponseNamespacePrefix + "RemoveThings"
)

// CASTRequest is the info of CreateAuthenticatedSessionToken v2
// (method-createauthenticatedsessiontoken2.xsd) with an appserver2 credential.
type CASTRequest struct {
	AuthInfo struct {
		AppID      string `xml:"app-id"`
		Credential struct {
			AppServer2 *AppServer2 `xml:"appserver2"`
		} `xml:"credential"`
	} `xml:"auth-info"`
}

// AppServer2 is the application server credential: a signature over the
// exact bytes of the content element.
type AppServer2 struct {
	Sig     Sig         `xml:"sig"`
	Content CASTContent `xml:"content"`
}

// Sig is wc-types:Sig: the base64 signature with its algorithms and the
// thumbprint of the certificate that verifies it.
type Sig struct {
	DigestMethod string `xml:"digestMethod,attr"`
	SigMethod    string `xml:"sigMethod,attr"`
	Thumbprint   string `xml:"thumbprint,attr"`
	Value        string `xml:",chardata"`
}

// CASTContent is the signed content of an appserver2 credential.
type CASTContent struct {
	XMLName     xml.Name  `xml:"content"`
	AppID       string    `xml:"app-id"`
	HMAC        string    `xml:"hmac"`
	SigningTime time.Time `xml:"signing-time"`
}

// Signature algorithm names of the appserver2 sig element.
const (
	DigestSHA256 = "SHA256"
	DigestSHA1   = "SHA1"
	SigRSASHA256 = "RSA-SHA256"
	SigRSASHA1   = "RSA-SHA1"
)

// CASTResponse is the info of the CreateAuthenticatedSessionToken v2 response.
type CASTResponse struct {
	Token        SessionToken `xml:"token"`
	SharedSecret string       `xml:"shared-secret"`
}

// SessionToken is wc-auth:Token.
type SessionToken struct {
	Value               string `xml:",chardata"`
	AppID               string `xml:"app-id,attr"`
	AppRecordAuthAction string `xml:"app-record-auth-action,attr"`
}

// PutThingsRequest is the info of PutThings v2.
type PutThingsRequest struct {
	Things []*thing.Thing `xml:"thing"`
}

// PutThingsResponse is the info of the PutThings response.
type PutThingsResponse struct {
	Keys []thing.Key `xml:"thing-id"`
}

// RemoveThingsRequest is the info of RemoveThings.
type RemoveThingsRequest struct {
	Keys []thing.Key `xml:"thing-id"`
}

// BeginPutBlobResponse is the info of the BeginPutBlob response.
type BeginPutBlobResponse struct {
	BlobRefURL    string           `xml:"blob-ref-url"`
	ChunkSize     int64            `xml:"blob-chunk-size"`
	MaxBlobSize   int64            `xml:"max-blob-size"`
	HashAlgorithm string           `xml:"blob-hash-algorithm"`
	HashParams    thing.HashParams `xml:"blob-hash-parameters"`
}

// GetThingsRequest is the info of GetThings v3 (method-getthings3.xsd).
type GetThingsRequest struct {
	Groups []ThingRequestGroup `xml:"group"`
}

// ThingRequestGroup is one query group of GetThings.
type ThingRequestGroup struct {
	Name               string        `xml:"name,attr,omitempty"`
	Max                *int          `xml:"max,attr,omitempty"`
	MaxFull            *int          `xml:"max-full,attr,omitempty"`
	IDs                []string      `xml:"id"`
	Keys               []thing.Key   `xml:"key"`
	ClientThingIDs     []string      `xml:"client-thing-id"`
	Filters            []ThingFilter `xml:"filter"`
	Format             ThingFormat   `xml:"format"`
	CurrentVersionOnly *bool         `xml:"current-version-only,omitempty"`
	Other              []AnyElement  `xml:",any"`
}

// ThingFilter is one filter of a group (wc-method-getthings:ThingFilterSpec);
// the fields dicomgate evaluates, in schema order. Elements it does not
// evaluate land in Other, and the server refuses them.
type ThingFilter struct {
	TypeIDs      []string     `xml:"type-id"`
	States       []string     `xml:"thing-state"`
	EffDateMin   *time.Time   `xml:"eff-date-min,omitempty"`
	EffDateMax   *time.Time   `xml:"eff-date-max,omitempty"`
	CreatedAppID string       `xml:"created-app-id,omitempty"`
	UpdatedAppID string       `xml:"updated-app-id,omitempty"`
	XPath        string       `xml:"xpath,omitempty"`
	Other        []AnyElement `xml:",any"`
}

// AnyElement records the name of an element a type does not model.
type AnyElement struct {
	XMLName xml.Name
}

// Sections of ThingFormat.
const (
	SectionCore                 = "core"
	SectionAudits               = "audits"
	SectionEffectivePermissions = "effectivepermissions"
	SectionDigitalSignatures    = "digitalsignatures"
	SectionTags                 = "tags"
	SectionBlobPayload          = "blobpayload"
)

// Blob format specs of BlobPayloadRequest.
const (
	BlobFormatInformation = "information"
	BlobFormatInline      = "inline"
	BlobFormatStreamed    = "streamed"
)

// ThingFormat says which parts of each thing to return.
type ThingFormat struct {
	Sections []string `xml:"section"`
	// XML holds one empty string per <xml/> element: present means
	// "return data-xml"; a non-empty value names a transform.
	XML                []string            `xml:"xml"`
	TypeVersionFormat  []string            `xml:"type-version-format"`
	BlobPayloadRequest *BlobPayloadRequest `xml:"blob-payload-request,omitempty"`
}

// Has reports whether section s was asked for.
func (f *ThingFormat) Has(s string) bool {
	for _, x := range f.Sections {
		if x == s {
			return true
		}
	}
	return false
}

// BlobPayloadRequest selects blobs by name and how to return them.
type BlobPayloadRequest struct {
	BlobFilters *BlobFilters `xml:"blob-filters,omitempty"`
	BlobFormat  struct {
		Spec string `xml:"blob-format-spec"`
	} `xml:"blob-format"`
}

// BlobFilters lists blob names to return.
type BlobFilters struct {
	Filters []struct {
		BlobName string `xml:"blob-name"`
	} `xml:"blob-filter"`
}

// GetThingsResponse is the info of the GetThings v3 response.
type GetThingsResponse struct {
	Groups []ThingResponseGroup `xml:"group"`
}

// ThingResponseGroup is one result group: full things, then the keys of
// further matches (partial things) to fetch in a later request.
type ThingResponseGroup struct {
	Name        string                    `xml:"name,attr,omitempty"`
	Things      []*thing.Thing            `xml:"thing"`
	Unprocessed []UnprocessedThingKeyInfo `xml:"unprocessed-thing-key-info"`
}

// UnprocessedThingKeyInfo is a partial thing.
type UnprocessedThingKeyInfo struct {
	Key     thing.Key    `xml:"thing-id"`
	Type    thing.TypeID `xml:"type-id"`
	EffDate time.Time    `xml:"eff-date"`
}

// FindRaw returns the exact bytes of the first element reached by following
// path (local names, from the document root down) in doc, or nil. Callers
// use it for parts that are signed as sent, like the appserver2 content.
func FindRaw(doc []byte, path ...string) []byte {
	d := xml.NewDecoder(bytes.NewReader(doc))
	depth, matched := 0, 0
	var start int64
	for {
		off := d.InputOffset()
		tok, err := d.Token()
		if err != nil {
			return nil
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == matched+1 && matched < len(path) && t.Name.Local == path[matched] {
				matched++
				if matched == len(path) {
					start = off
				}
			}
			if depth > MaxDepth {
				return nil
			}
		case xml.EndElement:
			if matched == len(path) && depth == matched {
				return doc[start:d.InputOffset()]
			}
			if depth == matched {
				matched--
			}
			depth--
		}
	}
}
