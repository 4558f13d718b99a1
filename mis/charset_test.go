package mis

import (
	"path/filepath"
	"testing"

	"dicomgate/dimse/dicomtest"
	"github.com/suyashkumar/dicom"
)

func TestCharsetDecode(t *testing.T) {
	cases := []struct {
		name    string
		charset []string
		raw     string
		pn      bool
		want    string
	}{
		{"default", nil, "Doe^John", true, "Doe^John"},
		{"latin1", []string{"ISO_IR 100"}, "Buc^J\xe9r\xf4me", true, "Buc^Jérôme"},
		{"latin1 C1 stays ISO 8859-1", []string{"ISO_IR 100"}, "a\x80b", false, "a\u0080b"},
		{"latin2", []string{"ISO_IR 101"}, "\xa3\xf3d\xbc", false, "Łódź"},
		{"greek", []string{"ISO_IR 126"}, "\xc4\xe9\xef\xed\xf5\xf3\xe9\xef\xf2", true, "Διονυσιος"},
		{"cyrillic", []string{"ISO_IR 144"}, "\xbb\xee\xdace\xdc\xd1yp\xd3", true, "Люкceмбypг"},
		{"arabic", []string{"ISO_IR 127"}, "\xe2\xc8\xc7\xe6\xea^\xe4\xe6\xd2\xc7\xd1", true, "قباني^لنزار"},
		{"hebrew", []string{"ISO_IR 138"}, "\xf9\xf8\xe5\xef^\xe3\xe1\xe5\xf8\xe4", true, "שרון^דבורה"},
		{"thai", []string{"ISO_IR 166"}, "\xa1\xc3\xd8\xa7\xe0\xb7\xbe", false, "กรุงเทพ"},
		{"utf8", []string{"ISO_IR 192"}, "Wang^XiaoDong=\xe7\x8e\x8b^\xe5\xb0\x8f\xe6\x9d\xb1=", true, "Wang^XiaoDong=王^小東="},
		{"utf8 invalid", []string{"ISO_IR 192"}, "a\xffb", false, "a\uFFFDb"},
		{"gb18030", []string{"GB18030"}, "Wang^XiaoDong=\xcd\xf5^\xd0\xa1\xb6\xab=", true, "Wang^XiaoDong=王^小东="},
		{"gb18030 backslash trail byte", []string{"GB18030"}, "\x81\x5c", false, "乗"},
		{"jis x 0201 katakana", []string{"ISO_IR 13"}, "\xd4\xcf\xc0\xde^\xc0\xdb\xb3", true, "ﾔﾏﾀﾞ^ﾀﾛｳ"},
		{"iso 2022 ir 87 (chrH31)", []string{"", "ISO 2022 IR 87"},
			"Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B", true,
			"Yamada^Tarou=山田^太郎=やまだ^たろう"},
		{"iso 2022 ir 13 + 87 (chrH32)", []string{"ISO 2022 IR 13", "ISO 2022 IR 87"},
			"\xd4\xcf\xc0\xde^\xc0\xdb\xb3=\x1b$B;3ED\x1b(J^\x1b$BB@O:\x1b(J=\x1b$B$d$^$@\x1b(J^\x1b$B$?$m$&\x1b(J", true,
			"ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう"},
		{"iso 2022 ir 149 (chrI2)", []string{"", "ISO 2022 IR 149"},
			"Hong^Gildong=\x1b$)C\xfb\xf3^\x1b$)C\xd1\xce\xd4\xd7=\x1b$)C\xc8\xab^\x1b$)C\xb1\xe6\xb5\xbf", true,
			"Hong^Gildong=洪^吉洞=홍^길동"},
		{"iso 2022 ir 58", []string{"", "ISO 2022 IR 58"},
			"Zhang^XiaoDong=\x1b$)A\xd5\xc5^\x1b$)A\xd0\xa1\xb6\xab=", true, "Zhang^XiaoDong=张^小东="},
		{"iso 2022 ir 159", []string{"", "ISO 2022 IR 159"}, "\x1b$(D\x30\x21\x1b(B", false, "丂"},
		{"iso 2022 latin1 + greek by escape", []string{"ISO 2022 IR 100", "ISO 2022 IR 126"},
			"Caf\xe9 \x1b-F\xc1\xe8\xde\xed\xe1", false, "Café Αθήνα"},
		{"escape scope ends at delimiter", []string{"ISO 2022 IR 100", "ISO 2022 IR 126"},
			"\x1b-F\xc1^\xc1", true, "Α^Á"},
		{"unknown escape dropped", []string{"ISO 2022 IR 100"}, "a\x1b$)Zb", false, "ab"},
		{"truncated escape", []string{"", "ISO 2022 IR 87"}, "a\x1b$", false, "a"},
		{"truncated two-byte", []string{"", "ISO 2022 IR 87"}, "\x1b$B;", false, "\uFFFD"},
		{"high byte without G1", nil, "a\xe9", false, "a\uFFFD"},
		{"unknown term falls back", []string{"ISO_IR 999"}, "abc", false, "abc"},
	}
	for _, c := range cases {
		got := NewCharset(c.charset).Decode([]byte(c.raw), c.pn)
		if got != c.want {
			t.Errorf("%s: Decode = %q, want %q", c.name, got, c.want)
		}
	}
}

