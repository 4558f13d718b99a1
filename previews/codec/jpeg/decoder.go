package jpeg

import "bytes"

// Marker codes, T.81 Table B.1.
const (
	mSOF0  = 0xC0 // baseline DCT
	mSOF1  = 0xC1 // extended sequential DCT, Huffman
	mSOF2  = 0xC2 // progressive DCT, Huffman
	mSOF3  = 0xC3 // lossless, Huffman
	mDHT   = 0xC4
	mSOF7  = 0xC7
	mJPG   = 0xC8
	mDAC   = 0xCC
	mSOF9  = 0xC9
	mSOFF  = 0xCF
	mRST0  = 0xD0
	mRST7  = 0xD7
	mSOI   = 0xD8
	mEOI   = 0xD9
	mSOS   = 0xDA
	mDQT   = 0xDB
	mDNL   = 0xDC
	mDRI   = 0xDD
	mDHP   = 0xDE
	mEXP   = 0xDF
	mSOF55 = 0xF7 // JPEG-LS (T.87), same marker space
	mLSE   = 0xF8
	mAPP0  = 0xE0 // JFIF
	mAPP14 = 0xEE // Adobe
)

// component is one frame component (T.81 B.2.2) and its decoded samples.
type component struct {
	id      byte
	h, v    int // sampling factors
	tq      int // quantisation table selector
	w, h2   int // component size in samples: ceil(X*h/Hmax), ceil(Y*v/Vmax)
	bw, bh  int // blocks (DCT) or samples (lossless) per line/column covering the component
	stride  int // plane line length: MCUs per line * h * unit
	rows    int // plane lines: MCUs per column * v * unit
	plane   []uint16
	coef    []int16   // progressive only: quantised coefficients, 64 per block
	q       [64]int32 // progressive only: quantisation table latched at the first scan
	scanned bool      // some scan has carried this component
}

// decoder holds the state of one Decode or DecodeConfig call.
type decoder struct {
	data []byte
	pos  int

	sof        int // low nibble of SOFn; -1 before the frame header
	haveSOF    bool
	precision  int
	width      int
	height     int
	comps      []component
	hmax, vmax int
	mcusX      int // MCUs per line of an interleaved scan
	mcusY      int

	quant    [4][64]int32 // natural order
	quantSet [4]bool
	dc, ac   [4]huffTable
	ri       int // restart interval in MCUs, 0 = none

	// progressive state
	eobrun int

	// colour is what the markers before the first scan say the components
	// are; colourStated once an Adobe marker or the component ids have
	// said so, which a later JFIF marker cannot overrule.
	colour       Colour
	colourStated bool
	sawSOS       bool
}

// u16 reads a big-endian 16-bit value at p.
func (d *decoder) u16(p int) int { return int(d.data[p])<<8 | int(d.data[p+1]) }

// decode walks the marker segments. With headerOnly it stops after the
// frame header.
func (d *decoder) decode(headerOnly bool) error {
	if len(d.data) < 4 || d.data[0] != 0xFF || d.data[1] != mSOI {
		return corrupt("missing SOI marker")
	}
	d.pos = 2
	for {
		m, err := d.nextMarker()
		if err != nil {
			if d.haveSOF && d.allScanned() && !headerOnly {
				// Tolerate a missing EOI after complete scans: some
				// encoders and fragment padding lose it.
				return nil
			}
			return err
		}
		switch {
		case m == mEOI:
			if !d.haveSOF {
				return corrupt("EOI before frame header")
			}
			if headerOnly {
				return nil
			}
			if !d.allScanned() {
				return corrupt("EOI before every component was coded")
			}
			return nil
		case m == mSOI:
			return corrupt("second SOI marker")
		case m >= mRST0 && m <= mRST7:
			// A stray restart marker outside a scan carries no data.
			continue
		}
		seg, err := d.segment()
		if err != nil {
			return err
		}
		switch {
		case m == mSOF0 || m == mSOF1 || m == mSOF2 || m == mSOF3:
			if err := d.parseSOF(m, seg); err != nil {
				return err
			}
			if headerOnly {
				return nil
			}
		case m == mDHT:
			if err := d.parseDHT(seg); err != nil {
				return err
			}
		case m == mDQT:
			if err := d.parseDQT(seg); err != nil {
				return err
			}
		case m == mDRI:
			if len(seg) != 2 {
				return corrupt("DRI length %d", len(seg))
			}
			d.ri = int(seg[0])<<8 | int(seg[1])
		case m == mSOS:
			// With headerOnly, decode has returned at the frame header.
			if !d.haveSOF {
				return corrupt("SOS before frame header")
			}
			d.sawSOS = true
			if err := d.scan(seg); err != nil {
				return err
			}
		case m == mDNL:
			return unsupported("DNL marker")
		case m == mDAC || (m >= mSOF9 && m <= mSOFF):
			return unsupported("arithmetic coding (marker 0x%02X)", m)
		case (m >= 0xC5 && m <= mSOF7) || m == mDHP || m == mEXP:
			return unsupported("hierarchical process (marker 0x%02X)", m)
		case m == mSOF55 || m == mLSE:
			return unsupported("JPEG-LS (marker 0x%02X)", m)
		case m == mAPP0 || m == mAPP14:
			d.parseColourMarker(m, seg)
		case m == mJPG || (m >= 0xF0 && m <= 0xFD) || (m >= 0xE0 && m <= 0xEF) || m == 0xFE:
			// Other APPn, COM, JPGn extensions: no bearing on the samples.
		default:
			return corrupt("unexpected marker 0x%02X", m)
		}
	}
}

