package mis

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"dicomgate/dimse/dicomtest"
)

const (
	synStudy = "1.2.826.0.1.3680043.9.7433.1.1"
	kosUID   = "1.2.826.0.1.3680043.9.7433.1.4.1"
)

func synSeries(n string) string { return synStudy + "." + n }

// syntheticStudy writes a three-series study plus a KOS series, in an
// order unlike the study's, and returns the file paths. Names are Latin-1
// (ISO_IR 100) so the raw-byte decoding is exercised.
func syntheticStudy(t testing.TB, dir string) []string {
	t.Helper()
	base := synth{
		study: synStudy, charset: []string{"ISO_IR 100"},
		studyDate: "20240229", studyTime: "081530.250", tz: "+0100",
		patient: "M\xfcller^J\xfcrgen^^Dr.^", referring: "Ca\xf1o^Jos\xe9",
		institution: "H\xf4pital Saint-\xc9loi", accession: "ACC-0001",
		studyDesc: "CT Thorax/Abdomen", reason: "Suspected pulmonary embolism",
	}
	var specs []synth
	add := func(series, seriesNo, modality, desc, body string, n int, acqTime string) {
		for i := n; i >= 1; i-- { // reverse order on purpose
			s := base
			s.series, s.seriesNo, s.modality, s.seriesDesc, s.bodyPart = synSeries(series), seriesNo, modality, desc, body
			s.sop = synSeries(series) + "." + itoa(i)
			s.instNo = itoa(i)
			s.acqDate, s.acqTime = "20240229", acqTime
			s.pixels = true
			specs = append(specs, s)
		}
	}
	add("3", "3", "CT", "Abdomen portal venous", "ABDOMEN", 2, "082500")
	add("10", "10", "CT", "Reformat 10 before 9", "ABDOMEN", 1, "083000")
	add("2", "2", "CT", "Thorax arterial", "CHEST", 3, "081700")
	kos := base
	kos.series, kos.seriesNo, kos.modality, kos.sop, kos.instNo = synSeries("900"), "900", "KO", kosUID, "1"
	kos.sopClass = kosSOPClass
	kos.seriesDesc = "Key images"
	kos.keyImages = []string{synSeries("3") + ".2", synSeries("2") + ".1", "1.2.3.4.5.6.7.8.9"}
	specs = append(specs, kos)
	var paths []string
	for _, s := range specs {
		paths = append(paths, s.write(t, dir))
	}
	return paths
}

func itoa(i int) string { return strconv.Itoa(i) }

// checkGolden compares got with testdata/name, or rewrites it with -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to create)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden:\n got: %s\nwant: %s", name, got, want)
	}
}

func TestGoldenMIS(t *testing.T) {
	cases := []struct {
		name  string
		files func(t *testing.T) []string
		// undated marks files without any usable date: the build must fail
		// with ErrNoStudyDate, then succeed once the caller (the gateway)
		// supplies a study date, e.g. the day it received the instance.
		undated bool
	}{
		{"suyash-pet", func(t *testing.T) []string { return []string{dicomtest.SuyashFile(t, "1.dcm")} }, false},
		{"suyash-mr", func(t *testing.T) []string { return []string{dicomtest.SuyashFile(t, "3.dcm")} }, false},
		{"suyash-cr", func(t *testing.T) []string { return []string{dicomtest.SuyashFile(t, "4.dcm")} }, false},
		{"suyash-ct", func(t *testing.T) []string { return []string{dicomtest.SuyashFile(t, "5.dcm")} }, false},
		{"pydicom-ct-small", func(t *testing.T) []string { return []string{dicomtest.PydicomFile(t, "CT_small.dcm")} }, false},
		{"pydicom-rtplan", func(t *testing.T) []string { return []string{dicomtest.PydicomFile(t, "rtplan.dcm")} }, false},
		{"pydicom-us-bigendian", func(t *testing.T) []string { return []string{dicomtest.PydicomFile(t, "ExplVR_BigEnd.dcm")} }, false},
		{"pydicom-chrH32", func(t *testing.T) []string { return []string{pydicomCharsetFile(t, "chrH32.dcm")} }, true},
		{"pydicom-chrI2", func(t *testing.T) []string { return []string{pydicomCharsetFile(t, "chrI2.dcm")} }, true},
		{"pydicom-korean-cr", func(t *testing.T) []string { return []string{pydicomCharsetFile(t, "chrKoreanMulti.dcm")} }, false},
		{"synthetic-multiseries", func(t *testing.T) []string { return syntheticStudy(t, t.TempDir()) }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ins := readAll(t, c.files(t)...)
			b := NewBuilder()
			for _, in := range ins {
				if err := b.Add(in); err != nil {
					t.Fatal(err)
				}
			}
			if c.undated {
				if _, err := b.MIS(V1); !errors.Is(err, ErrNoStudyDate) {
					t.Fatalf("undated study: err = %v, want ErrNoStudyDate", err)
				}
				for _, in := range ins {
					in.StudyDate = "20070405"
					if err := b.Add(in); err != nil {
						t.Fatal(err)
					}
				}
			}
			for _, v := range []Version{V1, V2} {
				got, err := b.MIS(v)
				if err != nil {
					t.Fatalf("MIS(v%d): %v", v, err)
				}
				validateMIS(t, got, v)
				checkGolden(t, c.name+".v"+string(rune('0'+v))+".xml", got)
			}
		})
	}
}
