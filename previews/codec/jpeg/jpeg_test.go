package jpeg

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	stdjpeg "image/jpeg"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"dicomgate/dimse/dicomtest"
)

func TestHuffmanDecode(t *testing.T) {
	// T.81 Table K.3: the typical luminance DC table.
	lumDC := makeTable([16]byte{0, 1, 5, 1, 1, 1, 1, 1, 1}, seq(0, 12))
	// Codes of every length 1..16 (the longest beyond the fast table).
	long := makeTable([16]byte{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2}, seq(0, 17))
	tests := []struct {
		name  string
		table testTable
		syms  []byte
	}{
		{"lossless A", llTableA, seq(0, 17)},
		{"lossless B", llTableB, []byte{16, 0, 1, 2, 15, 1, 0, 0, 7}},
		{"K.3 luminance DC", lumDC, []byte{0, 11, 5, 1, 10, 3}},
		{"lengths 1..16", long, []byte{16, 0, 15, 14, 13, 1, 9, 10, 16, 2}},
		{"single symbol", eobTable, []byte{0, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ht huffTable
			var counts [16]int
			for i, c := range tt.table.counts {
				counts[i] = int(c)
			}
			if err := ht.build(counts, tt.table.vals); err != nil {
				t.Fatal(err)
			}
			var w bitWriter
			for _, s := range tt.syms {
				tt.table.emit(&w, s)
			}
			w.flush()
			br := bitReader{data: append(w.out, 0xFF, 0xD9)}
			for i, want := range tt.syms {
				got, err := br.decode(&ht)
				if err != nil {
					t.Fatalf("symbol %d: %v", i, err)
				}
				if got != want {
					t.Fatalf("symbol %d = %d, want %d", i, got, want)
				}
			}
			if br.overrun() {
				t.Fatal("decoder read past the data")
			}
		})
	}
}

func TestHuffmanBuildRejectsOverfull(t *testing.T) {
	var ht huffTable
	// Three codes of length 1 cannot exist.
	if err := ht.build([16]int{3}, []byte{0, 1, 2}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
	// An undefined table never decodes.
	br := bitReader{data: []byte{0x00, 0x00}}
	if _, err := br.decode(&huffTable{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("undefined table: err = %v", err)
	}
}

func TestPredict(t *testing.T) {
	const ra, rb, rc = 100, 31, 120
	tests := []struct {
		sv   int
		want int32
	}{
		{1, 100},
		{2, 31},
		{3, 120},
		{4, 100 + 31 - 120},
		{5, 100 + (31-120)>>1}, // arithmetic shift: -89>>1 = -45
		{6, 31 + (100-120)>>1},
		{7, (100 + 31) >> 1},
	}
	for _, tt := range tests {
		if got := predict(tt.sv, ra, rb, rc); got != tt.want {
			t.Errorf("sv %d: got %d, want %d", tt.sv, got, tt.want)
		}
	}
	if got := predict(5, 0, 0, 1); got != -1 {
		t.Errorf("sv 5 must shift arithmetically: got %d, want -1", got)
	}
	if got := predict(7, 65535, 65535, 0); got != 65535 {
		t.Errorf("sv 7 must not overflow 16 bits: got %d", got)
	}
}

func TestBitReader(t *testing.T) {
	// FF 00 is a stuffed FF; FF FF D0 is fill before a marker.
	br := bitReader{data: []byte{0xA5, 0xFF, 0x00, 0x3C, 0xFF, 0xFF, 0xD0, 0x12}}
	if got := br.bits(8); got != 0xA5 {
		t.Fatalf("first byte %#x", got)
	}
	if got := br.bits(16); got != 0xFF3C {
		t.Fatalf("stuffed byte: %#x", got)
	}
	if br.overrun() {
		t.Fatal("overrun before the marker")
	}
	if got := br.bits(4); got != 0 || !br.overrun() {
		t.Fatalf("bits after marker = %#x, overrun %v", got, br.overrun())
	}
	if err := br.restart(); err != nil {
		t.Fatal(err)
	}
	if got := br.bits(8); got != 0x12 {
		t.Fatalf("after RST: %#x", got)
	}
	if got := br.receiveExtend(0); got != 0 {
		t.Fatal(got)
	}
	// EXTEND: 3 bits 010 is -5, 101 is 5.
	br = bitReader{data: []byte{0b010_101_00}}
	if a, b := br.receiveExtend(3), br.receiveExtend(3); a != -5 || b != 5 {
		t.Fatalf("EXTEND gave %d, %d", a, b)
	}
}

// testImage makes w*h samples below 2^p: a gradient with noise and some
// full-range jumps so differences of every category occur.
func testImage(rng *rand.Rand, w, h, p int) []uint16 {
	out := make([]uint16, w*h)
	maxv := 1<<p - 1
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			v := (x*maxv/w + y*maxv/h) / 2
			v += rng.IntN(maxv/16+1) - maxv/32
			if rng.IntN(50) == 0 {
				v = rng.IntN(2) * maxv
			}
			out[y*w+x] = uint16(min(max(v, 0), maxv))
		}
	}
	return out
}

