package jpegls

// j is the run-length order table J of T.87 A.7.1.1.
var j = [32]int{0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 9, 10, 11, 12, 13, 14, 15}

// Context indices: 365 regular contexts (A.3.4), then the two run
// interruption contexts (RItype 0 and 1, A.7.2).
const (
	regularContexts = 365
	runContext0     = 365
	numContexts     = 367
	minC            = -128
	maxC            = 127
)

// params are the coding parameters of one scan (T.87 C.2.4.1, A.2.1).
type params struct {
	near, maxVal, t1, t2, t3, reset int
	rng, qbpp, limit                int
}

func ceilLog2(v int) int {
	n := 0
	for (1 << uint(n)) < v {
		n++
	}
	return n
}

// defaultThresholds computes T1..T3 as in T.87 C.2.4.1.1.1.
func defaultThresholds(maxVal, near int) (t1, t2, t3 int) {
	const basicT1, basicT2, basicT3 = 3, 7, 21
	clamp := func(i, lo int) int {
		if i > maxVal || i < lo {
			return lo
		}
		return i
	}
	if maxVal >= 128 {
		factor := (min(maxVal, 4095) + 128) >> 8
		t1 = clamp(factor*(basicT1-2)+2+3*near, near+1)
		t2 = clamp(factor*(basicT2-3)+3+5*near, t1)
		t3 = clamp(factor*(basicT3-4)+4+7*near, t2)
		return t1, t2, t3
	}
	factor := 256 / (maxVal + 1)
	t1 = clamp(max(2, basicT1/factor+3*near), near+1)
	t2 = clamp(max(3, basicT2/factor+5*near), t1)
	t3 = clamp(max(4, basicT3/factor+7*near), t2)
	return t1, t2, t3
}

// scanParams resolves the preset parameters in force for a scan.
func scanParams(precision, near int, pr presets) (params, error) {
	p := params{near: near, maxVal: pr.maxVal, reset: pr.reset}
	if p.maxVal == 0 {
		p.maxVal = 1<<uint(precision) - 1
	}
	if p.maxVal < 1 || p.maxVal > 1<<uint(precision)-1 {
		return p, corruptf("MAXVAL %d for precision %d", p.maxVal, precision)
	}
	if near > min(255, p.maxVal/2) {
		return p, corruptf("NEAR %d for MAXVAL %d", near, p.maxVal)
	}
	if p.reset == 0 {
		p.reset = 64
	}
	if p.reset < 3 || p.reset > max(255, p.maxVal) {
		return p, corruptf("RESET %d", p.reset)
	}
	dt1, dt2, dt3 := defaultThresholds(p.maxVal, near)
	p.t1, p.t2, p.t3 = pr.t1, pr.t2, pr.t3
	if p.t1 == 0 {
		p.t1 = dt1
	}
	if p.t2 == 0 {
		p.t2 = dt2
	}
	if p.t3 == 0 {
		p.t3 = dt3
	}
	if p.t1 < near+1 || p.t1 > p.maxVal || p.t2 < p.t1 || p.t2 > p.maxVal || p.t3 < p.t2 || p.t3 > p.maxVal {
		return p, corruptf("thresholds T1=%d T2=%d T3=%d for MAXVAL %d NEAR %d", p.t1, p.t2, p.t3, p.maxVal, near)
	}
	p.rng = (p.maxVal+2*near)/(2*near+1) + 1
	p.qbpp = ceilLog2(p.rng)
	bpp := max(2, ceilLog2(p.maxVal+1))
	p.limit = 2 * (bpp + max(8, bpp))
	return p, nil
}

// coder holds the adaptive state of a scan (T.87 A.2): context counters,
// the gradient quantiser and the current entropy-coded segment.
type coder struct {
	params
	a, b, c, n [numContexts]int
	nn         [2]int
	qtab       []int8 // quantised gradient, indexed by gradient+maxVal
	br         *bitReader
	step       int // 2*NEAR+1
}

func newCoder(p params) *coder {
	cd := &coder{params: p, step: 2*p.near + 1}
	cd.qtab = make([]int8, 2*p.maxVal+1)
	for i := range cd.qtab {
		cd.qtab[i] = cd.quantize(i - p.maxVal)
	}
	cd.resetContexts()
	return cd
}

// reset initialises the context variables (A.2.1), at scan start and after
// every restart marker.
func (cd *coder) resetContexts() {
	a0 := max(2, (cd.rng+32)/64)
	for i := range cd.a {
		cd.a[i] = a0
		cd.b[i] = 0
		cd.c[i] = 0
		cd.n[i] = 1
	}
	cd.nn = [2]int{}
}

