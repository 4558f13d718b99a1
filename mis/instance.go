package mis

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/dicomio"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// Instance holds the facts of one DICOM instance header that an MIS needs.
// It is plain data (JSON-friendly) so a gateway can keep it in its database
// and rebuild a study with a Builder without re-reading files. Text fields
// are UTF-8; dates and times keep their DICOM form (DA, TM, DT) and are
// interpreted when a study is built.
type Instance struct {
	SOPClassUID        string `json:"sopClassUid,omitempty"`         // (0008,0016)
	SOPInstanceUID     string `json:"sopInstanceUid"`                // (0008,0018)
	StudyInstanceUID   string `json:"studyInstanceUid"`              // (0020,000D)
	SeriesInstanceUID  string `json:"seriesInstanceUid"`             // (0020,000E)
	SeriesNumber       *int   `json:"seriesNumber,omitempty"`        // (0020,0011)
	InstanceNumber     *int   `json:"instanceNumber,omitempty"`      // (0020,0013)
	StudyDate          string `json:"studyDate,omitempty"`           // (0008,0020)
	StudyTime          string `json:"studyTime,omitempty"`           // (0008,0030)
	SeriesDate         string `json:"seriesDate,omitempty"`          // (0008,0021)
	SeriesTime         string `json:"seriesTime,omitempty"`          // (0008,0031)
	AcquisitionDate    string `json:"acquisitionDate,omitempty"`     // (0008,0022)
	AcquisitionTime    string `json:"acquisitionTime,omitempty"`     // (0008,0032)
	ContentDate        string `json:"contentDate,omitempty"`         // (0008,0023)
	ContentTime        string `json:"contentTime,omitempty"`         // (0008,0033)
	AcquisitionDT      string `json:"acquisitionDateTime,omitempty"` // (0008,002A)
	TimezoneOffset     string `json:"timezoneOffset,omitempty"`      // (0008,0201)
	PatientName        string `json:"patientName,omitempty"`         // (0010,0010), PN groups kept
	PatientID          string `json:"patientId,omitempty"`           // (0010,0020)
	IssuerOfPatientID  string `json:"issuerOfPatientId,omitempty"`   // (0010,0021)
	ReferringPhysician string `json:"referringPhysician,omitempty"`  // (0008,0090), PN groups kept
	StudyDescription   string `json:"studyDescription,omitempty"`    // (0008,1030)
	SeriesDescription  string `json:"seriesDescription,omitempty"`   // (0008,103E)
	Modality           string `json:"modality,omitempty"`            // (0008,0060)
	BodyPart           string `json:"bodyPart,omitempty"`            // (0018,0015)
	Institution        string `json:"institution,omitempty"`         // (0008,0080)
	AccessionNumber    string `json:"accessionNumber,omitempty"`     // (0008,0050)
	Reason             string `json:"reason,omitempty"`              // (0032,1030), else (0040,1002)
	// HasPixelData reports Pixel Data (or Float/Double Float Pixel Data):
	// such an instance gets a preview blob name.
	HasPixelData bool `json:"hasPixelData,omitempty"`
	// KeyImages lists the SOP Instance UIDs a Key Object Selection document
	// flags (content items of value type IMAGE, else the Current Requested
	// Procedure Evidence); empty for other instances and for rejection notes.
	KeyImages []string `json:"keyImages,omitempty"`
}

// textTags are the values decoded with Specific Character Set; the rest of
// what an MIS uses is in the default repertoire (UI, CS, DA, TM, IS).
var textTags = map[tag.Tag]bool{
	tag.PatientName:                    true,
	tag.PatientID:                      true,
	tag.IssuerOfPatientID:              true,
	tag.ReferringPhysicianName:         true,
	tag.StudyDescription:               true,
	tag.SeriesDescription:              true,
	tag.InstitutionName:                true,
	tag.AccessionNumber:                true,
	tag.ReasonForStudy:                 true,
	tag.ReasonForTheRequestedProcedure: true,
}

// Key Object Selection.
const (
	kosSOPClass = "1.2.840.10008.5.1.4.1.1.88.59"
	deflatedTS  = "1.2.840.10008.1.2.1.99"
	// explicitBigEndianTS is the retired Explicit VR Big Endian syntax.
	explicitBigEndianTS = "1.2.840.10008.1.2.2"
	// maxKeyImages bounds the references taken from one KOS document.
	maxKeyImages = 10000
	// maxSeqDepth bounds recursion into nested content items.
	maxSeqDepth = 16
)

