package jpeg2000

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"dicomgate/dimse/dicomtest"
)

// golden lists the committed streams (testdata/PROVENANCE.md) with the
// SHA-256 of `opj_decompress -o out.rawl` for them (components planar,
// one byte per sample up to 8 bits, else two, little endian). Decode must
// reproduce it exactly; lossy streams without a hash are checked for
// plausibility only.
var golden = []struct {
	file              string
	w, h, comps, prec int
	signed            bool
	sha               string
}{
	{"mr_small_lossless.j2k", 64, 64, 1, 16, true, "88617aaa46138fb1b6e2a951e762d962382354d69f47f8c04d4abff2f6a6a63e"},
	{"gdcm_ky_rgb.j2k", 100, 100, 3, 8, false, "b86f6c05627126e16eee9deb91bbcc8c2625c9cda21ada6fd0566e5916aa116e"},
	{"gdcm_textgbr.jp2", 400, 400, 3, 8, false, "648d8cfc135c3607d2c76ae193981ee417eb977a87b1a8728a6a823f7373f95e"},
	{"modes_rpcl.j2k", 64, 48, 1, 12, false, "fb921dc9523bd21c38f39776c2a2f4d4b796d563a70541dba8fc4c8df3a0aa4e"},
	{"bypass_termall.jp2", 64, 48, 1, 12, false, "fb921dc9523bd21c38f39776c2a2f4d4b796d563a70541dba8fc4c8df3a0aa4e"},
	{"tiles_cprl.j2k", 64, 48, 1, 12, false, "340d4533ed94b8a9a7060fd63f6aad34ea94d1f13e48db531a933321301bf43a"},
	{"rgb_rct_lrcp.j2k", 64, 48, 3, 8, false, "4f34ce3f99834c2743f6b565845341f46e00b02bfb43de1311860436d146258c"},
	{"nm1_small.j2k", 256, 1024, 1, 16, true, ""},
	{"rgb_ict.j2k", 64, 48, 3, 8, false, ""},
}

func rawlSHA(img *Image) string {
	s := sha256.Sum256(rawl(img.Pix, img.Width, img.Height, img.Components, img.Precision))
	return hex.EncodeToString(s[:])
}

func TestGolden(t *testing.T) {
	for _, g := range golden {
		t.Run(g.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", g.file))
			if err != nil {
				t.Fatal(err)
			}
			img, err := Decode(data)
			if err != nil {
				t.Fatal(err)
			}
			if img.Width != g.w || img.Height != g.h || img.Components != g.comps || img.Precision != g.prec || img.Signed != g.signed {
				t.Fatalf("got %dx%dx%d P=%d signed=%v", img.Width, img.Height, img.Components, img.Precision, img.Signed)
			}
			if g.sha != "" {
				if got := rawlSHA(img); got != g.sha {
					t.Fatalf("samples hash %s, opj_decompress %s", got, g.sha)
				}
			}
		})
	}
}

// mqEncoder is the MQ encoder of T.800 C.2 (software conventions), used
// only to produce test vectors for the decoder.
type mqEncoder struct {
	a, c uint32
	ct   int
	out  []byte // out[0] is the byte before the stream start (BPST-1)
}

func newMQEncoder() *mqEncoder {
	return &mqEncoder{a: 0x8000, ct: 12, out: []byte{0}}
}

func (e *mqEncoder) byteOut() {
	b := &e.out[len(e.out)-1]
	if *b == 0xFF {
		e.out = append(e.out, byte(e.c>>20))
		e.c &= 0xFFFFF
		e.ct = 7
		return
	}
	if e.c < 0x8000000 {
		e.out = append(e.out, byte(e.c>>19))
		e.c &= 0x7FFFF
		e.ct = 8
		return
	}
	*b++
	if *b == 0xFF {
		e.c &= 0x7FFFFFF
		e.out = append(e.out, byte(e.c>>20))
		e.c &= 0xFFFFF
		e.ct = 7
		return
	}
	e.out = append(e.out, byte(e.c>>19))
	e.c &= 0x7FFFF
	e.ct = 8
}

func (e *mqEncoder) renorm() {
	for {
		e.a <<= 1
		e.c <<= 1
		e.ct--
		if e.ct == 0 {
			e.byteOut()
		}
		if e.a&0x8000 != 0 {
			return
		}
	}
}

func (e *mqEncoder) encode(bit int, cx *mqContext) {
	q := qeTable[cx.index]
	e.a -= q.qe
	if bit == int(cx.mps) {
		if e.a&0x8000 == 0 {
			if e.a < q.qe {
				e.a = q.qe
			} else {
				e.c += q.qe
			}
			cx.index = q.nmps
			e.renorm()
		} else {
			e.c += q.qe
		}
		return
	}
	if e.a < q.qe {
		e.c += q.qe
	} else {
		e.a = q.qe
	}
	if q.switchMPS {
		cx.mps = 1 - cx.mps
	}
	cx.index = q.nlps
	e.renorm()
}