func TestLosslessSynthetic(t *testing.T) {
	type tc struct {
		name             string
		w, h, comps      int
		o                llOptions
		extremeCheckerbd bool
	}
	var tests []tc
	for sv := 1; sv <= 7; sv++ {
		tests = append(tests,
			tc{"16-bit sv" + itoa(sv) + " restart every row", 37, 23, 1, llOptions{precision: 16, sv: sv, ri: 37}, false},
			tc{"12-bit sv" + itoa(sv) + " pt2", 16, 9, 1, llOptions{precision: 12, sv: sv, pt: 2}, false},
		)
	}
	tests = append(tests,
		tc{"3 comps interleaved restart 2 rows", 20, 11, 3, llOptions{precision: 8, sv: 4, ri: 40}, false},
		tc{"4 comps per-component scans, tables redefined", 13, 17, 4, llOptions{precision: 12, sv: 7, pt: 1, ri: 13, perComponent: true}, false},
		tc{"2 comps 16-bit extremes (difference 32768)", 8, 8, 2, llOptions{precision: 16, sv: 1}, true},
		tc{"1x1", 1, 1, 1, llOptions{precision: 2, sv: 1}, false},
	)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			planes := make([][]uint16, tt.comps)
			for c := range planes {
				planes[c] = testImage(rng, tt.w, tt.h, tt.o.precision)
				if tt.extremeCheckerbd {
					for i := range planes[c] {
						planes[c][i] = uint16((i + i/tt.w) % 2 * 0xFFFF)
					}
				}
			}
			data := encodeLossless(planes, tt.w, tt.h, tt.o)
			img, err := Decode(data)
			if err != nil {
				t.Fatal(err)
			}
			if img.Width != tt.w || img.Height != tt.h || img.Components != tt.comps || img.Precision != tt.o.precision {
				t.Fatalf("got %dx%dx%d P%d", img.Width, img.Height, img.Components, img.Precision)
			}
			for i, got := range img.Pix {
				c, px := i%tt.comps, i/tt.comps
				want := planes[c][px] >> tt.o.pt << tt.o.pt
				if got != want {
					t.Fatalf("sample %d (x=%d y=%d c=%d) = %d, want %d", i, px%tt.w, px/tt.w, c, got, want)
				}
			}
		})
	}
}

