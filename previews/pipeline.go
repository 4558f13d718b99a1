package previews

import (
	"fmt"
	"image"
	"math"
	"strconv"
	"strings"
)

// lut is a lookup table of PS3.3 C.11.1.1 / C.7.6.3.1.5: entries, the stored
// value mapped to the first entry, and the bit depth of the entries.
type lut struct {
	first int64
	bits  int
	data  []uint16
}

func (l *lut) lookup(v int64) uint16 {
	i := v - l.first
	if i < 0 {
		i = 0
	}
	if i >= int64(len(l.data)) {
		i = int64(len(l.data)) - 1
	}
	return l.data[i]
}

// maxOut is the largest value the LUT's entries can take.
func (l *lut) maxOut() float64 { return float64(uint64(1)<<uint(l.bits) - 1) }

// lutDescriptor reads a LUT Descriptor (PS3.3 C.11.1.1): its first value is
// the entry count (0 meaning 65536), its second the first mapped value
// (signed when the pixel data is), its third the bits per entry.
func lutDescriptor(ds *dataset, descTag uint32, signed bool) (n int, first int64, bits int, err error) {
	desc := ds.words(descTag)
	if len(desc) < 3 {
		return 0, 0, 0, fmt.Errorf("%w: LUT descriptor (%04X,%04X) has %d values", ErrCorrupt, descTag>>16, descTag&0xFFFF, len(desc))
	}
	n = int(desc[0])
	if n == 0 {
		n = 65536
	}
	first = int64(desc[1])
	if signed {
		first = int64(int16(desc[1]))
	}
	bits = int(desc[2])
	if bits < 1 || bits > 16 {
		return 0, 0, 0, fmt.Errorf("%w: LUT of %d bits", ErrCorrupt, bits)
	}
	return n, first, bits, nil
}

// parseLUT reads a LUT Descriptor/LUT Data pair (PS3.3 C.11.1.1).
func parseLUT(ds *dataset, descTag, dataTag uint32, signed bool) (*lut, error) {
	n, first, bits, err := lutDescriptor(ds, descTag, signed)
	if err != nil {
		return nil, err
	}
	raw := ds.raw(dataTag)
	l := &lut{first: first, bits: bits}
	switch {
	case bits <= 8 && len(raw) == n || bits <= 8 && len(raw) == n+1 && n%2 == 1:
		// 8-bit entries packed one per byte.
		l.data = make([]uint16, n)
		for i := range l.data {
			l.data[i] = uint16(raw[i])
		}
	case len(raw) >= 2*n:
		l.data = wordsOf(raw[:2*n], ds.byteOrder)
		if bits <= 8 {
			for i, v := range l.data {
				l.data[i] = v & 0xFF
			}
		}
	default:
		return nil, fmt.Errorf("%w: LUT data (%04X,%04X) has %d bytes for %d entries", ErrCorrupt, dataTag>>16, dataTag&0xFFFF, len(raw), n)
	}
	return l, nil
}

// window is a VOI window (PS3.3 C.11.2.1.2).
type window struct {
	center, width float64
	function      string // LINEAR, LINEAR_EXACT or SIGMOID
}

// apply maps x to [0,1].
func (w window) apply(x float64) float64 {
	c, wd := w.center, w.width
	switch w.function {
	case "SIGMOID":
		return 1 / (1 + math.Exp(-4*(x-c)/wd))
	case "LINEAR_EXACT":
		switch {
		case x <= c-wd/2:
			return 0
		case x > c+wd/2:
			return 1
		}
		return (x-c)/wd + 0.5
	default:
		switch {
		case x <= c-0.5-(wd-1)/2:
			return 0
		case x > c-0.5+(wd-1)/2:
			return 1
		}
		return (x-(c-0.5))/(wd-1) + 0.5
	}
}