func (e *mqEncoder) flush() []byte {
	t := e.c + e.a
	e.c |= 0xFFFF
	if e.c >= t {
		e.c -= 0x8000
	}
	e.c <<= uint(e.ct)
	e.byteOut()
	e.c <<= uint(e.ct)
	e.byteOut()
	out := e.out[1:]
	if len(out) > 0 && out[len(out)-1] == 0xFF {
		out = out[:len(out)-1]
	}
	return out
}

func TestMQDecoder(t *testing.T) {
	tests := []struct {
		name string
		n    int
		p1   float64 // probability of a 1
		nctx int
		seed uint64
	}{
		{"skewed", 5000, 0.05, 1, 1},
		{"balanced", 5000, 0.5, 3, 2},
		{"all zero", 2000, 0, 1, 3},
		{"all one", 2000, 1, 1, 4},
		{"many contexts", 20000, 0.2, 19, 5},
	}
	for _, tt := range tests {
		rng := rand.New(rand.NewPCG(tt.seed, 9))
		bits := make([]int, tt.n)
		ctxs := make([]int, tt.n)
		for i := range bits {
			if rng.Float64() < tt.p1 {
				bits[i] = 1
			}
			ctxs[i] = rng.IntN(tt.nctx)
		}
		enc := newMQEncoder()
		ec := make([]mqContext, tt.nctx)
		for i, b := range bits {
			enc.encode(b, &ec[ctxs[i]])
		}
		stream := enc.flush()
		var d mqDecoder
		d.init(stream)
		dc := make([]mqContext, tt.nctx)
		for i, want := range bits {
			if got := d.decode(&dc[ctxs[i]]); got != want {
				t.Fatalf("%s: decision %d = %d, want %d", tt.name, i, got, want)
			}
		}
	}
	var r rawDecoder
	r.init([]byte{0xA5, 0xFF, 0x7F})
	want := "10100101" + "11111111" + "1111111"
	for i, c := range want {
		if got := r.decode(); got != int(c-'0') {
			t.Fatalf("raw bit %d = %d, want %c", i, got, c)
		}
	}
}

func TestQeTableConsistency(t *testing.T) {
	for i, e := range qeTable {
		if int(e.nmps) >= len(qeTable) || int(e.nlps) >= len(qeTable) {
			t.Errorf("entry %d: transitions %d/%d out of range", i, e.nmps, e.nlps)
		}
		if e.qe == 0 || e.qe > 0x5601 {
			t.Errorf("entry %d: Qe 0x%04X", i, e.qe)
		}
	}
}

func TestTagTree(t *testing.T) {
	// Leaves 3×2 with values; encode by hand per B.10.2 and decode.
	// Tree: leaves [1 3 2 / 2 2 1], level 1 [1 1], root [1].
	// Decoding leaf 0 with threshold 1 needs: root: bit 0 (root ≥ 1),
	// stops (low 1 ≥ threshold) → value not < 1.
	tt := newTagTree(3, 2)
	r := &pktReader{data: []byte{0x00}}
	if tt.decode(r, 0, 1) {
		t.Fatal("leaf 0 < 1 after a 0 bit")
	}
	// Threshold 2: root: bit 1 → root = 1; level 1 node: low 1, bit 1 → 1;
	// leaf 0: low 1, bit 1 → 1. Bits so far: 0,1,1,1.
	r = &pktReader{data: []byte{0x70}}
	tt = newTagTree(3, 2)
	if tt.decode(r, 0, 1) {
		t.Fatal("first threshold")
	}
	if !tt.decode(r, 0, 2) || tt.value[0] != 1 {
		t.Fatalf("leaf 0 value %d, want 1", tt.value[0])
	}
	if got := len(tt.value); got != 6+2+1 {
		t.Fatalf("%d nodes, want 9", got)
	}
}

func TestNumPasses(t *testing.T) {
	tests := []struct {
		bits string
		want int
	}{
		{"0", 1}, {"10", 2}, {"1100", 3}, {"1110", 5}, {"111100000", 6},
		{strings.Repeat("1", 8) + "0", 36}, {strings.Repeat("1", 9) + "0000000", 37},
		{strings.Repeat("1", 9) + "0000010", 39}, {strings.Repeat("1", 16), 164},
	}
	for _, tt := range tests {
		if got := numPasses(&pktReader{data: packHeaderBits(tt.bits)}); got != tt.want {
			t.Errorf("numPasses(%s) = %d, want %d", tt.bits, got, tt.want)
		}
	}
}

