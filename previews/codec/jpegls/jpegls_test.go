package jpegls

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"dicomgate/dimse/dicomtest"
)

// golden lists the committed streams (testdata/PROVENANCE.md) with the
// SHA-256 of the samples dcmdjpls decodes from them (little-endian uint16,
// components interleaved).
var golden = []struct {
	file              string
	w, h, comps, prec int
	sha               string
	ilv               int
	near              int
}{
	{"mr_lossless.jls", 64, 64, 1, 16, "88617aaa46138fb1b6e2a951e762d962382354d69f47f8c04d4abff2f6a6a63e", 0, 0},
	{"odd_line.jls", 3, 3, 3, 8, "14c393f6263719ed9a5b219c375ab8c256b4a41cc9c6930ae32ea0a77f167526", 1, 0},
	{"odd_sample.jls", 3, 3, 3, 8, "14c393f6263719ed9a5b219c375ab8c256b4a41cc9c6930ae32ea0a77f167526", 2, 0},
	{"odd_none.jls", 3, 3, 3, 8, "14c393f6263719ed9a5b219c375ab8c256b4a41cc9c6930ae32ea0a77f167526", 0, 0},
	{"rgb_near3_custom.jls", 80, 60, 3, 8, "a087c656b791e133afceb1f3adb8d1a1c930488aab822fa5150ee9546f2be04e", 1, 3},
	{"rgb_near2_sample.jls", 80, 60, 3, 8, "f21c4a5d46037df98d8cce2b498fa7596f8fa26eacccf60c8a7fd402aa963813", 2, 2},
}

func pixSHA(pix []uint16) string {
	b := make([]byte, 2*len(pix))
	for i, v := range pix {
		binary.LittleEndian.PutUint16(b[2*i:], v)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestGolden(t *testing.T) {
	for _, g := range golden {
		t.Run(g.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", g.file))
			if err != nil {
				t.Fatal(err)
			}
			ilv, near, _ := streamInfo(data)
			if ilv != g.ilv || near != g.near {
				t.Fatalf("stream has ILV=%d NEAR=%d, table says %d/%d", ilv, near, g.ilv, g.near)
			}
			img, err := Decode(data)
			if err != nil {
				t.Fatal(err)
			}
			if img.Width != g.w || img.Height != g.h || img.Components != g.comps || img.Precision != g.prec {
				t.Fatalf("got %dx%dx%d P=%d", img.Width, img.Height, img.Components, img.Precision)
			}
			if got := pixSHA(img.Pix); got != g.sha {
				t.Fatalf("samples hash %s, dcmdjpls %s", got, g.sha)
			}
		})
	}
}

func TestDefaultThresholds(t *testing.T) {
	tests := []struct {
		maxVal, near, t1, t2, t3 int
	}{
		{255, 0, 3, 7, 21},     // the T.87 8-bit defaults
		{4095, 0, 18, 67, 276}, // 12-bit
		{65535, 0, 18, 67, 276},
		{255, 2, 9, 17, 35},
		{127, 0, 2, 3, 10},
		{15, 0, 2, 3, 4},
		{3, 0, 2, 3, 3},
		{1023, 1, 9, 24, 79},
	}
	for _, tt := range tests {
		t1, t2, t3 := defaultThresholds(tt.maxVal, tt.near)
		if t1 != tt.t1 || t2 != tt.t2 || t3 != tt.t3 {
			t.Errorf("defaultThresholds(%d, %d) = %d,%d,%d, want %d,%d,%d", tt.maxVal, tt.near, t1, t2, t3, tt.t1, tt.t2, tt.t3)
		}
	}
}

func TestScanParams(t *testing.T) {
	tests := []struct {
		prec, near       int
		pr               presets
		rng, qbpp, limit int
		wantErr          bool
	}{
		{8, 0, presets{}, 256, 8, 32, false},
		{16, 0, presets{}, 65536, 16, 64, false},
		{12, 0, presets{}, 4096, 12, 48, false},
		{8, 2, presets{}, 52, 6, 32, false},
		{12, 0, presets{maxVal: 1000}, 1001, 10, 40, false},
		{8, 0, presets{maxVal: 300}, 0, 0, 0, true},  // MAXVAL above 2^P-1
		{8, 200, presets{}, 0, 0, 0, true},           // NEAR above MAXVAL/2
		{8, 0, presets{t1: 9, t2: 5}, 0, 0, 0, true}, // T2 < T1
		{8, 0, presets{reset: 2}, 0, 0, 0, true},     // RESET < 3
		{2, 0, presets{}, 4, 2, 20, false},
	}
	for _, tt := range tests {
		p, err := scanParams(tt.prec, tt.near, tt.pr)
		if (err != nil) != tt.wantErr {
			t.Errorf("scanParams(%d, %d, %+v) error %v, want error %v", tt.prec, tt.near, tt.pr, err, tt.wantErr)
			continue
		}
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("error %v is not ErrCorrupt", err)
			}
			continue
		}
		if p.rng != tt.rng || p.qbpp != tt.qbpp || p.limit != tt.limit {
			t.Errorf("scanParams(%d, %d): RANGE %d qbpp %d LIMIT %d, want %d %d %d", tt.prec, tt.near, p.rng, p.qbpp, p.limit, tt.rng, tt.qbpp, tt.limit)
		}
	}
}