// rejectionTitles are KOS document titles (DCM codes, PS3.16 CID 7011) that
// mark instances as rejected rather than as key images.
var rejectionTitles = map[string]bool{
	"113001": true, // Rejected for Quality Reasons
	"113037": true, // Rejected for Patient Safety Reasons
	"113038": true, // Incorrect Modality Worklist Entry
	"113039": true, // Data Retention Policy Expired
}

// ReadFile reads the header of the DICOM file at path; see Read.
func ReadFile(path string) (Instance, error) {
	f, err := os.Open(path)
	if err != nil {
		return Instance{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Instance{}, err
	}
	return Read(f, st.Size())
}

const (
	// readBuffer is the parser's read-ahead; the raw text tap must hold at
	// least this much plus the longest text value it captures.
	readBuffer = 64 << 10
	maxRawText = 64 << 10
	tapWindow  = 256 << 10
)

// Read parses a DICOM Part 10 stream (size bytes, or until EOF when size < 0)
// with suyashkumar/dicom up to the pixel data, which it does not read (the
// next tag is read ahead of the parser), and extracts the Instance. Unlike FromDataset it decodes text values from
// their raw bytes with Charset, so every Specific Character Set, including
// ISO 2022 code extensions, comes out right. For the deflated transfer
// syntax the raw bytes are not at hand and Read falls back to FromDataset's
// decoding.
func Read(r io.Reader, size int64) (inst Instance, err error) {
	defer func() {
		if p := recover(); p != nil {
			inst, err = Instance{}, fmt.Errorf("%w: parser panic: %v", ErrHeader, p)
		}
	}()
	if size < 0 {
		size = dicomio.LimitReadUntilEOF
	}
	t := &tap{r: r}
	// The parser reuses a *bufio.Reader it is given (bufio.NewReader returns
	// it unchanged), so t.n - br.Buffered() is the parser's position.
	br := bufio.NewReaderSize(t, readBuffer)
	p, err := dicom.NewParser(br, size, nil, dicom.SkipPixelData(), dicom.AllowUnknownSpecificCharacterSet())
	if err != nil {
		return Instance{}, fmt.Errorf("%w: %v", ErrHeader, err)
	}
	meta := p.GetMetadata()
	ts := strings.Trim(firstString(meta.Elements, tag.TransferSyntaxUID), " \x00")
	deflated := ts == deflatedTS
	order := peekOrder(ts)
	elems := append([]*dicom.Element(nil), meta.Elements...)
	raw := map[tag.Tag][]byte{}
	pixels := false
	for {
		// Everything an MIS needs precedes the pixel data: stop before it
		// rather than have the parser read (and discard) gigabytes.
		if order != nil {
			if b, err := br.Peek(4); err == nil {
				if next := (tag.Tag{Group: order.Uint16(b), Element: order.Uint16(b[2:])}); next.Group >= 0x7FE0 {
					pixels = isPixelData(next)
					break
				}
			}
		}
		el, err := p.Next()
		if err != nil {
			if errors.Is(err, dicom.ErrorEndOfDICOM) || errors.Is(err, io.EOF) {
				break
			}
			return Instance{}, fmt.Errorf("%w: %v", ErrHeader, err)
		}
		end := t.n - int64(br.Buffered())
		elems = append(elems, el)
		if !deflated && textTags[el.Tag] && el.ValueLength <= maxRawText {
			if b, ok := t.bytes(end-int64(el.ValueLength), end); ok {
				raw[el.Tag] = bytes.Clone(b)
			}
		}
		if el.Tag.Group >= 0x7FE0 {
			break // not read ahead (deflated or guessed syntax): stop after it
		}
	}
	in, err := extract(elems, raw)
	if err != nil {
		return Instance{}, err
	}
	in.HasPixelData = in.HasPixelData || pixels
	return in, nil
}

// peekOrder is the byte order of the data set's tags, read ahead of the
// parser, for transfer syntax ts; nil when they cannot be read ahead: the
// deflated syntax (the parser inflates on its own) and a missing one (the
// parser guesses).
func peekOrder(ts string) binary.ByteOrder {
	switch ts {
	case "", deflatedTS:
		return nil
	case explicitBigEndianTS:
		return binary.BigEndian
	}
	return binary.LittleEndian
}

// isPixelData reports the elements of the Pixel Data module that mean the
// instance has pixels: the three pixel data elements and the Extended
// Offset Table that only precedes Pixel Data.
func isPixelData(t tag.Tag) bool {
	switch t {
	case tag.PixelData, tag.FloatPixelData, tag.DoubleFloatPixelData, tag.ExtendedOffsetTable, tag.ExtendedOffsetTableLengths:
		return true
	}
	return false
}

// FromDataset extracts the Instance from a data set parsed by
// suyashkumar/dicom (dicom.ParseFile or dicom.Parse with
// dicom.SkipPixelData()). Text values are the ones the parser decoded; that
// decoding is right for single-byte sets, UTF-8, GB18030, GBK and Japanese
// ISO 2022 IR 87/159, and the escape sequences it leaves in Korean and
// Chinese ISO 2022 text are removed here, but half-width katakana designated
// by ISO 2022 IR 13 are lost by the parser. Use Read when the file is at hand.
func FromDataset(ds dicom.Dataset) (inst Instance, err error) {
	defer func() {
		if p := recover(); p != nil {
			inst, err = Instance{}, fmt.Errorf("%w: panic reading data set: %v", ErrHeader, p)
		}
	}()
	return extract(ds.Elements, nil)
}

// extract builds the Instance from top-level elements; raw holds the
// undecoded bytes of text values when available.
func extract(elems []*dicom.Element, raw map[tag.Tag][]byte) (Instance, error) {
	cs := NewCharset(strs(elems, tag.SpecificCharacterSet))
	text := func(t tag.Tag, pn bool) string {
		var s string
		if b, ok := raw[t]; ok {
			s = firstValue(cs.Decode(b, pn))
		} else {
			s = cleanDecoded(firstString(elems, t))
		}
		if pn {
			return boundPN(s)
		}
		return cleanText(s)
	}
	in := Instance{
		SOPClassUID:        uidOf(elems, tag.SOPClassUID),
		SOPInstanceUID:     uidOf(elems, tag.SOPInstanceUID),
		StudyInstanceUID:   uidOf(elems, tag.StudyInstanceUID),
		SeriesInstanceUID:  uidOf(elems, tag.SeriesInstanceUID),
		SeriesNumber:       intOf(elems, tag.SeriesNumber),
		InstanceNumber:     intOf(elems, tag.InstanceNumber),
		StudyDate:          ascii(elems, tag.StudyDate),
		StudyTime:          ascii(elems, tag.StudyTime),
		SeriesDate:         ascii(elems, tag.SeriesDate),
		SeriesTime:         ascii(elems, tag.SeriesTime),
		AcquisitionDate:    ascii(elems, tag.AcquisitionDate),
		AcquisitionTime:    ascii(elems, tag.AcquisitionTime),
		ContentDate:        ascii(elems, tag.ContentDate),
		ContentTime:        ascii(elems, tag.ContentTime),
		AcquisitionDT:      ascii(elems, tag.AcquisitionDateTime),
		TimezoneOffset:     ascii(elems, tag.TimezoneOffsetFromUTC),
		PatientName:        text(tag.PatientName, true),
		PatientID:          text(tag.PatientID, false),
		IssuerOfPatientID:  text(tag.IssuerOfPatientID, false),
		ReferringPhysician: text(tag.ReferringPhysicianName, true),
		StudyDescription:   text(tag.StudyDescription, false),
		SeriesDescription:  text(tag.SeriesDescription, false),
		Modality:           cleanText(firstString(elems, tag.Modality)),
		BodyPart:           cleanText(firstString(elems, tag.BodyPartExamined)),
		Institution:        text(tag.InstitutionName, false),
		AccessionNumber:    text(tag.AccessionNumber, false),
		Reason:             text(tag.ReasonForStudy, false),
	}
	if in.Reason == "" {
		in.Reason = text(tag.ReasonForTheRequestedProcedure, false)
	}
	for _, el := range elems {
		if el != nil && isPixelData(el.Tag) {
			in.HasPixelData = true
		}
	}
	if in.SOPClassUID == kosSOPClass || strings.EqualFold(in.Modality, "KO") {
		in.KeyImages = keyImages(elems)
	}
	if err := in.Validate(); err != nil {
		return Instance{}, err
	}
	return in, nil
}

// Validate checks that the instance has the UIDs an MIS needs and that
// they are DICOM UIDs, since they become blob names.
func (in Instance) Validate() error {
	for _, c := range []struct {
		v       string
		missing error
	}{
		{in.StudyInstanceUID, ErrNoStudyUID},
		{in.SeriesInstanceUID, ErrNoSeriesUID},
		{in.SOPInstanceUID, ErrNoSOPInstanceUID},
	} {
		if c.v == "" {
			return c.missing
		}
		if !ValidUID(c.v) {
			return fmt.Errorf("%w: %q", ErrInvalidUID, truncate(c.v, 80))
		}
	}
	return nil
}

// ValidUID reports whether s is a DICOM UID (PS3.5 §9.1): at most 64
// characters, digits and dots.
func ValidUID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if (s[i] < '0' || s[i] > '9') && s[i] != '.' {
			return false
		}
	}
	return true
}