// packHeaderBits packs '0'/'1' characters as a packet header does: MSB
// first, with a zero bit stuffed after every 0xFF byte.
func packHeaderBits(bits string) []byte {
	var out []byte
	var cur byte
	n, limit := 0, 8
	for _, c := range bits {
		cur <<= 1
		if c == '1' {
			cur |= 1
		}
		n++
		if n == limit {
			out = append(out, cur)
			limit = 8
			if cur == 0xFF {
				limit = 7
			}
			cur, n = 0, 0
		}
	}
	if n > 0 {
		out = append(out, cur<<uint(limit-n))
	}
	return append(out, 0)
}

func TestSegmentLimit(t *testing.T) {
	tests := []struct {
		style byte
		first int
		want  int
	}{
		{0, 0, 1 << 30}, {cbTermAll, 0, 1}, {cbTermAll | cbBypass, 12, 1},
		{cbBypass, 0, 10}, {cbBypass, 4, 6}, {cbBypass, 10, 2}, {cbBypass, 12, 1}, {cbBypass, 13, 2},
	}
	for _, tt := range tests {
		if got := segmentLimit(tt.style, tt.first); got != tt.want {
			t.Errorf("segmentLimit(0x%02X, %d) = %d, want %d", tt.style, tt.first, got, tt.want)
		}
	}
}

func TestZeroCodingContexts(t *testing.T) {
	tests := []struct {
		orient, h, v, d int
		want            uint8
	}{
		{bandLL, 2, 0, 0, 8}, {bandLL, 1, 1, 0, 7}, {bandLL, 1, 0, 1, 6}, {bandLL, 1, 0, 0, 5},
		{bandLL, 0, 2, 0, 4}, {bandLL, 0, 1, 0, 3}, {bandLL, 0, 0, 2, 2}, {bandLL, 0, 0, 1, 1}, {bandLL, 0, 0, 0, 0},
		{bandHL, 0, 2, 0, 8}, {bandHL, 2, 0, 0, 4}, {bandLH, 2, 0, 0, 8},
		{bandHH, 0, 0, 3, 8}, {bandHH, 1, 0, 2, 7}, {bandHH, 0, 0, 2, 6}, {bandHH, 1, 1, 1, 5},
		{bandHH, 0, 1, 1, 4}, {bandHH, 0, 0, 1, 3}, {bandHH, 2, 0, 0, 2}, {bandHH, 0, 1, 0, 1},
	}
	for _, tt := range tests {
		if got := zcTable[tt.orient][tt.h][tt.v][tt.d]; got != tt.want {
			t.Errorf("zc(orient %d, h%d v%d d%d) = %d, want %d", tt.orient, tt.h, tt.v, tt.d, got, tt.want)
		}
	}
}

func TestInverse53(t *testing.T) {
	// Forward 5/3 (F.4.8.2) of a signal, then synth53 must restore it, for
	// both parities of the first coordinate and odd/even lengths.
	for _, n := range []int{1, 2, 3, 4, 7, 8, 13} {
		for _, i0 := range []int{0, 1, 4, 5} {
			x := make([]int32, n)
			for i := range x {
				x[i] = int32((i*37+11)%97) - 40
			}
			y := forward53(x, i0)
			ext := make([]int32, n+2*dwtPad)
			synth53(y, i0, ext)
			for i := range x {
				if y[i] != x[i] {
					t.Fatalf("n=%d i0=%d: sample %d = %d, want %d", n, i0, i, y[i], x[i])
				}
			}
		}
	}
}

// forward53 is the reversible analysis of T.800 F.4.8.2, used only to
// test the synthesis.
func forward53(x []int32, i0 int) []int32 {
	n := len(x)
	y := append([]int32(nil), x...)
	if n == 1 {
		if i0&1 == 1 {
			y[0] *= 2
		}
		return y
	}
	at := func(k int) int32 { return y[pse(k, n)] }
	// Odd coordinates (high-pass) first, then even.
	tmp := append([]int32(nil), y...)
	for k := range n {
		if (i0+k)&1 == 1 {
			tmp[k] = y[k] - (at(k-1)+at(k+1))>>1
		}
	}
	copy(y, tmp)
	for k := range n {
		if (i0+k)&1 == 0 {
			tmp[k] = y[k] + (at(k-1)+at(k+1)+2)>>2
		}
	}
	return tmp
}

func TestPSE(t *testing.T) {
	// Signal ABCDE extends as …DCB ABCDE DCB…
	want := map[int]int{-3: 3, -2: 2, -1: 1, 0: 0, 4: 4, 5: 3, 6: 2, 7: 1, 8: 0, 9: 1}
	for k, w := range want {
		if got := pse(k, 5); got != w {
			t.Errorf("pse(%d, 5) = %d, want %d", k, got, w)
		}
	}
}

