package mis

import (
	"cmp"
	"encoding/xml"
	"fmt"
	"slices"
	"strings"
)

// PreviewSuffix is appended to a blob name or UID to name its preview blob.
const PreviewSuffix = "_preview"

// MaxInstances bounds the instances one study may hold, so a hostile sender
// cannot grow a thing without limit.
const MaxInstances = 100000

// PreviewName returns the preview blob name of an image blob, a series
// (by Series Instance UID) or a study (by Study Instance UID).
func PreviewName(name string) string { return name + PreviewSuffix }

// Study is a medical image study independent of the MIS version: the union
// of what versions 1 and 2 can hold. V1 and V2 convert it to either schema.
type Study struct {
	When               DateTime
	PatientName        string
	Description        string
	Series             []Series
	Reason             *CodableValue
	PreviewBlobName    string
	KeyImages          []Image
	StudyInstanceUID   string
	ReferringPhysician *Person // study level (v2)
	AccessionNumber    string  // v2 only
}

// Series is one series of a Study.
type Series struct {
	AcquisitionDateTime *DateTime
	Description         string
	Images              []Image
	InstitutionName     *Organization
	ReferringPhysician  *Person // series level (v1)
	Modality            *CodableValue
	BodyPart            *CodableValue
	PreviewBlobName     string
	SeriesInstanceUID   string
}

// Builder assembles one study from instance headers added one at a time.
// Adding the same SOP Instance UID again replaces the earlier facts, so
// re-sent instances do not duplicate images. The output does not depend on
// the order of Add calls. A Builder is not safe for concurrent use.
type Builder struct {
	studyUID string
	byUID    map[string]Instance
}

// NewBuilder returns an empty Builder.
func NewBuilder() *Builder { return &Builder{byUID: map[string]Instance{}} }

// Add adds one instance. It fails with ErrNoStudyUID and friends for
// incomplete instances, ErrStudyMismatch for an instance of another study
// and ErrTooManyInstances beyond MaxInstances.
func (b *Builder) Add(in Instance) error {
	if err := in.Validate(); err != nil {
		return err
	}
	if b.studyUID != "" && in.StudyInstanceUID != b.studyUID {
		return fmt.Errorf("%w: %s, not %s", ErrStudyMismatch, in.StudyInstanceUID, b.studyUID)
	}
	if _, dup := b.byUID[in.SOPInstanceUID]; !dup && len(b.byUID) >= MaxInstances {
		return ErrTooManyInstances
	}
	b.studyUID = in.StudyInstanceUID
	b.byUID[in.SOPInstanceUID] = in
	return nil
}

// Len returns the number of distinct instances added.
func (b *Builder) Len() int { return len(b.byUID) }

// Instances returns the instances added, sorted as they appear in the study.
func (b *Builder) Instances() []Instance {
	out := make([]Instance, 0, len(b.byUID))
	for _, in := range b.byUID {
		out = append(out, in)
	}
	sortInstances(out)
	return out
}

// Study builds the study from the instances added.
func (b *Builder) Study() (*Study, error) {
	if len(b.byUID) == 0 {
		return nil, ErrEmptyStudy
	}
	s, refs := build(b.Instances())
	if s.When.Date.Y == 0 {
		return nil, fmt.Errorf("%w in study %s", ErrNoStudyDate, s.StudyInstanceUID)
	}
	s.addKeyImages(refs)
	return s, nil
}

// MIS builds the study and returns it as MIS data-xml content of version v.
func (b *Builder) MIS(v Version) ([]byte, error) {
	s, err := b.Study()
	if err != nil {
		return nil, err
	}
	return s.MIS(v)
}

// sortInstances orders by series number, series UID, instance number, SOP
// Instance UID; absent numbers sort after present ones.
func sortInstances(ins []Instance) {
	slices.SortStableFunc(ins, func(a, b Instance) int {
		if c := cmpNum(a.SeriesNumber, b.SeriesNumber); c != 0 {
			return c
		}
		if c := cmpUID(a.SeriesInstanceUID, b.SeriesInstanceUID); c != 0 {
			return c
		}
		if c := cmpNum(a.InstanceNumber, b.InstanceNumber); c != 0 {
			return c
		}
		return cmpUID(a.SOPInstanceUID, b.SOPInstanceUID)
	})
}