// nextMarker skips to the next marker and returns its code. Fill bytes
// (0xFF) before a marker are allowed (T.81 B.1.1.2); anything else between
// segments is an error.
func (d *decoder) nextMarker() (byte, error) {
	for d.pos+1 < len(d.data) {
		if d.data[d.pos] != 0xFF {
			return 0, corrupt("expected marker at offset %d, found 0x%02X", d.pos, d.data[d.pos])
		}
		m := d.data[d.pos+1]
		if m == 0xFF {
			d.pos++
			continue
		}
		if m == 0x00 {
			return 0, corrupt("stuffed zero outside entropy-coded data at offset %d", d.pos)
		}
		d.pos += 2
		return m, nil
	}
	return 0, corrupt("data ends before EOI")
}

// segment returns the payload of the marker segment at d.pos (after its
// two length bytes) and moves past it.
func (d *decoder) segment() ([]byte, error) {
	if d.pos+2 > len(d.data) {
		return nil, corrupt("truncated segment length")
	}
	n := d.u16(d.pos)
	if n < 2 || d.pos+n > len(d.data) {
		return nil, corrupt("segment length %d at offset %d exceeds data", n, d.pos)
	}
	seg := d.data[d.pos+2 : d.pos+n]
	d.pos += n
	return seg, nil
}

// parseColourMarker notes what a JFIF APP0 or Adobe APP14 segment before
// the first scan says about the colour of the components (see Colour).
func (d *decoder) parseColourMarker(m byte, seg []byte) {
	if d.sawSOS || d.colourStated {
		return
	}
	switch {
	case m == mAPP0 && bytes.HasPrefix(seg, []byte("JFIF\x00")):
		d.colour = ColourYCbCr
	case m == mAPP14 && bytes.HasPrefix(seg, []byte("Adobe")) && len(seg) >= 12:
		// The transform flag is the last byte: 0 none (RGB), 1 YCbCr,
		// 2 YCCK.
		d.colour, d.colourStated = ColourYCbCr, true
		if seg[11] == 0 {
			d.colour = ColourRGB
		}
	}
}