func TestMalformed(t *testing.T) {
	good, err := os.ReadFile(filepath.Join("testdata", "modes_rpcl.j2k"))
	if err != nil {
		t.Fatal(err)
	}
	siz := func(w, h, tw, th uint32, nc int, ssiz, dx byte) []byte {
		b := []byte{0xFF, 0x4F, 0xFF, 0x51}
		l := 38 + 3*nc
		b = append(b, byte(l>>8), byte(l), 0, 0)
		for _, v := range []uint32{w, h, 0, 0, tw, th, 0, 0} {
			b = binary.BigEndian.AppendUint32(b, v)
		}
		b = append(b, byte(nc>>8), byte(nc))
		for range nc {
			b = append(b, ssiz, dx, dx)
		}
		return b
	}
	cod := []byte{0xFF, 0x52, 0, 12, 0, 0, 0, 1, 0, 5, 4, 4, 0, 1}
	qcd := []byte{0xFF, 0x5C, 0, 4, 0x40, 0x48}
	join := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrCorrupt},
		{"JPEG", []byte{0xFF, 0xD8, 0xFF, 0xE0}, ErrCorrupt},
		{"SOC only", []byte{0xFF, 0x4F}, ErrCorrupt},
		{"huge", join(siz(1<<30, 1<<30, 1<<30, 1<<30, 1, 7, 1), cod, qcd), ErrUnsupported},
		{"too many tiles", join(siz(1<<20, 1<<20, 1, 1, 1, 7, 1)), ErrUnsupported},
		{"zero components", join(siz(8, 8, 8, 8, 0, 7, 1)), ErrCorrupt},
		{"no COD", join(siz(8, 8, 8, 8, 1, 7, 1), []byte{0xFF, 0x90, 0, 10, 0, 0, 0, 0, 0, 0, 0, 1, 0xFF, 0x93, 0xFF, 0xD9}), ErrCorrupt},
		{"subsampled", join(siz(8, 8, 8, 8, 3, 7, 2), cod, qcd, []byte{0xFF, 0x90, 0, 10, 0, 0, 0, 0, 0, 0, 0, 1, 0xFF, 0x93, 0xFF, 0xD9}), ErrUnsupported},
		{"HT block style", join(siz(8, 8, 8, 8, 1, 7, 1), []byte{0xFF, 0x52, 0, 12, 0, 0, 0, 1, 0, 5, 4, 4, 0x40, 1}), ErrUnsupported},
		{"CAP marker", join(siz(8, 8, 8, 8, 1, 7, 1), []byte{0xFF, 0x50, 0, 8, 0, 2, 0, 0, 0, 0}), ErrUnsupported},
		{"POC", join(siz(8, 8, 8, 8, 1, 7, 1), cod, qcd, []byte{0xFF, 0x5F, 0, 9, 0, 0, 0, 1, 1, 1, 0}), ErrUnsupported},
		{"segment overruns", []byte{0xFF, 0x4F, 0xFF, 0x51, 0x40, 0x00}, ErrCorrupt},
		{"bad tile index", join(siz(8, 8, 8, 8, 1, 7, 1), cod, qcd, []byte{0xFF, 0x90, 0, 10, 0, 9, 0, 0, 0, 0, 0, 1, 0xFF, 0x93, 0xFF, 0xD9}), ErrCorrupt},
	}
	for _, tt := range tests {
		_, err := Decode(tt.data)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: error %v, want %v", tt.name, err, tt.want)
		}
	}
	// Truncations and corruptions fail with a typed error or decode; none
	// may panic.
	dicomtest.CorruptionSweep(t, good, 7, 0, decodeErr, typedErr)
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
		if g.file == "gdcm_textgbr.jp2" {
			continue // 30 KB: slow to mutate, covered by TestGolden
		}
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
	})
}

// BenchmarkDecode512x512x16 decodes a 512×512 16-bit CT-like image that
// opj_compress encoded losslessly (5/3, default options).
func BenchmarkDecode512x512x16(b *testing.B) {
	dicomtest.LookPath(b, "opj_compress")
	src := source{name: "ct", w: 512, h: 512, nc: 1, bits: 16, pix: syntheticCT(512, 512, 65535)}
	stream := src.encode(b)
	img, err := Decode(stream)
	if err != nil {
		b.Fatal(err)
	}
	for i, v := range img.Pix {
		if v != src.pix[i] {
			b.Fatalf("sample %d: %d != %d", i, v, src.pix[i])
		}
	}
	b.SetBytes(int64(2 * len(src.pix)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := Decode(stream); err != nil {
			b.Fatal(err)
		}
	}
}