// pydicomNames are the Patient's Name values pydicom decodes from its
// charset_files (checked with pydicom 2.x: str(dcmread(f).PatientName)).
var pydicomNames = []struct {
	file, name string
	// libraryOK tells whether suyashkumar/dicom's own decoding (the
	// FromDataset path) gets it right after escape clean-up.
	libraryOK bool
}{
	{"chrArab.dcm", "قباني^لنزار", true},
	{"chrFren.dcm", "Buc^Jérôme", true},
	{"chrFrenMulti.dcm", "Buc^Jérôme", true},
	{"chrGerm.dcm", "Äneas^Rüdiger", true},
	{"chrGreek.dcm", "Διονυσιος", true},
	{"chrH31.dcm", "Yamada^Tarou=山田^太郎=やまだ^たろう", true},
	{"chrH32.dcm", "ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう", false},
	{"chrHbrw.dcm", "שרון^דבורה", true},
	{"chrI2.dcm", "Hong^Gildong=洪^吉洞=홍^길동", true},
	{"chrJapMulti.dcm", "やまだ^たろう", true},
	{"chrJapMultiExplicitIR6.dcm", "やまだ^たろう", true},
	{"chrKoreanMulti.dcm", "김희중", true},
	{"chrRuss.dcm", "Люкceмбypг", true},
	{"chrX1.dcm", "Wang^XiaoDong=王^小東=", true},
	{"chrX2.dcm", "Wang^XiaoDong=王^小东=", true},
}

func TestCharsetPydicomFiles(t *testing.T) {
	dir := dicomtest.RequireFile(t, filepath.Join(dicomtest.PydicomData, "charset_files"))
	for _, c := range pydicomNames {
		t.Run(c.file, func(t *testing.T) {
			p := filepath.Join(dir, c.file)
			in, err := ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if in.PatientName != c.name {
				t.Errorf("Read: PatientName = %q, want %q", in.PatientName, c.name)
			}
			ds, err := dicom.ParseFile(p, nil, dicom.SkipPixelData(), dicom.AllowUnknownSpecificCharacterSet())
			if err != nil {
				t.Fatal(err)
			}
			fromDS, err := FromDataset(ds)
			if err != nil {
				t.Fatal(err)
			}
			if (fromDS.PatientName == c.name) != c.libraryOK {
				t.Errorf("FromDataset: PatientName = %q (library decoding expected ok=%v)", fromDS.PatientName, c.libraryOK)
			}
		})
	}
}

// TestReadDeflated checks the fallback for the deflated transfer syntax,
// where raw bytes are not at hand.
func TestReadDeflated(t *testing.T) {
	in, err := ReadFile(dicomtest.SuyashFile(t, "6.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	if in.SOPInstanceUID == "" || !in.HasPixelData {
		t.Errorf("deflated file: %+v", in)
	}
}

// pydicomCharsetFile returns a file of pydicom's charset_files, or skips the
// test (fails it when peers are required).
func pydicomCharsetFile(t testing.TB, name string) string {
	t.Helper()
	return dicomtest.RequireFile(t, filepath.Join(dicomtest.PydicomData, "charset_files", name))
}