func parseDS(s string) (float64, bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// firstWindow returns the first window of the data set, if it has a valid
// one. LINEAR needs a width of at least 1, the others a positive width.
func firstWindow(ds *dataset) (window, bool) {
	cs, ws := ds.strs(tagWindowCenter), ds.strs(tagWindowWidth)
	if len(cs) == 0 || len(ws) == 0 {
		return window{}, false
	}
	c, ok1 := parseDS(cs[0])
	w, ok2 := parseDS(ws[0])
	if !ok1 || !ok2 {
		return window{}, false
	}
	fn := strings.ToUpper(ds.str(tagVOILUTFunction))
	if f := strings.Split(fn, "\\"); len(f) > 0 {
		fn = strings.TrimSpace(f[0])
	}
	switch fn {
	case "LINEAR_EXACT", "SIGMOID":
		if w <= 0 {
			return window{}, false
		}
	default:
		fn = "LINEAR"
		if w < 1 {
			return window{}, false
		}
	}
	return window{center: c, width: w, function: fn}, true
}

// grayPipeline is the grayscale transformation chain of PS3.3 C.11: the
// modality transformation, the VOI transformation and the polarity.
type grayPipeline struct {
	modLUT         *lut
	slope, icept   float64
	win            window
	hasWin         bool
	voiLUT         *lut
	autoLo, autoHi float64
	invert         bool
}

func (g *grayPipeline) modality(v int64) float64 {
	if g.modLUT != nil {
		return float64(g.modLUT.lookup(v))
	}
	return float64(v)*g.slope + g.icept
}

// out maps a stored value to an 8-bit presentation value.
func (g *grayPipeline) out(v int64) uint8 {
	m := g.modality(v)
	var y float64
	switch {
	case g.hasWin:
		y = g.win.apply(m)
	case g.voiLUT != nil:
		y = float64(g.voiLUT.lookup(int64(math.Floor(m)))) / g.voiLUT.maxOut()
	default:
		if g.autoHi > g.autoLo {
			y = (m - g.autoLo) / (g.autoHi - g.autoLo)
		}
	}
	y = min(max(y, 0), 1)
	if g.invert {
		y = 1 - y
	}
	return uint8(y*255 + 0.5)
}

// newGrayPipeline builds the pipeline of ds for stored values in [lo, hi].
func newGrayPipeline(ds *dataset, photometric string, signed bool, lo, hi int64) (*grayPipeline, error) {
	g := &grayPipeline{slope: 1, invert: photometric == "MONOCHROME1"}
	if items := ds.items(tagModalityLUTSequence); len(items) > 0 {
		l, err := parseLUT(items[0], tagLUTDescriptor, tagLUTData, signed)
		if err != nil {
			return nil, err
		}
		g.modLUT = l
	} else {
		if v, ok := parseDS(ds.str(tagRescaleSlope)); ok && v != 0 {
			g.slope = v
		}
		if v, ok := parseDS(ds.str(tagRescaleIntercept)); ok {
			g.icept = v
		}
	}
	// Window first, then VOI LUT: PS3.3 C.11.2 lets the application choose
	// when both are present, and the window is what modalities tune.
	if w, ok := firstWindow(ds); ok {
		g.win, g.hasWin = w, true
		return g, nil
	}
	if items := ds.items(tagVOILUTSequence); len(items) > 0 {
		// The VOI LUT's first-mapped value is signed when the modality
		// output can be negative.
		voiSigned := signed || g.icept < 0 || g.slope < 0
		if l, err := parseLUT(items[0], tagLUTDescriptor, tagLUTData, voiSigned); err == nil {
			g.voiLUT = l
			return g, nil
		}
	}
	// No VOI in the file: stretch the frame's modality range (min-max).
	a, b := g.modality(lo), g.modality(hi)
	if g.modLUT != nil {
		a, b = math.Inf(1), math.Inf(-1)
		for v := lo; v <= hi && v-lo <= 1<<16; v++ {
			m := g.modality(v)
			a, b = min(a, m), max(b, m)
		}
	}
	g.autoLo, g.autoHi = min(a, b), max(a, b)
	return g, nil
}

// Which VOI transformation a grayscale render used.
const (
	voiWindow      = "window"
	voiLUTSequence = "voi-lut"
	voiMinMax      = "min-max"
)

// maxTable bounds the stored-value range rendered through a lookup table;
// wider ranges (32-bit data) are transformed pixel by pixel.
const maxTable = 1 << 17

// renderGray runs the grayscale pipeline over a frame.
func renderGray(ds *dataset, s *samples) (*image.Gray, string, error) {
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for _, v := range s.pix {
		lo, hi = min(lo, v), max(hi, v)
	}
	g, err := newGrayPipeline(ds, s.photometric, s.signed, lo, hi)
	if err != nil {
		return nil, "", err
	}
	img := image.NewGray(image.Rect(0, 0, s.width, s.height))
	if hi-lo < maxTable {
		table := g.table(lo, hi)
		for i, v := range s.pix {
			img.Pix[i] = table[v-lo]
		}
		return img, g.voi(), nil
	}
	for i, v := range s.pix {
		img.Pix[i] = g.out(v)
	}
	return img, g.voi(), nil
}

// voi names the VOI transformation the pipeline applies.
func (g *grayPipeline) voi() string {
	switch {
	case g.hasWin:
		return voiWindow
	case g.voiLUT != nil:
		return voiLUTSequence
	}
	return voiMinMax
}

// table returns the output for every stored value in [lo, hi].
func (g *grayPipeline) table(lo, hi int64) []uint8 {
	t := make([]uint8, hi-lo+1)
	for i := range t {
		t[i] = g.out(lo + int64(i))
	}
	return t
}

// renderGrayNative is the fast path for the commonest case, native 8- or
// 16-bit grayscale: stored values go straight from the frame bytes through
// one lookup table, without an intermediate sample buffer.
func renderGrayNative(ds *dataset, f *rawFrame, in *imageInfo) (*image.Gray, string, error) {
	n := in.pixelsPerFrame()
	bytesPer := in.bitsAllocated / 8
	if len(f.native) < n*bytesPer {
		return nil, "", fmt.Errorf("%w: short frame", ErrCorrupt)
	}
	if bytesPer == 2 && in.bitsStored == 16 && !f.bigEndian {
		return renderGray16(ds, f.native[:2*n], in)
	}
	sv := newStoredValue(in.bitsStored, in.highBit, in.signed)
	// One table over every allocated word value maps it to its stored
	// value's output: 256 or 65536 entries.
	words := 1 << uint(in.bitsAllocated)
	stored := func(w int) int64 { return sv.of(uint64(w)) }
	b := f.native
	// Which words occur: min and max stored value for the automatic window.
	seen := make([]bool, words)
	switch {
	case bytesPer == 1:
		for _, w := range b[:n] {
			seen[w] = true
		}
	case f.bigEndian:
		for i := 0; i < n; i++ {
			seen[int(b[2*i])<<8|int(b[2*i+1])] = true
		}
	default:
		for i := 0; i < n; i++ {
			seen[int(b[2*i])|int(b[2*i+1])<<8] = true
		}
	}
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for w, ok := range seen {
		if ok {
			v := stored(w)
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	g, err := newGrayPipeline(ds, in.photometric, in.signed, lo, hi)
	if err != nil {
		return nil, "", err
	}
	vals := g.table(lo, hi)
	table := make([]uint8, words)
	for w, ok := range seen {
		if ok {
			table[w] = vals[stored(w)-lo]
		}
	}
	img := image.NewGray(image.Rect(0, 0, in.cols, in.rows))
	out := img.Pix[:n]
	switch {
	case bytesPer == 1:
		for i, w := range b[:n] {
			out[i] = table[w]
		}
	case f.bigEndian:
		for i := range out {
			out[i] = table[int(b[2*i])<<8|int(b[2*i+1])]
		}
	default:
		for i := range out {
			out[i] = table[int(b[2*i])|int(b[2*i+1])<<8]
		}
	}
	return img, g.voi(), nil
}

// renderGray16 is renderGrayNative for full 16-bit little-endian words,
// where the stored value is the word itself (CT, MR): one pass for the
// range, one through a table over just that range.
func renderGray16(ds *dataset, b []byte, in *imageInfo) (*image.Gray, string, error) {
	n := len(b) / 2
	lo, hi := int32(math.MaxInt32), int32(math.MinInt32)
	if in.signed {
		for i := 0; i < n; i++ {
			v := int32(int16(uint16(b[2*i]) | uint16(b[2*i+1])<<8))
			lo, hi = min(lo, v), max(hi, v)
		}
	} else {
		for i := 0; i < n; i++ {
			v := int32(uint16(b[2*i]) | uint16(b[2*i+1])<<8)
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	g, err := newGrayPipeline(ds, in.photometric, in.signed, int64(lo), int64(hi))
	if err != nil {
		return nil, "", err
	}
	table := g.table(int64(lo), int64(hi))
	img := image.NewGray(image.Rect(0, 0, in.cols, in.rows))
	out := img.Pix[:n]
	if in.signed {
		for i := range out {
			out[i] = table[int32(int16(uint16(b[2*i])|uint16(b[2*i+1])<<8))-lo]
		}
	} else {
		for i := range out {
			out[i] = table[int32(uint16(b[2*i])|uint16(b[2*i+1])<<8)-lo]
		}
	}
	return img, g.voi(), nil
}
