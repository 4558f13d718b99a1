package dataset

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"dicomgate/dimse/dicomtest"
)

var seedEncodings = map[string]Encoding{
	"explicit-le-undefined-seq.dset": {},
	"implicit-le.dset":               {Implicit: true},
	"explicit-be.dset":               {BigEndian: true},
	"deflated.dset":                  {Deflated: true},
	"encapsulated.dset":              {},
}

func TestWalkSeeds(t *testing.T) {
	for name, enc := range seedEncodings {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			s, err := Walk(bytes.NewReader(b), enc)
			if err != nil {
				t.Fatal(err)
			}
			want := Summary{SOPClassUID: "1.2.840.10008.5.1.4.1.1.7", SOPInstanceUID: "2.25.1234567890", StudyInstanceUID: "2.25.42", SeriesInstanceUID: "2.25.43"}
			s.Elements, s.HeaderLength, s.PixelData = 0, 0, false
			if s != want {
				t.Fatalf("got %+v", s)
			}
			// Every strict prefix is a truncated data set.
			if enc.Deflated {
				return
			}
			for n := 1; n < len(b); n++ {
				if _, err := Walk(bytes.NewReader(b[:n]), enc); err == nil {
					// A prefix ending exactly on an element boundary at the
					// top level is a valid (shorter) data set.
					continue
				} else if !errors.Is(err, ErrMalformed) {
					t.Fatalf("prefix %d: %v is not ErrMalformed", n, err)
				}
			}
		})
	}
}

func elem(group, el uint16, vr string, val []byte) []byte {
	b := binary.LittleEndian.AppendUint16(nil, group)
	b = binary.LittleEndian.AppendUint16(b, el)
	b = append(b, vr...)
	if isLongVR(vr) {
		b = append(b, 0, 0)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(val)))
	} else {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(val)))
	}
	return append(b, val...)
}

func undefinedHeader(group, el uint16, vr string) []byte {
	b := binary.LittleEndian.AppendUint16(nil, group)
	b = binary.LittleEndian.AppendUint16(b, el)
	b = append(b, vr...)
	b = append(b, 0, 0)
	return binary.LittleEndian.AppendUint32(b, undefinedLength)
}

func itemHeader(tag uint32, n uint32) []byte {
	b := binary.LittleEndian.AppendUint16(nil, uint16(tag>>16))
	b = binary.LittleEndian.AppendUint16(b, uint16(tag))
	return binary.LittleEndian.AppendUint32(b, n)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestWalkMalformed(t *testing.T) {
	cs := elem(0x0008, 0x0060, "CS", []byte("CT"))
	deep := []byte{}
	for range maxDepth + 2 {
		deep = append(deep, cat(undefinedHeader(0x0040, 0xA730, "SQ"), itemHeader(tagItem, undefinedLength))...)
	}
	cases := []struct {
		name string
		in   []byte
	}{
		{"truncated header", cs[:5]},
		{"truncated value", elem(0x0010, 0x0010, "PN", []byte("Doe^John"))[:12]},
		{"invalid VR", cat(cs, []byte{0x10, 0, 0x10, 0, 'z', 'z', 2, 0, 'a', 'b'})},
		{"undefined length on CS", cat(undefinedHeader(0x0008, 0x0060, "UT")[:4], []byte("CS"), []byte{0xFF, 0xFF})},
		{"unterminated sequence", cat(undefinedHeader(0x0008, 0x1110, "SQ"), itemHeader(tagItem, undefinedLength), cs)},
		{"element overruns item", cat(elem(0x0008, 0x1110, "SQ", cat(itemHeader(tagItem, 4), cs))[:0], undefinedHeader(0x0008, 0x1110, "SQ"), itemHeader(tagItem, 4), cs, itemHeader(tagSeqDelimitation, 0))},
		{"stray item tag", cat(cs, itemHeader(tagItem, 0))},
		{"fragment of undefined length", cat(undefinedHeader(0x7FE0, 0x0010, "OB"), itemHeader(tagItem, undefinedLength))},
		{"garbage in pixel data", cat(undefinedHeader(0x7FE0, 0x0010, "OB"), elem(0x0008, 0x0060, "CS", []byte("CT")))},
		{"nesting too deep", deep},
		{"UID too long", elem(0x0008, 0x0018, "UI", bytes.Repeat([]byte("1"), 300))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Walk(bytes.NewReader(c.in), Encoding{})
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
		})
	}
	if _, err := Walk(bytes.NewReader([]byte("not deflate at all")), Encoding{Deflated: true}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("bad deflate stream: %v", err)
	}
}