func (d *decoder) allScanned() bool {
	for i := range d.comps {
		if !d.comps[i].scanned {
			return false
		}
	}
	return len(d.comps) > 0
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// parseSOF reads a frame header, T.81 B.2.2, checks it and sizes the
// component planes (without allocating them).
func (d *decoder) parseSOF(m byte, seg []byte) error {
	if d.haveSOF {
		return corrupt("second frame header")
	}
	if len(seg) < 6 {
		return corrupt("SOF length %d", len(seg))
	}
	d.sof = int(m & 0x0F)
	d.precision = int(seg[0])
	d.height = int(seg[1])<<8 | int(seg[2])
	d.width = int(seg[3])<<8 | int(seg[4])
	nf := int(seg[5])
	switch d.sof {
	case 0:
		if d.precision != 8 {
			return corrupt("baseline precision %d", d.precision)
		}
	case 1, 2:
		if d.precision != 8 && d.precision != 12 {
			return corrupt("DCT precision %d", d.precision)
		}
	case 3:
		if d.precision < 2 || d.precision > 16 {
			return corrupt("lossless precision %d", d.precision)
		}
	}
	if d.height == 0 {
		return unsupported("frame height given by DNL")
	}
	if d.width == 0 {
		return corrupt("frame width 0")
	}
	if nf < 1 || nf > 4 {
		if nf == 0 {
			return corrupt("no components")
		}
		return unsupported("%d components", nf)
	}
	if len(seg) != 6+3*nf {
		return corrupt("SOF length %d for %d components", len(seg), nf)
	}
	d.comps = make([]component, nf)
	d.hmax, d.vmax = 1, 1
	for i := range d.comps {
		c := &d.comps[i]
		p := seg[6+3*i:]
		c.id = p[0]
		c.h = int(p[1] >> 4)
		c.v = int(p[1] & 15)
		c.tq = int(p[2])
		if c.h < 1 || c.h > 4 || c.v < 1 || c.v > 4 {
			return corrupt("component %d sampling factors %dx%d", c.id, c.h, c.v)
		}
		if c.tq > 3 {
			return corrupt("component %d quantisation table %d", c.id, c.tq)
		}
		for j := 0; j < i; j++ {
			if d.comps[j].id == c.id {
				return corrupt("duplicate component id %d", c.id)
			}
		}
		d.hmax = max(d.hmax, c.h)
		d.vmax = max(d.vmax, c.v)
	}
	if !d.colourStated && nf == 3 && d.comps[0].id == 'R' && d.comps[1].id == 'G' && d.comps[2].id == 'B' {
		d.colour, d.colourStated = ColourRGB, true
	}
	samples := int64(d.width) * int64(d.height) * int64(nf)
	if samples > MaxSamples {
		return unsupported("frame of %d samples exceeds limit %d", samples, MaxSamples)
	}
	unit := 8
	if d.sof == 3 {
		unit = 1
	}
	d.mcusX = ceilDiv(d.width, d.hmax*unit)
	d.mcusY = ceilDiv(d.height, d.vmax*unit)
	var units int64
	for i := range d.comps {
		c := &d.comps[i]
		c.w = ceilDiv(d.width*c.h, d.hmax)
		c.h2 = ceilDiv(d.height*c.v, d.vmax)
		c.bw = ceilDiv(c.w, unit)
		c.bh = ceilDiv(c.h2, unit)
		c.stride = d.mcusX * c.h * unit
		c.rows = d.mcusY * c.v * unit
		units += int64(d.mcusX*c.h) * int64(d.mcusY*c.v)
	}
	// Every data unit costs at least one bit per Huffman-coded symbol:
	// a DCT block at least two (DC difference and EOB), a lossless sample
	// at least one. A frame claiming more units than the data could code
	// is hostile; refuse it before allocating.
	bits := int64(len(d.data)) * 8
	switch d.sof {
	case 3:
		if units > bits {
			return corrupt("%d samples cannot be coded in %d bytes", units, len(d.data))
		}
	case 2:
		// The DC scans code every block's DC difference, one bit at least.
		if units > bits {
			return corrupt("%d blocks cannot be coded in %d bytes", units, len(d.data))
		}
	default:
		if units*2 > bits {
			return corrupt("%d blocks cannot be coded in %d bytes", units, len(d.data))
		}
	}
	d.haveSOF = true
	return nil
}

func (d *decoder) config() Config {
	return Config{Width: d.width, Height: d.height, Components: len(d.comps), Precision: d.precision, Process: d.sof}
}

// parseDQT reads quantisation tables, T.81 B.2.4.1.
func (d *decoder) parseDQT(seg []byte) error {
	for len(seg) > 0 {
		pq, tq := int(seg[0]>>4), int(seg[0]&15)
		if pq > 1 || tq > 3 {
			return corrupt("DQT Pq=%d Tq=%d", pq, tq)
		}
		n := 64 * (pq + 1)
		if len(seg) < 1+n {
			return corrupt("DQT truncated")
		}
		for k := 0; k < 64; k++ {
			var q int32
			if pq == 0 {
				q = int32(seg[1+k])
			} else {
				q = int32(seg[1+2*k])<<8 | int32(seg[2+2*k])
			}
			d.quant[tq][zigzag[k]] = q
		}
		d.quantSet[tq] = true
		seg = seg[1+n:]
	}
	return nil
}

// parseDHT reads Huffman tables, T.81 B.2.4.2.
func (d *decoder) parseDHT(seg []byte) error {
	for len(seg) > 0 {
		if len(seg) < 17 {
			return corrupt("DHT truncated")
		}
		tc, th := int(seg[0]>>4), int(seg[0]&15)
		if tc > 1 || th > 3 {
			return corrupt("DHT Tc=%d Th=%d", tc, th)
		}
		var counts [16]int
		total := 0
		for i := range counts {
			counts[i] = int(seg[1+i])
			total += counts[i]
		}
		if total > 256 || len(seg) < 17+total {
			return corrupt("DHT with %d codes truncated or too long", total)
		}
		t := &d.dc[th]
		if tc == 1 {
			t = &d.ac[th]
		}
		if err := t.build(counts, seg[17:17+total]); err != nil {
			return err
		}
		seg = seg[17+total:]
	}
	return nil
}

// scanComp is one component of a scan with its entropy tables.
type scanComp struct {
	c      *component
	dc, ac *huffTable
	pred   int32 // DC predictor (DCT)
}

// scan reads a scan header, T.81 B.2.3, then decodes the scan's
// entropy-coded data and leaves d.pos at the marker that ends it.
func (d *decoder) scan(seg []byte) error {
	if len(seg) < 1 {
		return corrupt("SOS empty")
	}
	ns := int(seg[0])
	if ns < 1 || ns > 4 || len(seg) != 4+2*ns {
		return corrupt("SOS with %d components, length %d", ns, len(seg))
	}
	scs := make([]scanComp, ns)
	blocks := 0
	for i := range scs {
		id := seg[1+2*i]
		td, ta := int(seg[2+2*i]>>4), int(seg[2+2*i]&15)
		var c *component
		for j := range d.comps {
			if d.comps[j].id == id {
				c = &d.comps[j]
			}
		}
		if c == nil {
			return corrupt("scan component %d not in frame", id)
		}
		for j := 0; j < i; j++ {
			if scs[j].c == c {
				return corrupt("component %d twice in a scan", id)
			}
		}
		if td > 3 || ta > 3 {
			return corrupt("scan table selectors %d/%d", td, ta)
		}
		scs[i] = scanComp{c: c, dc: &d.dc[td], ac: &d.ac[ta]}
		blocks += c.h * c.v
	}
	if ns > 1 && blocks > 10 {
		return corrupt("%d data units per MCU exceed 10", blocks)
	}
	p := seg[1+2*ns:]
	ss, se, ah, al := int(p[0]), int(p[1]), int(p[2]>>4), int(p[2]&15)
	for _, sc := range scs {
		c := sc.c
		if c.plane == nil {
			c.plane = make([]uint16, c.stride*c.rows)
		}
		c.scanned = true
	}
	br := bitReader{data: d.data, pos: d.pos}
	var err error
	switch d.sof {
	case 3:
		if ss < 1 || ss > 7 {
			return corrupt("lossless predictor %d", ss)
		}
		if al >= d.precision {
			return corrupt("point transform %d for precision %d", al, d.precision)
		}
		err = d.losslessScan(&br, scs, ss, al)
	case 2:
		err = d.progressiveScan(&br, scs, ss, se, ah, al)
	default:
		// Sequential: Ss=0, Se=63, Ah=Al=0 are mandated; libjpeg ignores
		// deviations and so do we, since nothing else depends on them.
		err = d.sequentialScan(&br, scs)
	}
	if err != nil {
		return err
	}
	d.pos = br.skipToMarker()
	return nil
}

// image assembles the output from the component planes.
func (d *decoder) image() (*Image, error) {
	if d.sof == 2 {
		d.finishProgressive()
	}
	nc := len(d.comps)
	img := &Image{Width: d.width, Height: d.height, Components: nc, Precision: d.precision, Colour: d.colour}
	img.Pix = make([]uint16, d.width*d.height*nc)
	for ci := range d.comps {
		c := &d.comps[ci]
		full := c.plane
		stride := c.stride
		if c.h != d.hmax || c.v != d.vmax {
			full = d.upsample(c)
			stride = d.width
		}
		for y := 0; y < d.height; y++ {
			row := full[y*stride : y*stride+d.width]
			out := img.Pix[y*d.width*nc+ci:]
			for x, s := range row {
				out[x*nc] = s
			}
		}
	}
	return img, nil
}
