package mis

import (
	"bytes"
	"encoding/xml"
	"fmt"
)

// Version selects the MIS thing type version.
type Version int

// MIS versions and their HealthVault type ids.
const (
	V1 Version = 1
	V2 Version = 2

	// TypeIDV1 is the thing type id of medical-image-study.xsd.
	TypeIDV1 = "c75651c8-548e-449f-8942-9e6379b0b88a"
	// TypeIDV2 is the thing type id of medical-image-study.2.xsd.
	TypeIDV2 = "cdfc0a9b-6d3b-4d16-afa8-02b86d621a8d"
	// Namespace is the target namespace of both MIS schemas.
	Namespace = "urn:com.microsoft.wc.thing.medical-images"
	// ModalityVocabulary is the HealthVault vocabulary named as preferred for
	// series modality in both schemas.
	ModalityVocabulary = "dicom.modality"
)

// TypeID returns the HealthVault thing type id of v.
func (v Version) TypeID() (string, error) {
	switch v {
	case V1:
		return TypeIDV1, nil
	case V2:
		return TypeIDV2, nil
	}
	return "", fmt.Errorf("%w: %d", ErrBadVersion, int(v))
}

// Date is dates.xsd "date": a full calendar date.
type Date struct {
	Y int `xml:"y"`
	M int `xml:"m"`
	D int `xml:"d"`
}

// Time is dates.xsd "time"; seconds and milliseconds are optional.
type Time struct {
	H int  `xml:"h"`
	M int  `xml:"m"`
	S *int `xml:"s,omitempty"`
	F *int `xml:"f,omitempty"`
}

// DateTime is dates.xsd "date-time": a date, an optional time and an
// optional time zone.
type DateTime struct {
	Date Date          `xml:"date"`
	Time *Time         `xml:"time,omitempty"`
	TZ   *CodableValue `xml:"tz,omitempty"`
}

// CodedValue is base.xsd "coded-value": a code in a HealthVault vocabulary.
type CodedValue struct {
	Value   string `xml:"value"`
	Family  string `xml:"family,omitempty"`
	Type    string `xml:"type"`
	Version string `xml:"version,omitempty"`
}

// CodableValue is base.xsd "codable-value": display text plus optional codes.
type CodableValue struct {
	Text string       `xml:"text"`
	Code []CodedValue `xml:"code"`
}

// Name is base.xsd "name".
type Name struct {
	Full   string        `xml:"full"`
	Title  *CodableValue `xml:"title,omitempty"`
	First  string        `xml:"first,omitempty"`
	Middle string        `xml:"middle,omitempty"`
	Last   string        `xml:"last,omitempty"`
	Suffix *CodableValue `xml:"suffix,omitempty"`
}

// RawXML keeps an element's content verbatim, so that parts of an existing
// thing this package does not model (contact details) survive a merge.
type RawXML struct {
	Inner string `xml:",innerxml"`
}

// Person is base.xsd "person".
type Person struct {
	Name                 Name          `xml:"name"`
	Organization         string        `xml:"organization,omitempty"`
	ProfessionalTraining string        `xml:"professional-training,omitempty"`
	ID                   string        `xml:"id,omitempty"`
	Contact              *RawXML       `xml:"contact,omitempty"`
	Type                 *CodableValue `xml:"type,omitempty"`
}

// Organization is base.xsd "Organization".
type Organization struct {
	Name    string        `xml:"name"`
	Contact *RawXML       `xml:"contact,omitempty"`
	Type    *CodableValue `xml:"type,omitempty"`
	Website string        `xml:"website,omitempty"`
}

// Image is "medical-image-study-series-image": one image blob and its preview.
type Image struct {
	BlobName        string `xml:"image-blob-name"`
	PreviewBlobName string `xml:"image-preview-blob-name,omitempty"`
}

// SeriesV1 is "medical-image-study-series" of medical-image-study.xsd.
type SeriesV1 struct {
	AcquisitionDateTime DateTime      `xml:"acquisition-datetime"`
	Description         string        `xml:"description,omitempty"`
	Images              []Image       `xml:"images"`
	InstitutionName     *Organization `xml:"institution-name,omitempty"`
	ReferringPhysician  *Person       `xml:"referring-physician,omitempty"`
	Modality            *CodableValue `xml:"modality,omitempty"`
	BodyPart            *CodableValue `xml:"body-part,omitempty"`
	PreviewBlobName     string        `xml:"preview-blob-name,omitempty"`
	SeriesInstanceUID   string        `xml:"series-instance-uid,omitempty"`
}

// StudyV1 is the root element of medical-image-study.xsd.
type StudyV1 struct {
	XMLName          xml.Name      `xml:"medical-image-study"`
	When             DateTime      `xml:"when"`
	PatientName      string        `xml:"patient-name,omitempty"`
	Description      string        `xml:"description,omitempty"`
	Series           []SeriesV1    `xml:"series"`
	Reason           *CodableValue `xml:"reason,omitempty"`
	PreviewBlobName  string        `xml:"preview-blob-name,omitempty"`
	KeyImages        []Image       `xml:"key-images"`
	StudyInstanceUID string        `xml:"study-instance-uid,omitempty"`
}

// SeriesV2 is "medical-image-study-series" of medical-image-study.2.xsd:
// acquisition time is optional and the referring physician moved to the study.
type SeriesV2 struct {
	AcquisitionDateTime *DateTime     `xml:"acquisition-datetime,omitempty"`
	Description         string        `xml:"description,omitempty"`
	Images              []Image       `xml:"images"`
	InstitutionName     *Organization `xml:"institution-name,omitempty"`
	Modality            *CodableValue `xml:"modality,omitempty"`
	BodyPart            *CodableValue `xml:"body-part,omitempty"`
	PreviewBlobName     string        `xml:"preview-blob-name,omitempty"`
	SeriesInstanceUID   string        `xml:"series-instance-uid,omitempty"`
}

// StudyV2 is the root element of medical-image-study.2.xsd.
type StudyV2 struct {
	XMLName            xml.Name      `xml:"medical-image-study"`
	When               DateTime      `xml:"when"`
	PatientName        string        `xml:"patient-name,omitempty"`
	Description        string        `xml:"description,omitempty"`
	Series             []SeriesV2    `xml:"series"`
	Reason             *CodableValue `xml:"reason,omitempty"`
	PreviewBlobName    string        `xml:"preview-blob-name,omitempty"`
	KeyImages          []Image       `xml:"key-images"`
	StudyInstanceUID   string        `xml:"study-instance-uid,omitempty"`
	ReferringPhysician *Person       `xml:"referring-physician,omitempty"`
	AccessionNumber    string        `xml:"accession-number,omitempty"`
}

const (
	rootOpen  = "<medical-image-study>"
	rootClose = "</medical-image-study>"
)

// Namespaced rewrites MIS data-xml content as produced by this package (a
// bare <medical-image-study> root) into the form the official schema
// validates: the root element in the MIS target namespace, children
// unqualified (SPEC §10).
func Namespaced(mis []byte) ([]byte, error) {
	body := bytes.TrimSpace(mis)
	if !bytes.HasPrefix(body, []byte(rootOpen)) || !bytes.HasSuffix(body, []byte(rootClose)) {
		return nil, fmt.Errorf("%w: root is not a bare <medical-image-study>", ErrBadMIS)
	}
	inner := body[len(rootOpen) : len(body)-len(rootClose)]
	var out bytes.Buffer
	out.WriteString(`<mis:medical-image-study xmlns:mis="` + Namespace + `">`)
	out.Write(inner)
	out.WriteString("</mis:medical-image-study>")
	return out.Bytes(), nil
}