// keyImages returns the SOP Instance UIDs a KOS document flags.
func keyImages(elems []*dicom.Element) []string {
	if title := items(elems, tag.ConceptNameCodeSequence); len(title) > 0 &&
		rejectionTitles[strings.TrimSpace(firstString(title[0], tag.CodeValue))] {
		return nil
	}
	var out []string
	seen := map[string]bool{}
	add := func(refs [][]*dicom.Element) {
		for _, ref := range refs {
			u := uidOf(ref, tag.ReferencedSOPInstanceUID)
			if ValidUID(u) && !seen[u] && len(out) < maxKeyImages {
				seen[u] = true
				out = append(out, u)
			}
		}
	}
	var walk func(content []*dicom.Element, depth int)
	walk = func(content []*dicom.Element, depth int) {
		if depth > maxSeqDepth {
			return
		}
		for _, it := range items(content, tag.ContentSequence) {
			if strings.TrimSpace(firstString(it, tag.ValueType)) == "IMAGE" {
				add(items(it, tag.ReferencedSOPSequence))
			}
			walk(it, depth+1)
		}
	}
	walk(elems, 0)
	if len(out) == 0 {
		for _, ev := range items(elems, tag.CurrentRequestedProcedureEvidenceSequence) {
			for _, series := range items(ev, tag.ReferencedSeriesSequence) {
				add(items(series, tag.ReferencedSOPSequence))
			}
		}
	}
	return out
}