func cmpNum(a, b *int) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	return cmp.Compare(*a, *b)
}

// cmpUID compares UIDs component by component as numbers, so 1.2.10
// follows 1.2.9.
func cmpUID(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		x, y := strings.TrimLeft(as[i], "0"), strings.TrimLeft(bs[i], "0")
		if c := cmp.Compare(len(x), len(y)); c != 0 {
			return c
		}
		if c := strings.Compare(x, y); c != 0 {
			return c
		}
	}
	if c := cmp.Compare(len(as), len(bs)); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

// build turns sorted instances of one study into a Study (When left zero if
// no instance has a usable date) and the key image references of its KOS
// documents.
func build(ins []Instance) (*Study, []string) {
	s := &Study{}
	var refs []string
	for i := 0; i < len(ins); {
		j := i
		for j < len(ins) && ins[j].SeriesInstanceUID == ins[i].SeriesInstanceUID {
			j++
		}
		s.Series = append(s.Series, buildSeries(ins[i:j]))
		i = j
	}
	for _, in := range ins {
		s.StudyInstanceUID = in.StudyInstanceUID
		setIf(&s.PatientName, ParsePersonName(in.PatientName).Full())
		setIf(&s.Description, in.StudyDescription)
		setIf(&s.AccessionNumber, in.AccessionNumber)
		if s.Reason == nil && in.Reason != "" {
			s.Reason = &CodableValue{Text: in.Reason}
		}
		if s.ReferringPhysician == nil {
			s.ReferringPhysician = person(in.ReferringPhysician)
		}
		refs = append(refs, in.KeyImages...)
	}
	s.When = studyWhen(ins)
	for _, se := range s.Series {
		if se.PreviewBlobName != "" {
			s.PreviewBlobName = PreviewName(s.StudyInstanceUID)
			break
		}
	}
	return s, refs
}

// studyWhen picks the study's date-time: Study Date/Time (0008,0020/0030)
// of any instance, else the series, acquisition and content dates in turn.
func studyWhen(ins []Instance) DateTime {
	pickers := []func(Instance) (DateTime, bool){
		func(in Instance) (DateTime, bool) { return MakeDateTime(in.StudyDate, in.StudyTime, in.TimezoneOffset) },
		func(in Instance) (DateTime, bool) {
			return MakeDateTime(in.SeriesDate, in.SeriesTime, in.TimezoneOffset)
		},
		acquisitionWhen,
		func(in Instance) (DateTime, bool) {
			return MakeDateTime(in.ContentDate, in.ContentTime, in.TimezoneOffset)
		},
	}
	for _, pick := range pickers {
		for _, in := range ins {
			if dt, ok := pick(in); ok {
				return dt
			}
		}
	}
	return DateTime{}
}

func acquisitionWhen(in Instance) (DateTime, bool) {
	if dt, ok := MakeDateTime(in.AcquisitionDate, in.AcquisitionTime, in.TimezoneOffset); ok {
		return dt, true
	}
	return ParseDT(in.AcquisitionDT, in.TimezoneOffset)
}

// seriesWhen is the instance's acquisition date-time (0008,0022/0032, or
// 0008,002A), else its series date-time, else its content date-time.
func seriesWhen(in Instance) (DateTime, bool) {
	if dt, ok := acquisitionWhen(in); ok {
		return dt, true
	}
	if dt, ok := MakeDateTime(in.SeriesDate, in.SeriesTime, in.TimezoneOffset); ok {
		return dt, true
	}
	return MakeDateTime(in.ContentDate, in.ContentTime, in.TimezoneOffset)
}