// bitsOf packs a string of '0'/'1' into bytes, MSB first, zero padded.
func bitsOf(s string) []byte {
	out := make([]byte, (len(s)+7)/8)
	for i, c := range s {
		if c == '1' {
			out[i/8] |= 0x80 >> uint(i%8)
		}
	}
	return out
}

func TestGolomb(t *testing.T) {
	tests := []struct {
		name           string
		bits           string
		k, limit, qbpp int
		want           int
		ok             bool
	}{
		{"k0 value0", "1", 0, 32, 8, 0, true},
		{"k0 value3", "0001", 0, 32, 8, 3, true},
		{"k2 value9", "01" + "01", 2, 32, 8, 5, true},
		{"k2 value 2<<2|3", "001" + "11", 2, 32, 8, 11, true},
		{"escape", "00000000000000000000000" + "1" + "00000101", 0, 32, 8, 6, true},
		{"too long", "000000000000000000000000000000001", 0, 32, 8, 0, false},
	}
	for _, tt := range tests {
		br := newBitReader(bitsOf(tt.bits))
		got, ok := br.golomb(tt.k, tt.limit, tt.qbpp)
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("%s: golomb = %d,%v want %d,%v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}

func TestBitStuffing(t *testing.T) {
	// After 0xFF only the 7 low bits of the next byte are data.
	br := newBitReader([]byte{0xFF, 0x7F, 0x80})
	if v := br.read(8); v != 0xFF {
		t.Fatalf("first byte %x", v)
	}
	if v := br.read(7); v != 0x7F {
		t.Fatalf("stuffed byte gave %x, want 7f", v)
	}
	if v := br.bit(); v != 1 {
		t.Fatalf("bit after stuffed byte %d", v)
	}
	if br.overrun() {
		t.Fatal("overrun reported inside data")
	}
	br.read(16)
	if !br.overrun() {
		t.Fatal("overrun not reported past data")
	}
}

func TestContextAndPredictor(t *testing.T) {
	ctx := []struct {
		q1, q2, q3 int
		q          int
		neg        bool
	}{
		{0, 0, 1, 1, false},
		{0, 0, -1, 1, true},
		{1, -4, 4, 81 - 36 + 4, false},
		{-1, 4, -4, 81 - 36 + 4, true},
		{4, 4, 4, 364, false},
		{0, -2, 3, 18 - 3, true},
	}
	for _, tt := range ctx {
		q, neg := context(tt.q1, tt.q2, tt.q3)
		if q != tt.q || neg != tt.neg {
			t.Errorf("context(%d,%d,%d) = %d,%v want %d,%v", tt.q1, tt.q2, tt.q3, q, neg, tt.q, tt.neg)
		}
	}
	pred := []struct{ ra, rb, rc, want int }{
		{10, 20, 25, 10}, // rc ≥ max: min
		{10, 20, 5, 20},  // rc ≤ min: max
		{10, 20, 15, 15}, // ra+rb-rc
		{7, 7, 7, 7},
	}
	for _, tt := range pred {
		if got := med(tt.ra, tt.rb, tt.rc); got != tt.want {
			t.Errorf("med(%d,%d,%d) = %d want %d", tt.ra, tt.rb, tt.rc, got, tt.want)
		}
	}
	cd := newCoder(params{maxVal: 255, t1: 3, t2: 7, t3: 21, reset: 64, rng: 256, qbpp: 8, limit: 32})
	quant := []struct {
		d    int
		want int8
	}{{-255, -4}, {-21, -4}, {-20, -3}, {-7, -3}, {-6, -2}, {-3, -2}, {-2, -1}, {-1, -1}, {0, 0}, {1, 1}, {2, 1}, {3, 2}, {6, 2}, {7, 3}, {20, 3}, {21, 4}, {255, 4}}
	for _, tt := range quant {
		if got := cd.quantize(tt.d); got != tt.want {
			t.Errorf("quantize(%d) = %d want %d", tt.d, got, tt.want)
		}
	}
}

func TestMalformed(t *testing.T) {
	good, err := os.ReadFile(filepath.Join("testdata", "rgb_near2_sample.jls"))
	if err != nil {
		t.Fatal(err)
	}
	sof := func(p, h, w, nf int, hv byte) []byte {
		b := []byte{0xFF, 0xD8, 0xFF, 0xF7, 0, byte(8 + 3*nf), byte(p), byte(h >> 8), byte(h), byte(w >> 8), byte(w), byte(nf)}
		for i := range nf {
			b = append(b, byte(i+1), hv, 0)
		}
		return b
	}
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrCorrupt},
		{"no SOI", []byte{0xFF, 0xD9}, ErrCorrupt},
		{"SOI only", []byte{0xFF, 0xD8}, ErrCorrupt},
		{"EOI without frame", []byte{0xFF, 0xD8, 0xFF, 0xD9}, ErrCorrupt},
		{"huge dimensions", append(sof(16, 65535, 65535, 4, 0x11), 0xFF, 0xD9), ErrUnsupported},
		{"implausible height", append(sof(16, 4000, 40, 3, 0x11), 0xFF, 0xD9), ErrCorrupt},
		{"precision 1", append(sof(1, 4, 4, 1, 0x11), 0xFF, 0xD9), ErrCorrupt},
		{"subsampled", append(sof(8, 4, 4, 3, 0x21), 0xFF, 0xD9), ErrUnsupported},
		{"DNL height", append(sof(8, 0, 4, 1, 0x11), 0xFF, 0xD9), ErrUnsupported},
		{"mapping table", append(sof(8, 4, 4, 1, 0x11), 0xFF, 0xF8, 0, 5, 2, 1, 1), ErrUnsupported},
		{"frame without scan", append(sof(8, 4, 4, 1, 0x11), 0xFF, 0xD9), ErrCorrupt},
		{"truncated", good[:len(good)/2], ErrCorrupt},
		{"segment overruns", []byte{0xFF, 0xD8, 0xFF, 0xF7, 0x40, 0}, ErrCorrupt},
		{"JPEG baseline", []byte{0xFF, 0xD8, 0xFF, 0xC0, 0, 2}, ErrUnsupported},
	}
	for _, tt := range tests {
		_, err := Decode(tt.data)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: error %v, want %v", tt.name, err, tt.want)
		}
	}
	// Every truncation and single-byte corruption must fail cleanly or
	// decode; none may panic.
	eoi := len(good) - 2
	for good[eoi] != 0xFF || good[eoi+1] != markerEOI {
		eoi--
	}
	dicomtest.CorruptionSweep(t, good, 1, eoi+2, decodeErr, typedErr)
}