func TestWalkHeaderLength(t *testing.T) {
	head := cat(elem(0x0008, 0x0060, "CS", []byte("CT")), elem(0x0020, 0x000D, "UI", []byte("2.25.42\x00")),
		undefinedHeader(0x0040, 0xA730, "SQ"), itemHeader(tagItem, undefinedLength), elem(0x7FE0, 0x0010, "OW", []byte{1, 2}),
		itemHeader(tagItemDelimitation, 0), itemHeader(tagSeqDelimitation, 0))
	pixels := elem(0x7FE0, 0x0010, "OW", make([]byte, 64))
	floats := elem(0x7FE0, 0x0008, "OF", make([]byte, 16))
	padding := elem(0xFFFC, 0xFFFC, "OB", make([]byte, 8))
	encaps := cat(undefinedHeader(0x7FE0, 0x0010, "OB"), itemHeader(tagItem, 0), itemHeader(tagItem, 4), []byte{1, 2, 3, 4}, itemHeader(tagSeqDelimitation, 0))
	cases := []struct {
		name      string
		in        []byte
		length    int64
		pixelData bool
	}{
		{"no pixel data", head, int64(len(head)), false},
		{"native pixel data", cat(head, pixels, padding), int64(len(head)), true},
		{"encapsulated pixel data", cat(head, encaps), int64(len(head)), true},
		{"float pixel data", cat(head, floats), int64(len(head)), true},
		{"padding only", cat(head, padding), int64(len(head)), false},
		{"empty", nil, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := Walk(bytes.NewReader(c.in), Encoding{})
			if err != nil {
				t.Fatal(err)
			}
			if s.HeaderLength != c.length || s.PixelData != c.pixelData {
				t.Fatalf("HeaderLength %d PixelData %v, want %d %v", s.HeaderLength, s.PixelData, c.length, c.pixelData)
			}
		})
	}
}

func TestFileMetaRoundTrip(t *testing.T) {
	m := FileMeta{MediaStorageSOPClassUID: "1.2.840.10008.5.1.4.1.1.2", MediaStorageSOPInstanceUID: "2.25.7",
		TransferSyntaxUID: ExplicitVRLittleEndian, ImplementationClassUID: "2.25.9", ImplementationVersionName: "X_1", SourceAETitle: "MODALITY"}
	b := AppendFileMeta(nil, &m)
	b = append(b, 0x08, 0x00, 0x60, 0x00, 'C', 'S', 2, 0, 'C', 'T')
	got, off, err := ReadFileMeta(bufio.NewReader(bytes.NewReader(b)))
	if err != nil {
		t.Fatal(err)
	}
	if got != m || off != int64(len(b)-10) {
		t.Fatalf("got %+v at %d", got, off)
	}
	path := filepath.Join(t.TempDir(), "x.dcm")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadFileMetaFile(path); err != nil || got != m {
		t.Fatalf("ReadFileMetaFile: %+v, %v", got, err)
	}
	if _, _, err := ReadFileMeta(bufio.NewReader(bytes.NewReader(b[:100]))); !errors.Is(err, ErrNotPart10) {
		t.Fatalf("short file: %v", err)
	}
}