// items returns the elements of each item of the sequence t in elems.
func items(elems []*dicom.Element, t tag.Tag) [][]*dicom.Element {
	for _, el := range elems {
		if el == nil || el.Tag != t || el.Value == nil {
			continue
		}
		seq, ok := el.Value.GetValue().([]*dicom.SequenceItemValue)
		if !ok {
			return nil
		}
		out := make([][]*dicom.Element, 0, len(seq))
		for _, it := range seq {
			if it == nil {
				continue
			}
			if e, ok := it.GetValue().([]*dicom.Element); ok {
				out = append(out, e)
			}
		}
		return out
	}
	return nil
}

// strs returns the string values of element t in elems.
func strs(elems []*dicom.Element, t tag.Tag) []string {
	for _, el := range elems {
		if el == nil || el.Tag != t || el.Value == nil {
			continue
		}
		switch v := el.Value.GetValue().(type) {
		case []string:
			return v
		case []int:
			out := make([]string, len(v))
			for i, n := range v {
				out[i] = strconv.Itoa(n)
			}
			return out
		}
		return nil
	}
	return nil
}

func firstString(elems []*dicom.Element, t tag.Tag) string {
	if v := strs(elems, t); len(v) > 0 {
		return v[0]
	}
	return ""
}

// ascii returns the first value of a default-repertoire element (DA, TM,
// DT, SH offsets), trimmed and bounded.
func ascii(elems []*dicom.Element, t tag.Tag) string {
	return truncate(strings.Trim(firstString(elems, t), " \x00"), 64)
}

func uidOf(elems []*dicom.Element, t tag.Tag) string {
	return truncate(strings.Trim(firstString(elems, t), " \x00"), 128)
}

// intOf parses an IS value; out-of-range or malformed numbers count as absent.
func intOf(elems []*dicom.Element, t tag.Tag) *int {
	s := strings.Trim(firstString(elems, t), " \x00")
	if s == "" || len(s) > 12 {
		return nil
	}
	n, err := strconv.Atoi(strings.TrimPrefix(s, "+"))
	if err != nil || n < -1<<31 || n > 1<<31-1 {
		return nil
	}
	return &n
}

// boundPN keeps a decoded PN value's delimiters but removes control
// characters and bounds its length.
func boundPN(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	return strings.TrimSpace(truncate(s, 4*maxText))
}

// truncate bounds s to n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// tap counts the bytes read through it and keeps the most recent ones, so
// Read can recover the raw bytes of a text value the parser just consumed.
type tap struct {
	r   io.Reader
	n   int64 // bytes read so far
	win []byte
}

func (t *tap) Read(p []byte) (int, error) {
	k, err := t.r.Read(p)
	if k > 0 {
		t.n += int64(k)
		t.win = append(t.win, p[:k]...)
		if len(t.win) > 2*tapWindow {
			t.win = append(t.win[:0], t.win[len(t.win)-tapWindow:]...)
		}
	}
	return k, err
}

// bytes returns the stream bytes at offsets [from, to) if still held.
func (t *tap) bytes(from, to int64) ([]byte, bool) {
	start := t.n - int64(len(t.win))
	if from < start || to > t.n || from > to {
		return nil, false
	}
	return t.win[from-start : to-start], true
}