// decodeErr decodes data for dicomtest.CorruptionSweep, keeping the error.
func decodeErr(data []byte) error {
	_, err := Decode(data)
	return err
}

// typedErr reports whether err is one of the decoder's own errors.
func typedErr(err error) bool {
	return errors.Is(err, ErrCorrupt) || errors.Is(err, ErrUnsupported)
}

func FuzzDecode(f *testing.F) {
	for _, g := range golden {
		data, err := os.ReadFile(filepath.Join("testdata", g.file))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := Decode(data)
		if err != nil {
			if !typedErr(err) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if len(img.Pix) != img.Width*img.Height*img.Components {
			t.Fatalf("%d samples for %dx%dx%d", len(img.Pix), img.Width, img.Height, img.Components)
		}
		maxVal := uint16(1<<uint(img.Precision) - 1)
		for _, v := range img.Pix {
			if v > maxVal {
				t.Fatalf("sample %d above precision %d", v, img.Precision)
			}
		}
	})
}

// syntheticCT returns a 512×512 CT-like 16-bit image: a noisy elliptic body
// on air, the kind of picture the gateway sees most.
func syntheticCT(w, h int) []uint16 {
	rng := rand.New(rand.NewPCG(1, 2))
	pix := make([]uint16, w*h)
	for y := range h {
		for x := range w {
			dx, dy := float64(x-w/2)/float64(w/2-20), float64(y-h/2)/float64(h/2-60)
			v := 24 + rng.IntN(8) // air around 0 HU-1000 offset
			if dx*dx+dy*dy < 1 {
				v = 1000 + 40 + rng.IntN(60) // soft tissue
				if (dx-0.3)*(dx-0.3)+dy*dy < 0.02 {
					v = 1000 + 700 + rng.IntN(200) // bone
				}
			}
			pix[y*w+x] = uint16(v)
		}
	}
	return pix
}