// quantize maps a local gradient to one of nine regions (A.3.3).
func (cd *coder) quantize(d int) int8 {
	switch {
	case d <= -cd.t3:
		return -4
	case d <= -cd.t2:
		return -3
	case d <= -cd.t1:
		return -2
	case d < -cd.near:
		return -1
	case d <= cd.near:
		return 0
	case d < cd.t1:
		return 1
	case d < cd.t2:
		return 2
	case d < cd.t3:
		return 3
	}
	return 4
}

// med is the median edge detector predictor (A.4.1).
func med(ra, rb, rc int) int {
	mx, mn := ra, rb
	if rb > ra {
		mx, mn = rb, ra
	}
	switch {
	case rc >= mx:
		return mn
	case rc <= mn:
		return mx
	}
	return ra + rb - rc
}

// reconstruct adds the dequantised error to the prediction and reduces the
// result modulo RANGE into [0, MAXVAL] (A.4.4, A.6.1).
func (cd *coder) reconstruct(px, errval int) int {
	rx := px + errval*cd.step
	if rx < -cd.near {
		rx += cd.rng * cd.step
	} else if rx > cd.maxVal+cd.near {
		rx -= cd.rng * cd.step
	}
	if rx < 0 {
		return 0
	}
	if rx > cd.maxVal {
		return cd.maxVal
	}
	return rx
}

// context returns the context index and sign for quantised gradients
// (A.3.4): contexts are merged by sign so that the first non-zero gradient is
// positive.
func context(q1, q2, q3 int) (q int, negative bool) {
	if q1 < 0 || (q1 == 0 && (q2 < 0 || (q2 == 0 && q3 < 0))) {
		return -(81*q1 + 9*q2 + q3), true
	}
	return 81*q1 + 9*q2 + q3, false
}

// regular decodes one sample in regular mode (A.4–A.6).
func (cd *coder) regular(q int, negative bool, ra, rb, rc int) (int, error) {
	px := med(ra, rb, rc)
	if negative {
		px -= cd.c[q]
	} else {
		px += cd.c[q]
	}
	if px > cd.maxVal {
		px = cd.maxVal
	} else if px < 0 {
		px = 0
	}
	k := 0
	for cd.n[q]<<uint(k) < cd.a[q] {
		k++
		if k > 24 {
			return 0, corruptf("Golomb parameter out of range")
		}
	}
	em, ok := cd.br.golomb(k, cd.limit, cd.qbpp)
	if !ok {
		return 0, corruptf("Golomb code longer than LIMIT")
	}
	var errval int
	if cd.near == 0 && k == 0 && 2*cd.b[q] <= -cd.n[q] {
		if em&1 == 1 {
			errval = (em - 1) >> 1
		} else {
			errval = -(em >> 1) - 1
		}
	} else if em&1 == 0 {
		errval = em >> 1
	} else {
		errval = -((em + 1) >> 1)
	}
	// Context update (A.6.1) and bias correction (A.6.2).
	cd.b[q] += errval * cd.step
	if errval < 0 {
		cd.a[q] -= errval
	} else {
		cd.a[q] += errval
	}
	if cd.n[q] == cd.reset {
		cd.a[q] >>= 1
		cd.b[q] >>= 1
		cd.n[q] >>= 1
	}
	cd.n[q]++
	if cd.b[q] <= -cd.n[q] {
		cd.b[q] += cd.n[q]
		if cd.c[q] > minC {
			cd.c[q]--
		}
		if cd.b[q] <= -cd.n[q] {
			cd.b[q] = -cd.n[q] + 1
		}
	} else if cd.b[q] > 0 {
		cd.b[q] -= cd.n[q]
		if cd.c[q] < maxC {
			cd.c[q]++
		}
		if cd.b[q] > 0 {
			cd.b[q] = 0
		}
	}
	if negative {
		errval = -errval
	}
	return cd.reconstruct(px, errval), nil
}

// runLength decodes the length of a run of Ra-valued samples (A.7.1) with at
// most remaining samples left in the line. atEnd reports that the run
// reached the end of the line, so no interruption sample follows.
func (cd *coder) runLength(ri *int, remaining int) (n int, atEnd bool, err error) {
	for cd.br.bit() == 1 {
		seg := 1 << uint(j[*ri])
		cnt := min(seg, remaining-n)
		n += cnt
		if cnt == seg && *ri < 31 {
			*ri++
		}
		if n == remaining {
			return n, true, nil
		}
		if cd.br.overrun() {
			return 0, false, corruptf("truncated run")
		}
	}
	n += cd.br.read(j[*ri])
	if n >= remaining {
		return 0, false, corruptf("run length %d exceeds line", n)
	}
	return n, false, nil
}

