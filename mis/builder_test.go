package mis

import (
	"bytes"
	"errors"
	"math/rand"
	"reflect"
	"slices"
	"strings"
	"testing"

	"dicomgate/dimse/dicomtest"
	"github.com/suyashkumar/dicom"
)

func TestKOSKeyImages(t *testing.T) {
	dir := t.TempDir()
	img := synth{study: synStudy, series: synSeries("1"), seriesNo: "1", modality: "CT", studyDate: "20240101", pixels: true}
	kos := synth{study: synStudy, series: synSeries("9"), seriesNo: "9", modality: "KO", sopClass: kosSOPClass, studyDate: "20240101"}
	cases := []struct {
		name  string
		title string
		refs  []string
		want  []string
	}{
		{"of interest", "113000", []string{"1.2.3", "1.2.4", "1.2.3"}, []string{"1.2.3", "1.2.4"}},
		{"rejected for quality", "113001", []string{"1.2.3"}, nil},
		{"rejected for patient safety", "113037", []string{"1.2.3"}, nil},
		{"invalid uid skipped", "113000", []string{"1.2.x", "1.2.5"}, []string{"1.2.5"}},
	}
	for i, c := range cases {
		k := kos
		k.sop, k.kosTitle, k.keyImages = synSeries("9")+"."+itoa(i+1), c.title, c.refs
		in, err := ReadFile(k.write(t, dir))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(in.KeyImages, c.want) {
			t.Errorf("%s: KeyImages = %q, want %q", c.name, in.KeyImages, c.want)
		}
	}
	// A non-KOS instance never has key images.
	img.sop = synSeries("1") + ".1"
	in, err := ReadFile(img.write(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	if len(in.KeyImages) != 0 || !in.HasPixelData {
		t.Errorf("image instance: keys %q, pixels %v", in.KeyImages, in.HasPixelData)
	}
}

func TestFromDatasetEvidenceFallback(t *testing.T) {
	// A KOS without IMAGE content items falls back to the Current Requested
	// Procedure Evidence Sequence; FromDataset sees the same as Read.
	k := synth{study: synStudy, series: synSeries("9"), sop: synSeries("9") + ".1", modality: "KO",
		sopClass: kosSOPClass, keyImages: []string{"1.2.3", "1.2.4"}, evidenceOnly: true}
	p := k.write(t, t.TempDir())
	ds, err := dicom.ParseFile(p, nil, dicom.SkipPixelData())
	if err != nil {
		t.Fatal(err)
	}
	in, err := FromDataset(ds)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(in.KeyImages, []string{"1.2.3", "1.2.4"}) {
		t.Fatalf("KeyImages = %q", in.KeyImages)
	}
	read, err := ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(read, in) {
		t.Errorf("Read %+v\nFromDataset %+v", read, in)
	}
}

func TestInstanceErrors(t *testing.T) {
	good := Instance{StudyInstanceUID: "1.2", SeriesInstanceUID: "1.2.3", SOPInstanceUID: "1.2.3.4"}
	cases := []struct {
		name string
		mod  func(*Instance)
		want error
	}{
		{"no study", func(i *Instance) { i.StudyInstanceUID = "" }, ErrNoStudyUID},
		{"no series", func(i *Instance) { i.SeriesInstanceUID = "" }, ErrNoSeriesUID},
		{"no sop", func(i *Instance) { i.SOPInstanceUID = "" }, ErrNoSOPInstanceUID},
		{"path in uid", func(i *Instance) { i.SOPInstanceUID = "../../etc/passwd" }, ErrInvalidUID},
		{"long uid", func(i *Instance) { i.SOPInstanceUID = "1." + strings.Repeat("1", 64) }, ErrInvalidUID},
		{"ok", func(*Instance) {}, nil},
	}
	for _, c := range cases {
		in := good
		c.mod(&in)
		if err := NewBuilder().Add(in); !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s: Add = %v, want %v", c.name, err, c.want)
		}
	}
	b := NewBuilder()
	if _, err := b.MIS(V2); !errors.Is(err, ErrEmptyStudy) {
		t.Errorf("empty builder: %v", err)
	}
	if err := b.Add(good); err != nil {
		t.Fatal(err)
	}
	other := good
	other.StudyInstanceUID = "1.3"
	if err := b.Add(other); !errors.Is(err, ErrStudyMismatch) {
		t.Errorf("other study: %v", err)
	}
	if _, err := b.MIS(V1); !errors.Is(err, ErrNoStudyDate) {
		t.Errorf("undated: %v", err)
	}
	good.StudyDate = "20240101"
	if err := b.Add(good); err != nil {
		t.Fatal(err)
	}
	if _, err := b.MIS(Version(3)); !errors.Is(err, ErrBadVersion) {
		t.Errorf("version 3: %v", err)
	}
	if _, err := ReadFile(dicomtest.PydicomFile(t, "rtplan_truncated.dcm")); !errors.Is(err, ErrHeader) {
		t.Errorf("truncated file: %v", err)
	}
}

// TestBuilderOrderIndependent adds the synthetic study in many orders, with
// duplicates, and expects identical output, sorted by series then instance number.
func TestBuilderOrderIndependent(t *testing.T) {
	ins := readAll(t, syntheticStudy(t, t.TempDir())...)
	var first []byte
	rng := rand.New(rand.NewSource(1))
	for round := 0; round < 20; round++ {
		perm := slices.Clone(ins)
		rng.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		b := NewBuilder()
		for _, in := range append(perm, perm[:3]...) {
			if err := b.Add(in); err != nil {
				t.Fatal(err)
			}
		}
		if b.Len() != len(ins) {
			t.Fatalf("Len = %d, want %d", b.Len(), len(ins))
		}
		got, err := b.MIS(V2)
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = got
		} else if !bytes.Equal(first, got) {
			t.Fatalf("round %d differs:\n%s\n%s", round, got, first)
		}
	}
	s, err := ParseMIS(first, V2)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, se := range s.Series {
		for _, img := range se.Images {
			order = append(order, strings.TrimPrefix(img.BlobName, synStudy+"."))
		}
	}
	want := []string{"2.1", "2.2", "2.3", "3.1", "3.2", "10.1", "1.4.1"}
	want[6] = strings.TrimPrefix(kosUID, synStudy+".")
	if !slices.Equal(order, want) {
		t.Errorf("image order %q, want %q", order, want)
	}
	blobs := s.BlobNames()
	if len(blobs) != 7+6+3+1 || !slices.Contains(blobs, PreviewName(synStudy)) || !slices.Contains(blobs, PreviewName(synSeries("10"))) {
		t.Errorf("BlobNames = %q", blobs)
	}
}

