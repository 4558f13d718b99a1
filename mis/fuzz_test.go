package mis

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"dicomgate/dimse/dicomtest"
)

// fuzzSeeds returns small real and synthetic DICOM files as seeds.
func fuzzSeeds(f *testing.F) [][]byte {
	var paths []string
	if m, _ := filepath.Glob(filepath.Join(dicomtest.PydicomData, "charset_files", "*.dcm")); len(m) > 0 {
		paths = append(paths, m...)
	} else if dicomtest.RequirePeers() {
		f.Fatal("pydicom charset_files missing")
	}
	for _, rel := range []string{"test_files/CT_small.dcm", "test_files/rtplan.dcm", "test_files/ExplVR_BigEnd.dcm",
		"test_files/MR_small_implicit.dcm", "test_files/image_dfl.dcm", "test_files/reportsi.dcm"} {
		p := filepath.Join(dicomtest.PydicomData, rel)
		if _, err := os.Stat(p); err == nil {
			paths = append(paths, p)
		} else if dicomtest.RequirePeers() {
			f.Fatalf("pydicom seed missing: %v", err)
		}
	}
	paths = append(paths, syntheticStudy(f, f.TempDir())...)
	var out [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// FuzzRead feeds hostile headers to Read and the builder: no panic, and
// whatever is accepted becomes an MIS that parses back.
func FuzzRead(f *testing.F) {
	for _, b := range fuzzSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := Read(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		if err := in.Validate(); err != nil {
			t.Fatalf("Read returned an invalid instance: %v", err)
		}
		in.StudyDate = "20240101" // the gateway's fallback for undated studies
		b := NewBuilder()
		if err := b.Add(in); err != nil {
			t.Fatal(err)
		}
		for _, v := range []Version{V1, V2} {
			out, err := b.MIS(v)
			if err != nil {
				t.Fatal(err)
			}
			if !utf8.Valid(out) {
				t.Fatalf("MIS is not UTF-8: %q", out)
			}
			if _, err := ParseMIS(out, v); err != nil {
				t.Fatalf("own MIS does not parse: %v\n%s", err, out)
			}
		}
	})
}

// FuzzDecode checks that any bytes under any character set decode to UTF-8.
func FuzzDecode(f *testing.F) {
	for _, c := range []struct {
		cs  string
		raw string
	}{
		{`\ISO 2022 IR 87`, "Yamada^Tarou=\x1b$B;3ED\x1b(B"},
		{`ISO 2022 IR 13\ISO 2022 IR 87`, "\xd4\xcf\xc0\xde^\x1b$B;3ED\x1b(J"},
		{`\ISO 2022 IR 149`, "\x1b$)C\xfb\xf3"},
		{`ISO_IR 192`, "\xe7\x8e\x8b"},
		{`GB18030`, "\xcd\xf5"},
		{`ISO_IR 100`, "J\xe9r\xf4me"},
	} {
		f.Add(c.cs, []byte(c.raw), true)
	}
	f.Fuzz(func(t *testing.T, cs string, raw []byte, pn bool) {
		out := NewCharset(strings.Split(cs, `\`)).Decode(raw, pn)
		if !utf8.ValidString(out) {
			t.Fatalf("Decode(%q, %q) = %q: not UTF-8", cs, raw, out)
		}
		if c := cleanText(out); !utf8.ValidString(c) || strings.TrimSpace(c) != c {
			t.Fatalf("cleanText(%q) = %q", out, c)
		}
	})
}

// FuzzParseMIS feeds existing-thing XML to ParseMIS and Merge, seeded with
// the golden files: no panic, and accepted input merges into a valid study.
func FuzzParseMIS(f *testing.F) {
	golden, _ := filepath.Glob(filepath.Join("testdata", "*.xml"))
	for _, g := range golden {
		b, err := os.ReadFile(g)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, g[len(g)-5] == '2')
	}
	in := Instance{StudyInstanceUID: "1.2", SeriesInstanceUID: "1.2.3", SOPInstanceUID: "1.2.3.4", HasPixelData: true}
	f.Fuzz(func(t *testing.T, data []byte, v2 bool) {
		v := V1
		if v2 {
			v = V2
		}
		s, err := ParseMIS(data, v)
		if err != nil {
			if !errors.Is(err, ErrBadMIS) {
				t.Fatalf("ParseMIS error not ErrBadMIS: %v", err)
			}
			return
		}
		in.StudyInstanceUID = s.StudyInstanceUID
		if in.StudyInstanceUID == "" || !ValidUID(in.StudyInstanceUID) {
			in.StudyInstanceUID = "1.2"
			s.StudyInstanceUID = ""
		}
		if err := s.Merge(in); err != nil {
			return
		}
		if _, err := s.MIS(v); err != nil {
			t.Fatalf("merged study does not marshal: %v", err)
		}
	})
}