// interruption decodes a run interruption sample (A.7.2) of the given type
// whose prediction is px; negative flips the error sign.
func (cd *coder) interruption(ri int, ritype int, px int, negative bool) (int, error) {
	q := runContext0 + ritype
	temp := cd.a[q]
	if ritype == 1 {
		temp += cd.n[q] >> 1
	}
	k := 0
	for cd.n[q]<<uint(k) < temp {
		k++
		if k > 24 {
			return 0, corruptf("Golomb parameter out of range")
		}
	}
	em, ok := cd.br.golomb(k, cd.limit-j[ri]-1, cd.qbpp)
	if !ok {
		return 0, corruptf("Golomb code longer than LIMIT")
	}
	t := em + ritype
	mapped := t & 1
	errval := (t + mapped) >> 1
	if (k != 0 || 2*cd.nn[ritype] >= cd.n[q]) == (mapped == 1) {
		errval = -errval
	}
	// Update of the run interruption contexts (A.7.2.3).
	if errval < 0 {
		cd.nn[ritype]++
	}
	cd.a[q] += (em + 1 - ritype) >> 1
	if cd.n[q] == cd.reset {
		cd.a[q] >>= 1
		cd.n[q] >>= 1
		cd.nn[ritype] >>= 1
	}
	cd.n[q]++
	if negative {
		errval = -errval
	}
	return cd.reconstruct(px, errval), nil
}

// line decodes one line of one component (interleave modes none and line).
// cur and prev have one guard sample on each side: cur[0] is Ra for the
// first sample, prev[w+1] is Rd for the last.
func (cd *coder) line(cur, prev []int, ri *int) error {
	w := len(cur) - 2
	prev[w+1] = prev[w]
	cur[0] = prev[1]
	qt := cd.qtab
	mv := cd.maxVal
	for x := 1; x <= w; {
		ra, rb, rc, rd := cur[x-1], prev[x], prev[x-1], prev[x+1]
		q1, q2, q3 := int(qt[rd-rb+mv]), int(qt[rb-rc+mv]), int(qt[rc-ra+mv])
		if q1 == 0 && q2 == 0 && q3 == 0 {
			n, atEnd, err := cd.runLength(ri, w-x+1)
			if err != nil {
				return err
			}
			for i := range n {
				cur[x+i] = ra
			}
			x += n
			if atEnd {
				break
			}
			rb = prev[x]
			var v int
			if ra-rb <= cd.near && rb-ra <= cd.near {
				v, err = cd.interruption(*ri, 1, ra, false)
			} else {
				v, err = cd.interruption(*ri, 0, rb, ra > rb)
			}
			if err != nil {
				return err
			}
			cur[x] = v
			x++
			if *ri > 0 {
				*ri--
			}
			continue
		}
		q, neg := context(q1, q2, q3)
		v, err := cd.regular(q, neg, ra, rb, rc)
		if err != nil {
			return err
		}
		cur[x] = v
		x++
	}
	if cd.br.overrun() {
		return corruptf("truncated scan data")
	}
	return nil
}

// lineSample decodes one line of all components of a sample-interleaved
// scan. Run mode is entered only when every component's gradients are
// zero; a run interruption codes each component with the RItype 0 context
// and Rb as prediction, as CharLS (and so DCMTK) encodes it.
func (cd *coder) lineSample(cur, prev [][]int, ri *int, qs []int) error {
	w := len(cur[0]) - 2
	nc := len(cur)
	for c := range nc {
		prev[c][w+1] = prev[c][w]
		cur[c][0] = prev[c][1]
	}
	qt := cd.qtab
	mv := cd.maxVal
	for x := 1; x <= w; {
		allZero := true
		for c := range nc {
			cc, pc := cur[c], prev[c]
			ra, rb, rc, rd := cc[x-1], pc[x], pc[x-1], pc[x+1]
			q := 81*int(qt[rd-rb+mv]) + 9*int(qt[rb-rc+mv]) + int(qt[rc-ra+mv])
			qs[c] = q
			if q != 0 {
				allZero = false
			}
		}
		if !allZero {
			for c := range nc {
				cc, pc := cur[c], prev[c]
				q, neg := qs[c], false
				if q < 0 {
					q, neg = -q, true
				}
				v, err := cd.regular(q, neg, cc[x-1], pc[x], pc[x-1])
				if err != nil {
					return err
				}
				cc[x] = v
			}
			x++
			continue
		}
		n, atEnd, err := cd.runLength(ri, w-x+1)
		if err != nil {
			return err
		}
		for c := range nc {
			ra := cur[c][x-1]
			for i := range n {
				cur[c][x+i] = ra
			}
		}
		x += n
		if atEnd {
			break
		}
		for c := range nc {
			ra, rb := cur[c][x-1], prev[c][x]
			v, err := cd.interruption(*ri, 0, rb, ra > rb)
			if err != nil {
				return err
			}
			cur[c][x] = v
		}
		x++
		if *ri > 0 {
			*ri--
		}
	}
	if cd.br.overrun() {
		return corruptf("truncated scan data")
	}
	return nil
}