// TestMerge splits the synthetic study: a thing first written with two
// series gains the third and the KOS later, idempotently, in v1 and v2.
func TestMerge(t *testing.T) {
	ins := readAll(t, syntheticStudy(t, t.TempDir())...)
	var early, late []Instance
	for _, in := range ins {
		if in.SeriesInstanceUID == synSeries("2") || in.SOPInstanceUID == synSeries("3")+".1" {
			early = append(early, in)
		} else {
			late = append(late, in)
		}
	}
	for _, v := range []Version{V1, V2} {
		b := NewBuilder()
		for _, in := range early {
			if err := b.Add(in); err != nil {
				t.Fatal(err)
			}
		}
		first, err := b.MIS(v)
		if err != nil {
			t.Fatal(err)
		}
		merged, err := Merge(first, v, append(late, early...)...)
		if err != nil {
			t.Fatal(err)
		}
		validateMIS(t, merged, v)
		again, err := Merge(merged, v, ins...)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(merged, again) {
			t.Errorf("v%d merge not idempotent:\n%s\n%s", v, merged, again)
		}
		s, err := ParseMIS(merged, v)
		if err != nil {
			t.Fatal(err)
		}
		var blobs []string
		for _, se := range s.Series {
			for _, img := range se.Images {
				blobs = append(blobs, img.BlobName)
			}
		}
		if len(blobs) != len(ins) {
			t.Errorf("v%d merged images %q, want %d", v, blobs, len(ins))
		}
		if len(s.Series) != 4 || s.Series[1].SeriesInstanceUID != synSeries("3") || len(s.Series[1].Images) != 2 {
			t.Errorf("v%d merged series wrong: %+v", v, s.Series)
		}
		if len(s.KeyImages) != 2 {
			t.Errorf("v%d key images %+v", v, s.KeyImages)
		}
		// Same study built in one go holds the same images and key images.
		full := NewBuilder()
		for _, in := range ins {
			if err := full.Add(in); err != nil {
				t.Fatal(err)
			}
		}
		fs, err := full.Study()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(sortedBlobs(fs), sortedBlobs(s)) {
			t.Errorf("v%d merge blobs %q, build blobs %q", v, sortedBlobs(s), sortedBlobs(fs))
		}
		other := ins[0]
		other.StudyInstanceUID = "1.9"
		if _, err := Merge(merged, v, other); !errors.Is(err, ErrStudyMismatch) {
			t.Errorf("merge other study: %v", err)
		}
	}
	if _, err := Merge([]byte("<medical-image-study><when/>"), V2); !errors.Is(err, ErrBadMIS) {
		t.Errorf("bad xml: %v", err)
	}
	if _, err := Merge([]byte("<medical-image-study><when><date><y>2024</y><m>1</m><d>1</d></date></when></medical-image-study>"), V2); !errors.Is(err, ErrBadMIS) {
		t.Errorf("no series: %v", err)
	}
}

func sortedBlobs(s *Study) []string {
	b := s.BlobNames()
	slices.Sort(b)
	return b
}

// TestMergePreservesForeignContent keeps parts written by another
// application (contact details) that this package does not model.
func TestMergePreservesForeignContent(t *testing.T) {
	existing := `<medical-image-study><when><date><y>2024</y><m>1</m><d>2</d></date></when>` +
		`<series><images><image-blob-name>1.2.3.1</image-blob-name></images>` +
		`<institution-name><name>Clinic</name><contact><email><address>a@example.org</address></email></contact></institution-name>` +
		`<series-instance-uid>1.2.3</series-instance-uid></series>` +
		`<study-instance-uid>1.2</study-instance-uid></medical-image-study>`
	in := Instance{StudyInstanceUID: "1.2", SeriesInstanceUID: "1.2.3", SOPInstanceUID: "1.2.3.2", HasPixelData: true, Modality: "MR"}
	out, err := Merge([]byte(existing), V2, in)
	if err != nil {
		t.Fatal(err)
	}
	validateMIS(t, out, V2)
	for _, want := range []string{"<contact><email><address>a@example.org</address></email></contact>",
		"<image-blob-name>1.2.3.2</image-blob-name><image-preview-blob-name>1.2.3.2_preview</image-preview-blob-name>",
		"<preview-blob-name>1.2.3_preview</preview-blob-name>", "<preview-blob-name>1.2_preview</preview-blob-name>",
		"<value>MR</value>"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("merged thing lacks %s:\n%s", want, out)
		}
	}
}
