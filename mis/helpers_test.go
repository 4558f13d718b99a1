package mis

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"dicomgate/dimse/dicomtest"
	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// schemaDir is the official HealthVault schema folder (../shared from the repo root).
func schemaDir(t testing.TB) string {
	t.Helper()
	for _, d := range []string{"../../shared/healthvault/xsd", "/work/shared/healthvault/xsd"} {
		if _, err := os.Stat(filepath.Join(d, "medical-image-study.xsd")); err == nil {
			abs, _ := filepath.Abs(d)
			return abs
		}
	}
	dicomtest.MissingPeer(t, "HealthVault schemas (shared/healthvault/xsd)")
	return ""
}

// validateMIS validates MIS data-xml of version v against the official schema with xmllint.
func validateMIS(t testing.TB, mis []byte, v Version) {
	t.Helper()
	xmllint := dicomtest.LookPath(t, "xmllint")
	xsd := "medical-image-study.xsd"
	if v == V2 {
		xsd = "medical-image-study.2.xsd"
	}
	doc, err := Namespaced(mis)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "mis.xml")
	if err := os.WriteFile(f, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(xmllint, "--noout", "--nonet", "--schema", filepath.Join(schemaDir(t), xsd), f).CombinedOutput()
	if err != nil {
		t.Fatalf("xmllint rejects v%d MIS: %v\n%s\n%s", v, err, out, mis)
	}
}

// synth describes a synthetic instance written with suyashkumar/dicom.
type synth struct {
	study, series, sop       string
	sopClass                 string
	seriesNo, instNo         string
	modality                 string
	charset                  []string
	studyDate, studyTime, tz string
	acqDate, acqTime         string
	patient, referring       string // raw bytes in the data set's character set
	institution, accession   string
	studyDesc, seriesDesc    string
	reason, bodyPart         string
	pixels                   bool
	keyImages                []string // KOS: referenced SOP instances
	kosTitle                 string   // KOS document title code value
	evidenceOnly             bool     // KOS without IMAGE content items
}

func el(t testing.TB, tg tag.Tag, v any) *dicom.Element {
	t.Helper()
	e, err := dicom.NewElement(tg, v)
	if err != nil {
		t.Fatalf("element %v: %v", tg, err)
	}
	return e
}

// write writes the instance as a DICOM Part 10 file in dir and returns its path.
func (s synth) write(t testing.TB, dir string) string {
	t.Helper()
	sopClass := s.sopClass
	if sopClass == "" {
		sopClass = "1.2.840.10008.5.1.4.1.1.7" // Secondary Capture
	}
	els := []*dicom.Element{
		el(t, tag.MediaStorageSOPClassUID, []string{sopClass}),
		el(t, tag.MediaStorageSOPInstanceUID, []string{s.sop}),
		el(t, tag.TransferSyntaxUID, []string{"1.2.840.10008.1.2.1"}),
	}
	add := func(tg tag.Tag, v string) {
		if v != "" {
			els = append(els, el(t, tg, []string{v}))
		}
	}
	if len(s.charset) > 0 {
		els = append(els, el(t, tag.SpecificCharacterSet, s.charset))
	}
	add(tag.SOPClassUID, sopClass)
	add(tag.SOPInstanceUID, s.sop)
	add(tag.StudyDate, s.studyDate)
	add(tag.StudyTime, s.studyTime)
	add(tag.AcquisitionDate, s.acqDate)
	add(tag.AcquisitionTime, s.acqTime)
	add(tag.AccessionNumber, s.accession)
	add(tag.Modality, s.modality)
	add(tag.InstitutionName, s.institution)
	add(tag.ReferringPhysicianName, s.referring)
	add(tag.TimezoneOffsetFromUTC, s.tz)
	add(tag.StudyDescription, s.studyDesc)
	add(tag.SeriesDescription, s.seriesDesc)
	add(tag.PatientName, s.patient)
	add(tag.BodyPartExamined, s.bodyPart)
	add(tag.StudyInstanceUID, s.study)
	add(tag.SeriesInstanceUID, s.series)
	add(tag.SeriesNumber, s.seriesNo)
	add(tag.InstanceNumber, s.instNo)
	add(tag.ReasonForStudy, s.reason)
	if len(s.keyImages) > 0 {
		title := s.kosTitle
		if title == "" {
			title = "113000"
		}
		els = append(els, el(t, tag.ConceptNameCodeSequence, [][]*dicom.Element{{
			el(t, tag.CodeValue, []string{title}),
			el(t, tag.CodingSchemeDesignator, []string{"DCM"}),
			el(t, tag.CodeMeaning, []string{"Of Interest"}),
		}}))
		var content, refs [][]*dicom.Element
		for _, uid := range s.keyImages {
			ref := []*dicom.Element{
				el(t, tag.ReferencedSOPClassUID, []string{"1.2.840.10008.5.1.4.1.1.7"}),
				el(t, tag.ReferencedSOPInstanceUID, []string{uid}),
			}
			refs = append(refs, ref)
			content = append(content, []*dicom.Element{
				el(t, tag.RelationshipType, []string{"CONTAINS"}),
				el(t, tag.ValueType, []string{"IMAGE"}),
				el(t, tag.ReferencedSOPSequence, [][]*dicom.Element{ref}),
			})
		}
		els = append(els,
			el(t, tag.ValueType, []string{"CONTAINER"}),
			el(t, tag.CurrentRequestedProcedureEvidenceSequence, [][]*dicom.Element{{
				el(t, tag.StudyInstanceUID, []string{s.study}),
				el(t, tag.ReferencedSeriesSequence, [][]*dicom.Element{{
					el(t, tag.SeriesInstanceUID, []string{s.series}),
					el(t, tag.ReferencedSOPSequence, refs),
				}}),
			}}),
		)
		if !s.evidenceOnly {
			els = append(els, el(t, tag.ContentSequence, content))
		}
	}
	if s.pixels {
		els = append(els,
			el(t, tag.SamplesPerPixel, []int{1}),
			el(t, tag.PhotometricInterpretation, []string{"MONOCHROME2"}),
			el(t, tag.Rows, []int{2}),
			el(t, tag.Columns, []int{2}),
			el(t, tag.BitsAllocated, []int{16}),
			el(t, tag.BitsStored, []int{12}),
			el(t, tag.HighBit, []int{11}),
			el(t, tag.PixelRepresentation, []int{0}),
			el(t, tag.PixelData, dicom.PixelDataInfo{
				IntentionallyUnprocessed: true,
				UnprocessedValueData:     []byte{0, 1, 0, 2, 0, 3, 0, 4},
			}),
		)
	}
	var buf bytes.Buffer
	if err := dicom.Write(&buf, dicom.Dataset{Elements: els}, dicom.SkipVRVerification()); err != nil {
		t.Fatalf("write synthetic %s: %v", s.sop, err)
	}
	p := filepath.Join(dir, s.sop+".dcm")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// readAll reads the files into Instances.
func readAll(t testing.TB, paths ...string) []Instance {
	t.Helper()
	var out []Instance
	for _, p := range paths {
		in, err := ReadFile(p)
		if err != nil {
			t.Fatalf("ReadFile(%s): %v", p, err)
		}
		out = append(out, in)
	}
	return out
}