// buildSeries builds one series from its sorted instances; series facts
// come from the first instance that has them, the acquisition time is the
// earliest.
func buildSeries(ins []Instance) Series {
	se := Series{SeriesInstanceUID: ins[0].SeriesInstanceUID}
	for _, in := range ins {
		img := Image{BlobName: in.SOPInstanceUID}
		if in.HasPixelData {
			img.PreviewBlobName = PreviewName(in.SOPInstanceUID)
			se.PreviewBlobName = PreviewName(se.SeriesInstanceUID)
		}
		se.Images = append(se.Images, img)
		setIf(&se.Description, in.SeriesDescription)
		if se.InstitutionName == nil && in.Institution != "" {
			se.InstitutionName = &Organization{Name: in.Institution}
		}
		if se.ReferringPhysician == nil {
			se.ReferringPhysician = person(in.ReferringPhysician)
		}
		if se.Modality == nil {
			se.Modality = ModalityValue(in.Modality)
		}
		if se.BodyPart == nil && in.BodyPart != "" {
			se.BodyPart = &CodableValue{Text: in.BodyPart}
		}
		if dt, ok := seriesWhen(in); ok && (se.AcquisitionDateTime == nil || dtKey(dt) < dtKey(*se.AcquisitionDateTime)) {
			se.AcquisitionDateTime = &dt
		}
	}
	return se
}

func setIf(dst *string, v string) {
	if *dst == "" {
		*dst = cleanText(v)
	}
}

// person converts a decoded PN value to base.xsd person, nil when empty.
func person(pn string) *Person {
	n := ParsePersonName(pn).HealthVaultName()
	if n == nil {
		return nil
	}
	return &Person{Name: *n}
}

// images indexes the study's images by blob name.
func (s *Study) images() map[string]Image {
	m := map[string]Image{}
	for _, se := range s.Series {
		for _, img := range se.Images {
			m[img.BlobName] = img
		}
	}
	return m
}

// addKeyImages appends the referenced instances that are images of the
// study and not yet key images. References to instances the study does not
// (yet) hold are left out: their blobs do not exist.
func (s *Study) addKeyImages(refs []string) {
	imgs := s.images()
	have := map[string]bool{}
	for _, k := range s.KeyImages {
		have[k.BlobName] = true
	}
	for _, r := range refs {
		if img, ok := imgs[r]; ok && !have[r] {
			have[r] = true
			s.KeyImages = append(s.KeyImages, img)
		}
	}
}

// Merge adds instances to a study, typically one parsed from the thing
// already stored (ParseMIS). Images already present (by blob name) are
// skipped, so merging the same instances twice changes nothing. Images of a
// known series are appended to it; new series are appended after the
// existing ones, each ordered by series and instance number. Fields the
// study or a series lacks are filled from the new instances; present fields
// are kept. Key images referenced by new KOS documents are added when their
// instance is in the merged study.
func (s *Study) Merge(ins ...Instance) error {
	var add []Instance
	seen := map[string]bool{}
	for _, in := range ins {
		if err := in.Validate(); err != nil {
			return err
		}
		want := s.StudyInstanceUID
		if want == "" && len(add) > 0 {
			want = add[0].StudyInstanceUID
		}
		if want != "" && in.StudyInstanceUID != want {
			return fmt.Errorf("%w: %s, not %s", ErrStudyMismatch, in.StudyInstanceUID, want)
		}
		if !seen[in.SOPInstanceUID] {
			seen[in.SOPInstanceUID] = true
			add = append(add, in)
		}
	}
	if len(add) == 0 {
		return nil
	}
	if s.countImages()+len(add) > MaxInstances {
		return ErrTooManyInstances
	}
	sortInstances(add)
	ns, refs := build(add)
	present := s.images()
	for _, nse := range ns.Series {
		var fresh []Image
		for _, img := range nse.Images {
			if _, ok := present[img.BlobName]; !ok {
				fresh = append(fresh, img)
			}
		}
		i := slices.IndexFunc(s.Series, func(se Series) bool { return se.SeriesInstanceUID == nse.SeriesInstanceUID })
		if i < 0 {
			if len(fresh) > 0 {
				nse.Images = fresh
				if !hasPreview(fresh) {
					nse.PreviewBlobName = ""
				}
				s.Series = append(s.Series, nse)
			}
			continue
		}
		se := &s.Series[i]
		se.Images = append(se.Images, fresh...)
		setIf(&se.Description, nse.Description)
		if se.InstitutionName == nil {
			se.InstitutionName = nse.InstitutionName
		}
		if se.ReferringPhysician == nil {
			se.ReferringPhysician = nse.ReferringPhysician
		}
		if se.Modality == nil {
			se.Modality = nse.Modality
		}
		if se.BodyPart == nil {
			se.BodyPart = nse.BodyPart
		}
		if se.PreviewBlobName == "" && hasPreview(se.Images) && se.SeriesInstanceUID != "" {
			se.PreviewBlobName = PreviewName(se.SeriesInstanceUID)
		}
		if se.AcquisitionDateTime == nil {
			se.AcquisitionDateTime = nse.AcquisitionDateTime
		}
	}
	if s.When.Date.Y == 0 {
		s.When = ns.When
	}
	setIf(&s.PatientName, ns.PatientName)
	setIf(&s.Description, ns.Description)
	setIf(&s.AccessionNumber, ns.AccessionNumber)
	setIf(&s.StudyInstanceUID, ns.StudyInstanceUID)
	if s.Reason == nil {
		s.Reason = ns.Reason
	}
	if s.ReferringPhysician == nil {
		s.ReferringPhysician = ns.ReferringPhysician
	}
	if s.PreviewBlobName == "" && slices.ContainsFunc(s.Series, func(se Series) bool { return se.PreviewBlobName != "" }) {
		s.PreviewBlobName = PreviewName(s.StudyInstanceUID)
	}
	s.addKeyImages(refs)
	return nil
}