// corpusExpect lists the files of the pydicom corpus that are deliberately
// broken, with what the walker must say.
var corpusExpect = map[string]error{
	"MR_truncated.dcm":         ErrMalformed, // pixel data cut short
	"rtplan_truncated.dcm":     ErrMalformed, // cut inside a sequence
	"SC_rgb_jpeg.dcm":          ErrMalformed, // meta says JPEG, data set is not explicit VR
	"ExplVR_BigEndNoMeta.dcm":  ErrNotPart10,
	"ExplVR_LitEndNoMeta.dcm":  ErrNotPart10,
	"no_meta.dcm":              ErrNotPart10,
	"rtstruct.dcm":             ErrNotPart10, // pydicom test file without preamble
	"meta_missing_tsyntax.dcm": ErrMalformed, // meta lacks (0002,0010)
}

// metaDisagrees lists corpus files whose meta header names another SOP
// Instance UID than their data set (a fact of the corpus).
var metaDisagrees = map[string]bool{"badVR.dcm": true, "rtdose.dcm": true, "rtdose_1frame.dcm": true,
	"rtdose_expb.dcm": true, "rtdose_expb_1frame.dcm": true, "rtplan.dcm": true}

// TestWalkCorpus walks every file of the pydicom corpus and the
// suyashkumar/dicom test data: all well-formed files pass, with the SOP
// Instance UID of the data set equal to the meta header's, and the broken
// ones fail with the expected error.
func TestWalkCorpus(t *testing.T) {
	for _, f := range dicomtest.CorpusFiles(t) {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			fh, err := os.Open(f)
			if err != nil {
				t.Fatal(err)
			}
			defer fh.Close()
			br := bufio.NewReader(fh)
			m, _, err := ReadFileMeta(br)
			if err == nil {
				ts, ok := LookupTransferSyntax(m.TransferSyntaxUID)
				if !ok {
					t.Fatalf("unknown transfer syntax %s", m.TransferSyntaxUID)
				}
				var s Summary
				pos, _ := fh.Seek(0, 1)
				pos -= int64(br.Buffered())
				id, idErr := Identify(io.NewSectionReader(fh, pos, 1<<40), ts.Encoding)
				s, err = Walk(br, ts.Encoding)
				if err == nil && (idErr != nil || id.SOPInstanceUID != s.SOPInstanceUID || id.SOPClassUID != s.SOPClassUID) {
					t.Errorf("Identify: %+v %v, Walk: %+v", id, idErr, s)
				}
				if err == nil && s.SOPInstanceUID != "" && s.SOPInstanceUID != m.MediaStorageSOPInstanceUID && !metaDisagrees[name] {
					t.Errorf("data set instance %s, meta %s", s.SOPInstanceUID, m.MediaStorageSOPInstanceUID)
				}
			}
			want := corpusExpect[name]
			if want == nil && err != nil || want != nil && !errors.Is(err, want) {
				t.Fatalf("got %v, want %v", err, want)
			}
		})
	}
}

// FuzzWalk walks arbitrary bytes in every encoding: errors are fine, panics
// and unbounded work are not.
func FuzzWalk(f *testing.F) {
	for name, enc := range seedEncodings {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, encodingMode(enc))
	}
	f.Fuzz(func(t *testing.T, b []byte, mode uint8) {
		// The inverse of encodingMode.
		enc := Encoding{Implicit: mode&1 != 0, BigEndian: mode&2 != 0, Deflated: mode&4 != 0}
		s, err := Walk(bytes.NewReader(b), enc)
		if err == nil && (s.HeaderLength < 0 || s.HeaderLength > int64(len(b)) || enc.Deflated && s.HeaderLength != 0) {
			t.Fatalf("HeaderLength %d of a %d-byte data set", s.HeaderLength, len(b))
		}
		_, _, _ = ReadFileMeta(bufio.NewReader(bytes.NewReader(b)))
	})
}

// encodingMode packs enc into FuzzWalk's mode byte, so each seed is walked
// in its own encoding.
func encodingMode(enc Encoding) uint8 {
	var m uint8
	if enc.Implicit {
		m |= 1
	}
	if enc.BigEndian {
		m |= 2
	}
	if enc.Deflated {
		m |= 4
	}
	return m
}