// segmentEnd returns the offset of the marker that ends the entropy-coded
// segment starting at from: a 0xFF followed by a byte with its MSB set
// (T.87 A.1: any other 0xFF is followed by a stuffed zero bit).
func segmentEnd(data []byte, from int) int {
	for i := from; i+1 < len(data); i++ {
		if data[i] == 0xFF && data[i+1] >= 0x80 {
			return i
		}
	}
	return len(data)
}

// scan decodes one scan (SOS header in seg, entropy-coded data following).
func (d *decoder) scan(seg []byte) error {
	if !d.frameSeen {
		return corruptf("SOS before SOF55")
	}
	if len(seg) < 1 {
		return corruptf("empty SOS")
	}
	ns := int(seg[0])
	if ns < 1 || len(seg) != 1+2*ns+3 {
		return corruptf("SOS with %d components and length %d", ns, len(seg))
	}
	idx := make([]int, ns)
	for i := range ns {
		cs, tm := seg[1+2*i], seg[2+2*i]
		if tm != 0 {
			return unsupportedf("mapping table %d", tm)
		}
		found := -1
		for fi, c := range d.comps {
			if c.id == cs {
				found = fi
			}
		}
		if found < 0 {
			return corruptf("scan component %d not in frame", cs)
		}
		if d.decoded[found] {
			return corruptf("component %d coded twice", cs)
		}
		for _, prev := range idx[:i] {
			if prev == found {
				return corruptf("component %d twice in scan", cs)
			}
		}
		idx[i] = found
	}
	tail := seg[1+2*ns:]
	near, ilv, pt := int(tail[0]), int(tail[1]), int(tail[2])
	if ilv > 2 {
		return corruptf("interleave mode %d", ilv)
	}
	if ilv == 0 && ns != 1 {
		return corruptf("non-interleaved scan with %d components", ns)
	}
	if pt != 0 {
		return unsupportedf("point transform %d", pt)
	}
	p, err := scanParams(d.img.Precision, near, d.preset)
	if err != nil {
		return err
	}
	cd := newCoder(p)

	w, h, nf := d.img.Width, d.img.Height, d.img.Components
	cur := make([][]int, ns)
	prev := make([][]int, ns)
	for i := range ns {
		cur[i] = make([]int, w+2)
		prev[i] = make([]int, w+2)
	}
	ri := make([]int, ns)
	qs := make([]int, ns)

	end := segmentEnd(d.data, d.pos)
	cd.br = newBitReader(d.data[d.pos:end])
	d.pos = end
	restarts := 0
	for y := range h {
		if d.restart > 0 && y > 0 && y%d.restart == 0 {
			// A restart marker ends the segment: contexts and run indices
			// start afresh, prediction keeps using the previous line.
			m, err := d.nextMarker()
			if err != nil {
				return err
			}
			if m < markerRST0 || m > markerRST7 || int(m-markerRST0) != restarts%8 {
				return corruptf("expected RST%d, found marker 0x%02X", restarts%8, m)
			}
			restarts++
			end := segmentEnd(d.data, d.pos)
			cd.br = newBitReader(d.data[d.pos:end])
			d.pos = end
			cd.resetContexts()
			clear(ri)
		}
		if ilv == 2 && ns > 1 {
			if err := cd.lineSample(cur, prev, &ri[0], qs); err != nil {
				return err
			}
		} else {
			for i := range ns {
				if err := cd.line(cur[i], prev[i], &ri[i]); err != nil {
					return err
				}
			}
		}
		for i := range ns {
			fc := idx[i]
			row := d.img.Pix[y*w*nf:]
			for x, v := range cur[i][1 : w+1] {
				row[x*nf+fc] = uint16(v)
			}
			cur[i], prev[i] = prev[i], cur[i]
		}
	}
	for _, fc := range idx {
		d.decoded[fc] = true
	}
	d.scansCount++
	return nil
}