func hasPreview(imgs []Image) bool {
	return slices.ContainsFunc(imgs, func(i Image) bool { return i.PreviewBlobName != "" })
}

func (s *Study) countImages() int {
	n := 0
	for _, se := range s.Series {
		n += len(se.Images)
	}
	return n
}

// BlobNames lists every blob name the study refers to (images, image
// previews, series and study previews), each once, in document order. The
// gateway must have stored a blob under each before it puts the thing.
func (s *Study) BlobNames() []string {
	var out []string
	seen := map[string]bool{}
	add := func(n string) {
		if n != "" && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	for _, se := range s.Series {
		for _, img := range se.Images {
			add(img.BlobName)
			add(img.PreviewBlobName)
		}
		add(se.PreviewBlobName)
	}
	add(s.PreviewBlobName)
	for _, k := range s.KeyImages {
		add(k.BlobName)
		add(k.PreviewBlobName)
	}
	return out
}

// V1 converts the study to medical-image-study.xsd. A series without
// acquisition time takes the study's (it is required in v1); a series
// without referring physician takes the study's.
func (s *Study) V1() *StudyV1 {
	out := &StudyV1{
		When: s.When, PatientName: s.PatientName, Description: s.Description,
		Reason: s.Reason, PreviewBlobName: s.PreviewBlobName, KeyImages: s.KeyImages,
		StudyInstanceUID: s.StudyInstanceUID,
	}
	for _, se := range s.Series {
		acq := s.When
		if se.AcquisitionDateTime != nil {
			acq = *se.AcquisitionDateTime
		}
		rp := se.ReferringPhysician
		if rp == nil {
			rp = s.ReferringPhysician
		}
		out.Series = append(out.Series, SeriesV1{
			AcquisitionDateTime: acq, Description: se.Description, Images: se.Images,
			InstitutionName: se.InstitutionName, ReferringPhysician: rp, Modality: se.Modality,
			BodyPart: se.BodyPart, PreviewBlobName: se.PreviewBlobName, SeriesInstanceUID: se.SeriesInstanceUID,
		})
	}
	return out
}

// V2 converts the study to medical-image-study.2.xsd. Without a study-level
// referring physician the first series' is used.
func (s *Study) V2() *StudyV2 {
	out := &StudyV2{
		When: s.When, PatientName: s.PatientName, Description: s.Description,
		Reason: s.Reason, PreviewBlobName: s.PreviewBlobName, KeyImages: s.KeyImages,
		StudyInstanceUID: s.StudyInstanceUID, ReferringPhysician: s.ReferringPhysician,
		AccessionNumber: s.AccessionNumber,
	}
	for _, se := range s.Series {
		if out.ReferringPhysician == nil {
			out.ReferringPhysician = se.ReferringPhysician
		}
		out.Series = append(out.Series, SeriesV2{
			AcquisitionDateTime: se.AcquisitionDateTime, Description: se.Description, Images: se.Images,
			InstitutionName: se.InstitutionName, Modality: se.Modality, BodyPart: se.BodyPart,
			PreviewBlobName: se.PreviewBlobName, SeriesInstanceUID: se.SeriesInstanceUID,
		})
	}
	return out
}

// check verifies what the schema requires and a Study may lack.
func (s *Study) check() error {
	if s.When.Date.Y < 1000 || s.When.Date.Y > 9999 {
		return ErrNoStudyDate
	}
	if len(s.Series) == 0 {
		return ErrEmptyStudy
	}
	for i, se := range s.Series {
		if len(se.Images) == 0 {
			return fmt.Errorf("%w: series %d has no images", ErrBadMIS, i+1)
		}
	}
	return nil
}

// MIS returns the study as data-xml content of version v: a bare
// <medical-image-study> element (no namespace, as on the wire).
func (s *Study) MIS(v Version) ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	switch v {
	case V1:
		return xml.Marshal(s.V1())
	case V2:
		return xml.Marshal(s.V2())
	}
	return nil, fmt.Errorf("%w: %d", ErrBadVersion, int(v))
}