// writeDataset writes an implicit VR little endian data set (no meta
// header) holding a MONOCHROME2 16-bit image, which dcmcjpls accepts.
func writeDataset(t testing.TB, path string, w, h int, pix []uint16) {
	t.Helper()
	var b []byte
	el := func(group, elem uint16, val []byte) {
		b = binary.LittleEndian.AppendUint16(b, group)
		b = binary.LittleEndian.AppendUint16(b, elem)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(val)))
		b = append(b, val...)
	}
	str := func(s string) []byte {
		if len(s)%2 == 1 {
			s += "\x00"
		}
		return []byte(s)
	}
	us := func(v uint16) []byte { return binary.LittleEndian.AppendUint16(nil, v) }
	el(0x0008, 0x0016, str("1.2.840.10008.5.1.4.1.1.7"))
	el(0x0008, 0x0018, str("1.2.826.0.1.3680043.9.7433.1.1"))
	el(0x0008, 0x0060, str("OT"))
	el(0x0028, 0x0002, us(1))
	el(0x0028, 0x0004, str("MONOCHROME2 "))
	el(0x0028, 0x0010, us(uint16(h)))
	el(0x0028, 0x0011, us(uint16(w)))
	el(0x0028, 0x0100, us(16))
	el(0x0028, 0x0101, us(16))
	el(0x0028, 0x0102, us(15))
	el(0x0028, 0x0103, us(0))
	raw := make([]byte, 2*len(pix))
	for i, v := range pix {
		binary.LittleEndian.PutUint16(raw[2*i:], v)
	}
	el(0x7FE0, 0x0010, raw)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkDecode512x512x16 decodes a 512×512 16-bit CT-like image that
// dcmcjpls encoded losslessly.
func BenchmarkDecode512x512x16(b *testing.B) {
	dicomtest.LookPath(b, "dcmcjpls")
	dir := b.TempDir()
	pix := syntheticCT(512, 512)
	writeDataset(b, filepath.Join(dir, "in.dcm"), 512, 512, pix)
	dicomtest.Run(b, "dcmcjpls", "-f", filepath.Join(dir, "in.dcm"), filepath.Join(dir, "out.dcm"))
	streams := dicomtest.ReadPixels(b, filepath.Join(dir, "out.dcm")).Frames(b, dicomtest.StartJPEG)
	img, err := Decode(streams[0])
	if err != nil {
		b.Fatal(err)
	}
	for i, v := range img.Pix {
		if v != pix[i] {
			b.Fatalf("sample %d: %d != %d", i, v, pix[i])
		}
	}
	b.SetBytes(int64(2 * len(pix)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := Decode(streams[0]); err != nil {
			b.Fatal(err)
		}
	}
}