func TestDCOnlyRestartsAndMCULayout(t *testing.T) {
	const w, h = 40, 24 // 4:2:0 MCUs of 16x16: 3x2 MCUs, partial at the right and bottom
	rng := rand.New(rand.NewPCG(3, 4))
	comps := []dcComponent{{h: 2, v: 2}, {h: 1, v: 1}, {h: 1, v: 1}}
	mcusX, mcusY := ceilDiv(w, 16), ceilDiv(h, 16)
	for i := range comps {
		n := mcusX * comps[i].h * mcusY * comps[i].v
		comps[i].dc = make([]int32, n)
		for j := range comps[i].dc {
			comps[i].dc[j] = int32(8 * (rng.IntN(256) - 128))
		}
	}
	for _, tc := range []struct {
		name        string
		ri          int
		interleaved bool
	}{
		{"interleaved", 0, true},
		{"interleaved restart 1", 1, true},
		{"interleaved restart 4", 4, true},
		{"per component", 0, false},
		{"per component restart 3", 3, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := encodeDCOnly(w, h, comps, tc.ri, tc.interleaved)
			d := &decoder{data: data}
			if err := d.decode(false); err != nil {
				t.Fatal(err)
			}
			for ci, c := range comps {
				pc := &d.comps[ci]
				// Check the blocks the component actually covers.
				for by := 0; by < pc.bh; by++ {
					for bx := 0; bx < pc.bw; bx++ {
						want := uint16(c.dc[by*mcusX*c.h+bx]/8 + 128)
						if got := pc.plane[by*8*pc.stride+bx*8+7*pc.stride+7]; got != want {
							t.Fatalf("component %d block (%d,%d) = %d, want %d", ci, bx, by, got, want)
						}
					}
				}
			}
			if _, err := Decode(data); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestAgainstStdlib decodes baseline greyscale from Go's own encoder and
// compares with Go's decoder (another IDCT).
func TestAgainstStdlib(t *testing.T) {
	src := image.NewGray(image.Rect(0, 0, 67, 45))
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range src.Pix {
		src.Pix[i] = uint8(i%67*3 + rng.IntN(20))
	}
	var buf bytes.Buffer
	if err := stdjpeg.Encode(&buf, src, &stdjpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	ref, err := stdjpeg.Decode(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	img, err := Decode(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	want := make([]uint16, len(img.Pix))
	g := ref.(*image.Gray)
	for i := range want {
		want[i] = uint16(g.GrayAt(i%img.Width, i/img.Width).Y)
	}
	if p, d := psnr(img.Pix, want, 8); p < 45 {
		t.Fatalf("PSNR %.1f dB (max diff %d) against image/jpeg", p, d)
	}
}

func TestDecodeConfig(t *testing.T) {
	data := encodeLossless([][]uint16{make([]uint16, 6)}, 3, 2, llOptions{precision: 14, sv: 1})
	cfg, err := DecodeConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	if cfg != (Config{Width: 3, Height: 2, Components: 1, Precision: 14, Process: 3}) || !cfg.Lossless() {
		t.Fatalf("config %+v", cfg)
	}
}

// sofStream is a minimal stream: SOI, a frame header, then rest.
func sofStream(marker byte, p, h, w, nf int, rest ...byte) []byte {
	b := []byte{0xFF, 0xD8, 0xFF, marker, 0, byte(8 + 3*nf), byte(p), byte(h >> 8), byte(h), byte(w >> 8), byte(w), byte(nf)}
	for i := 0; i < nf; i++ {
		b = append(b, byte(i+1), 0x11, 0)
	}
	return append(b, rest...)
}

func TestErrors(t *testing.T) {
	valid := encodeLossless([][]uint16{testImage(rand.New(rand.NewPCG(7, 8)), 16, 16, 12)}, 16, 16, llOptions{precision: 12, sv: 1})
	sos := bytes.Index(valid, []byte{0xFF, mSOS})
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrCorrupt},
		{"no SOI", []byte{0xFF, 0xD9, 0, 0}, ErrCorrupt},
		{"arithmetic SOF9", sofStream(0xC9, 8, 8, 8, 1), ErrUnsupported},
		{"arithmetic DAC", []byte{0xFF, 0xD8, 0xFF, 0xCC, 0, 4, 0, 0}, ErrUnsupported},
		{"hierarchical SOF5", sofStream(0xC5, 8, 8, 8, 1), ErrUnsupported},
		{"hierarchical DHP", []byte{0xFF, 0xD8, 0xFF, 0xDE, 0, 2}, ErrUnsupported},
		{"JPEG-LS SOF55", sofStream(0xF7, 8, 8, 8, 1), ErrUnsupported},
		{"DNL height", sofStream(0xC0, 8, 0, 8, 1), ErrUnsupported},
		{"baseline 12-bit", sofStream(0xC0, 12, 8, 8, 1), ErrCorrupt},
		{"lossless 17-bit", sofStream(0xC3, 17, 8, 8, 1), ErrCorrupt},
		{"zero width", sofStream(0xC1, 8, 8, 0, 1), ErrCorrupt},
		{"too many samples", sofStream(0xC3, 16, 65535, 65535, 4), ErrUnsupported},
		{"implausible size", sofStream(0xC0, 8, 4000, 4000, 1, 0xFF, 0xD9), ErrCorrupt},
		{"SOS before SOF", []byte{0xFF, 0xD8, 0xFF, 0xDA, 0, 8, 1, 1, 0, 1, 0, 0, 0xFF, 0xD9}, ErrCorrupt},
		{"second SOF", append(sofStream(0xC3, 8, 1, 1, 1), sofStream(0xC3, 8, 1, 1, 1)[2:]...), ErrCorrupt},
		{"EOI before scans", sofStream(0xC3, 8, 1, 1, 1, 0xFF, 0xD9), ErrCorrupt},
		{"truncated scan", valid[:sos+40], ErrCorrupt},
		{"bad predictor 0", func() []byte {
			b := bytes.Clone(valid)
			b[sos+2+2+1+2] = 0 // Ss
			return b
		}(), ErrCorrupt},
		{"segment length beyond data", []byte{0xFF, 0xD8, 0xFF, 0xDB, 0x40, 0x00, 0}, ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(tt.data)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestEveryPrefixAndByteFlip checks that damaged golden streams give an
// error or an image, never a panic, and that errors are typed.
func TestEveryPrefixAndByteFlip(t *testing.T) {
	for _, g := range goldens {
		data := readTestdata(t, g.jpg)
		check := func(b []byte) {
			img, err := Decode(b)
			if err != nil {
				if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) {
					t.Fatalf("%s: untyped error %v", g.jpg, err)
				}
				return
			}
			if len(img.Pix) != img.Width*img.Height*img.Components {
				t.Fatalf("%s: %d samples for %dx%dx%d", g.jpg, len(img.Pix), img.Width, img.Height, img.Components)
			}
		}
		step := max(1, len(data)/300)
		for n := 0; n < len(data); n += step {
			check(data[:n])
		}
		rng := rand.New(rand.NewPCG(9, uint64(len(data))))
		for range 200 {
			b := bytes.Clone(data)
			b[rng.IntN(len(b))] ^= byte(1 + rng.IntN(255))
			check(b)
		}
	}
}

// goldens are frames with dcmdjpeg's decoded output committed under
// testdata (see testdata/PROVENANCE.md); exact ones must match bit for bit.
var goldens = []struct {
	jpg, raw      string
	w, h, c, p    int
	exact         bool
	bytesPerSampl int
}{
	{"mr_small_sv6.jpg", "mr_small_sv6.raw", 64, 64, 1, 16, true, 2},
	{"ct_small_sv1_pt2.jpg", "ct_small_sv1_pt2.raw", 128, 128, 1, 16, true, 2},
	{"mr_small_ee12.jpg", "mr_small_ee12.raw", 64, 64, 1, 12, false, 2},
	{"mr_small_ep12.jpg", "mr_small_ep12.raw", 64, 64, 1, 12, false, 2},
	{"sc_rgb_ybr422.jpg", "sc_rgb_ybr422.raw", 100, 100, 3, 8, false, 1},
	{"sc_rgb_small_odd.jpg", "sc_rgb_small_odd.raw", 3, 3, 3, 8, false, 1},
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGolden(t *testing.T) {
	for _, g := range goldens {
		t.Run(g.jpg, func(t *testing.T) {
			img, err := Decode(readTestdata(t, g.jpg))
			if err != nil {
				t.Fatal(err)
			}
			if img.Width != g.w || img.Height != g.h || img.Components != g.c || img.Precision != g.p {
				t.Fatalf("got %dx%dx%d P%d", img.Width, img.Height, img.Components, img.Precision)
			}
			raw := readTestdata(t, g.raw)
			want := make([]uint16, len(img.Pix))
			for i := range want {
				if g.bytesPerSampl == 1 {
					want[i] = uint16(raw[i])
				} else {
					want[i] = binary.LittleEndian.Uint16(raw[2*i:])
				}
			}
			if g.exact {
				mask := uint16(1<<g.p - 1)
				for i := range want {
					if img.Pix[i] != want[i]&mask {
						t.Fatalf("sample %d = %d, dcmdjpeg %d", i, img.Pix[i], want[i])
					}
				}
				return
			}
			if p, d := psnr(img.Pix, want, g.p); p < 35 {
				t.Fatalf("PSNR %.1f dB, max diff %d", p, d)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	for _, g := range goldens {
		f.Add(readTestdata(f, g.jpg))
	}
	f.Add(encodeLossless([][]uint16{{1, 2, 3, 4}, {5, 6, 7, 8}}, 2, 2, llOptions{precision: 8, sv: 5, ri: 2, perComponent: true}))
	f.Add(encodeDCOnly(16, 16, []dcComponent{{h: 2, v: 2, dc: make([]int32, 4)}, {h: 1, v: 1, dc: make([]int32, 1)}}, 1, true))
	// Frames of the pydicom corpus when it is installed.
	for _, name := range []string{"JPGExtended.dcm", "SC_rgb_jpeg_gdcm.dcm", "SC_rgb_dcmtk_+eb+cy+np.dcm", "SC_jpeg_no_color_transform.dcm"} {
		p := filepath.Join(dicomtest.PydicomTestFiles, name)
		if _, err := os.Stat(p); err != nil {
			continue
		}
		for _, fr := range dicomtest.ReadPixels(f, p).Frames(f, dicomtest.StartJPEG) {
			f.Add(fr)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := Decode(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if len(img.Pix) != img.Width*img.Height*img.Components {
			t.Fatalf("%d samples for %dx%dx%d", len(img.Pix), img.Width, img.Height, img.Components)
		}
		for _, s := range img.Pix {
			if int(s) >= 1<<img.Precision {
				t.Fatalf("sample %d beyond precision %d", s, img.Precision)
			}
		}
		if _, err := DecodeConfig(data); err != nil {
			t.Fatalf("Decode succeeded but DecodeConfig failed: %v", err)
		}
	})
}

// bench512 makes the benchmark inputs: a 512x512 CT-like 16-bit frame
// coded lossless (predictor 1), and an 8-bit one coded baseline by Go's
// encoder.
func bench512(b *testing.B) (lossless, baseline []byte, gray *image.Gray) {
	const n = 512
	rng := rand.New(rand.NewPCG(11, 12))
	px := make([]uint16, n*n)
	gray = image.NewGray(image.Rect(0, 0, n, n))
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			dx, dy := x-n/2, y-n/2
			v := 0
			if dx*dx+dy*dy < (n/2-16)*(n/2-16) {
				v = 1024 + 40*(dx*dx+dy*dy)/(n*n/4) + rng.IntN(30)
			}
			px[y*n+x] = uint16(v)
			gray.Pix[y*n+x] = uint8(v / 8)
		}
	}
	lossless = encodeLossless([][]uint16{px}, n, n, llOptions{precision: 16, sv: 1})
	var buf bytes.Buffer
	if err := stdjpeg.Encode(&buf, gray, &stdjpeg.Options{Quality: 90}); err != nil {
		b.Fatal(err)
	}
	return lossless, buf.Bytes(), gray
}

func BenchmarkDecodeLossless512(b *testing.B) {
	data, _, _ := bench512(b)
	b.SetBytes(512 * 512 * 2)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeBaseline512(b *testing.B) {
	_, data, _ := bench512(b)
	b.SetBytes(512 * 512)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStdlibBaseline512 is the reference: Go's image/jpeg on the same
// baseline stream.
func BenchmarkStdlibBaseline512(b *testing.B) {
	_, data, _ := bench512(b)
	b.SetBytes(512 * 512)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := stdjpeg.Decode(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

// TestColour checks what Decode reports the markers before the first scan
// say about three components: Adobe APP14 and 'R','G','B' component ids
// are explicit and the first wins, JFIF APP0 means YCbCr unless one of
// them says otherwise, and markers after the first scan count for nothing.
func TestColour(t *testing.T) {
	var buf bytes.Buffer
	if err := stdjpeg.Encode(&buf, image.NewRGBA(image.Rect(0, 0, 8, 8)), nil); err != nil {
		t.Fatal(err)
	}
	plain := buf.Bytes() // image/jpeg writes neither APP0 nor APP14, ids 1, 2, 3
	seg := func(m byte, payload string) []byte {
		n := len(payload) + 2
		return append([]byte{0xFF, m, byte(n >> 8), byte(n)}, payload...)
	}
	jfif := seg(0xE0, "JFIF\x00\x01\x02\x00\x00\x01\x00\x01\x00\x00")
	adobe := func(transform byte) []byte { return seg(0xEE, "Adobe\x00\x64\x00\x00\x00\x00"+string(transform)) }
	// withAfterSOI puts segments right after SOI; withBeforeEOI after the
	// scan.
	withAfterSOI := func(b []byte, segs ...[]byte) []byte {
		out := append([]byte{}, b[:2]...)
		for _, s := range segs {
			out = append(out, s...)
		}
		return append(out, b[2:]...)
	}
	withBeforeEOI := func(b []byte, s []byte) []byte {
		out := append([]byte{}, b[:len(b)-2]...)
		return append(append(out, s...), 0xFF, 0xD9)
	}
	// rgbIDs renames the components 'R','G','B' in the frame and scan
	// headers.
	rgbIDs := func(b []byte) []byte {
		out := bytes.Clone(b)
		for i := 2; i+4 <= len(out) && out[i] == 0xFF; {
			m, n := out[i+1], int(out[i+2])<<8|int(out[i+3])
			switch m {
			case 0xC0:
				for c := range 3 {
					out[i+4+6+3*c] = "RGB"[c]
				}
			case 0xDA:
				for c := range 3 {
					out[i+4+1+2*c] = "RGB"[c]
				}
				return out
			}
			i += 2 + n
		}
		t.Fatal("no scan header in image/jpeg's output")
		return nil
	}
	tests := []struct {
		name string
		data []byte
		want Colour
	}{
		{"no marker", plain, ColourUnstated},
		{"JFIF", withAfterSOI(plain, jfif), ColourYCbCr},
		{"Adobe no transform", withAfterSOI(plain, adobe(0)), ColourRGB},
		{"Adobe YCbCr", withAfterSOI(plain, adobe(1)), ColourYCbCr},
		{"Adobe YCCK", withAfterSOI(plain, adobe(2)), ColourYCbCr},
		{"JFIF then Adobe no transform", withAfterSOI(plain, jfif, adobe(0)), ColourRGB},
		{"Adobe YCbCr then JFIF", withAfterSOI(plain, adobe(1), jfif), ColourYCbCr},
		{"short Adobe", withAfterSOI(plain, seg(0xEE, "Adobe\x00")), ColourUnstated},
		{"RGB ids", rgbIDs(plain), ColourRGB},
		{"JFIF then RGB ids", withAfterSOI(rgbIDs(plain), jfif), ColourRGB},
		{"Adobe YCbCr then RGB ids", withAfterSOI(rgbIDs(plain), adobe(1)), ColourYCbCr},
		{"Adobe after the scan", withBeforeEOI(plain, adobe(0)), ColourUnstated},
	}
	for _, tt := range tests {
		img, err := Decode(tt.data)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if img.Colour != tt.want {
			t.Errorf("%s: colour %d, want %d", tt.name, img.Colour, tt.want)
		}
	}
}