// maxMIS bounds existing MIS XML accepted by ParseMIS.
const maxMIS = 64 << 20

// ParseMIS parses MIS data-xml content of version v (bare or namespaced
// root) into a Study, e.g. to Merge new instances into a stored thing.
func ParseMIS(data []byte, v Version) (*Study, error) {
	if len(data) > maxMIS {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadMIS, len(data))
	}
	var s *Study
	switch v {
	case V1:
		var x StudyV1
		if err := xml.Unmarshal(data, &x); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadMIS, err)
		}
		s = fromV1(&x)
	case V2:
		var x StudyV2
		if err := xml.Unmarshal(data, &x); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadMIS, err)
		}
		s = fromV2(&x)
	default:
		return nil, fmt.Errorf("%w: %d", ErrBadVersion, int(v))
	}
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadMIS, err)
	}
	return s, nil
}

func fromV1(x *StudyV1) *Study {
	s := &Study{
		When: x.When, PatientName: x.PatientName, Description: x.Description, Reason: x.Reason,
		PreviewBlobName: x.PreviewBlobName, KeyImages: x.KeyImages, StudyInstanceUID: x.StudyInstanceUID,
	}
	for _, se := range x.Series {
		acq := se.AcquisitionDateTime
		s.Series = append(s.Series, Series{
			AcquisitionDateTime: &acq, Description: se.Description, Images: se.Images,
			InstitutionName: se.InstitutionName, ReferringPhysician: se.ReferringPhysician,
			Modality: se.Modality, BodyPart: se.BodyPart, PreviewBlobName: se.PreviewBlobName,
			SeriesInstanceUID: se.SeriesInstanceUID,
		})
		if s.ReferringPhysician == nil {
			s.ReferringPhysician = se.ReferringPhysician
		}
	}
	return s
}

func fromV2(x *StudyV2) *Study {
	s := &Study{
		When: x.When, PatientName: x.PatientName, Description: x.Description, Reason: x.Reason,
		PreviewBlobName: x.PreviewBlobName, KeyImages: x.KeyImages, StudyInstanceUID: x.StudyInstanceUID,
		ReferringPhysician: x.ReferringPhysician, AccessionNumber: x.AccessionNumber,
	}
	for _, se := range x.Series {
		s.Series = append(s.Series, Series{
			AcquisitionDateTime: se.AcquisitionDateTime, Description: se.Description, Images: se.Images,
			InstitutionName: se.InstitutionName, Modality: se.Modality, BodyPart: se.BodyPart,
			PreviewBlobName: se.PreviewBlobName, SeriesInstanceUID: se.SeriesInstanceUID,
		})
	}
	return s
}

// Merge parses existing MIS data-xml of version v, merges the instances
// into it (see Study.Merge) and returns the updated data-xml.
func Merge(existing []byte, v Version, ins ...Instance) ([]byte, error) {
	s, err := ParseMIS(existing, v)
	if err != nil {
		return nil, err
	}
	if err := s.Merge(ins...); err != nil {
		return nil, err
	}
	return s.MIS(v)
}
