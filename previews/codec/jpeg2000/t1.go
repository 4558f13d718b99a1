package jpeg2000

// Tier-1: the embedded block coder of T.800 Annex D.

// Band orientations.
const (
	bandLL = iota
	bandHL
	bandLH
	bandHH
)

// Context labels (Tables D.1–D.4): 0–8 significance, 9–13 sign, 14–16
// magnitude refinement, 17 run length, 18 uniform.
const (
	ctxSign0   = 9
	ctxMag0    = 14
	ctxRL      = 17
	ctxUniform = 18
	numCtx     = 19
)

// Sample state flags.
const (
	fSig     = 1 << iota // significant
	fVisit               // coded in this bit-plane's significance pass
	fRefined             // refined at least once
	fNeg                 // negative
)

// zcTable maps orientation and neighbour counts (h 0–2, v 0–2, d 0–4) to a
// significance context (Table D.1).
var zcTable = buildZC()

// Each sample's flags carry, from bit nbShift up, which of its eight
// neighbours are significant, so contexts need no neighbourhood scan.
const (
	nbW = 1 << iota
	nbE
	nbN
	nbS
	nbNW
	nbNE
	nbSW
	nbSE
	nbShift  = 4
	nbBottom = nbS | nbSW | nbSE
)

// zcMask maps orientation and neighbour mask to the significance context.
var zcMask = buildZCMask()

func buildZCMask() (t [4][256]uint8) {
	for o := range 4 {
		for m := range 256 {
			h := m&nbW/nbW + m&nbE/nbE
			v := m&nbN/nbN + m&nbS/nbS
			d := m&nbNW/nbNW + m&nbNE/nbNE + m&nbSW/nbSW + m&nbSE/nbSE
			t[o][m] = zcTable[o][h][v][d]
		}
	}
	return t
}

func buildZC() (t [4][3][3][5]uint8) {
	ll := func(h, v, d int) uint8 {
		switch {
		case h == 2:
			return 8
		case h == 1 && v >= 1:
			return 7
		case h == 1 && d >= 1:
			return 6
		case h == 1:
			return 5
		case v == 2:
			return 4
		case v == 1:
			return 3
		case d >= 2:
			return 2
		case d == 1:
			return 1
		}
		return 0
	}
	hh := func(hv, d int) uint8 {
		switch {
		case d >= 3:
			return 8
		case d == 2 && hv >= 1:
			return 7
		case d == 2:
			return 6
		case d == 1 && hv >= 2:
			return 5
		case d == 1 && hv == 1:
			return 4
		case d == 1:
			return 3
		case hv >= 2:
			return 2
		case hv == 1:
			return 1
		}
		return 0
	}
	for h := range 3 {
		for v := range 3 {
			for d := range 5 {
				t[bandLL][h][v][d] = ll(h, v, d)
				t[bandLH][h][v][d] = ll(h, v, d)
				t[bandHL][h][v][d] = ll(v, h, d)
				t[bandHH][h][v][d] = hh(h+v, d)
			}
		}
	}
	return t
}

// segment is one codeword segment of a code-block: the bytes and coding
// passes gathered over the layers.
type segment struct {
	data      []byte
	passes    int
	maxPasses int
}

// t1 decodes code-blocks; its buffers are reused between blocks.
type t1 struct {
	w, h   int
	data   []int32  // magnitudes ×2 (one fractional bit for mid-point reconstruction)
	flags  []uint16 // (w+2)×(h+2), one-sample border
	ctx    [numCtx]mqContext
	mq     mqDecoder
	raw    rawDecoder
	orient int
	causal bool
}

func (t *t1) resetContexts() {
	for i := range t.ctx {
		t.ctx[i] = mqContext{}
	}
	t.ctx[ctxUniform] = mqContext{index: 46}
	t.ctx[ctxRL] = mqContext{index: 3}
	t.ctx[0] = mqContext{index: 4}
}

func (t *t1) setup(w, h int) {
	t.w, t.h = w, h
	n := w * h
	if cap(t.data) < n {
		t.data = make([]int32, n)
	}
	t.data = t.data[:n]
	clear(t.data)
	fn := (w + 2) * (h + 2)
	if cap(t.flags) < fn {
		t.flags = make([]uint16, fn)
	}
	t.flags = t.flags[:fn]
	clear(t.flags)
}

// nbMask returns the significant-neighbour mask of the sample whose flag
// index is i at row y; in vertically causal mode the stripe below does not
// count (D.7).
func (t *t1) nbMask(i, y int) int {
	m := int(t.flags[i]>>nbShift) & 0xFF
	if t.causal && y%4 == 3 {
		m &^= nbBottom
	}
	return m
}

func (t *t1) zc(i, y int) int {
	return int(zcMask[t.orient][t.nbMask(i, y)])
}

// setSig marks sample i significant and tells its neighbours.
func (t *t1) setSig(i int, neg bool) {
	s := t.w + 2
	f := t.flags
	f[i] |= fSig
	if neg {
		f[i] |= fNeg
	}
	f[i-1] |= nbE << nbShift
	f[i+1] |= nbW << nbShift
	f[i-s] |= nbS << nbShift
	f[i+s] |= nbN << nbShift
	f[i-s-1] |= nbSE << nbShift
	f[i-s+1] |= nbSW << nbShift
	f[i+s-1] |= nbNE << nbShift
	f[i+s+1] |= nbNW << nbShift
}

// contribution is +1, -1 or 0 for a significant positive, significant
// negative or insignificant neighbour.
func contribution(f uint16) int {
	if f&fSig == 0 {
		return 0
	}
	if f&fNeg != 0 {
		return -1
	}
	return 1
}

// signContext returns the sign context and XOR bit (Table D.3).
func (t *t1) signContext(i, y int) (int, int) {
	s := t.w + 2
	f := t.flags
	hc := contribution(f[i-1]) + contribution(f[i+1])
	vc := contribution(f[i-s])
	if !t.causal || y%4 != 3 {
		vc += contribution(f[i+s])
	}
	hc = max(-1, min(1, hc))
	vc = max(-1, min(1, vc))
	switch hc {
	case 1:
		return ctxSign0 + 3 + vc, 0
	case -1:
		return ctxSign0 + 3 - vc, 1
	}
	switch vc {
	case 1:
		return ctxSign0 + 1, 0
	case -1:
		return ctxSign0 + 1, 1
	}
	return ctxSign0, 0
}

func (t *t1) decodeSign(i, y int, raw bool) {
	var neg int
	if raw {
		neg = t.raw.decode()
	} else {
		cx, xor := t.signContext(i, y)
		neg = t.mq.decode(&t.ctx[cx]) ^ xor
	}
	t.setSig(i, neg != 0)
}

// sigPass is the significance propagation pass of bit-plane p (D.3.1).
func (t *t1) sigPass(p int, raw bool) {
	s := t.w + 2
	half := int32(3) << uint(p)
	for y0 := 0; y0 < t.h; y0 += 4 {
		y1 := min(y0+4, t.h)
		for x := range t.w {
			for y := y0; y < y1; y++ {
				i := (y+1)*s + x + 1
				if t.flags[i]&fSig != 0 || t.flags[i]>>nbShift == 0 {
					continue
				}
				cx := t.zc(i, y)
				if cx == 0 {
					continue
				}
				var bit int
				if raw {
					bit = t.raw.decode()
				} else {
					bit = t.mq.decode(&t.ctx[cx])
				}
				if bit == 1 {
					t.decodeSign(i, y, raw)
					t.data[y*t.w+x] = half
				}
				t.flags[i] |= fVisit
			}
		}
	}
}

// refPass is the magnitude refinement pass of bit-plane p (D.3.3).
func (t *t1) refPass(p int, raw bool) {
	s := t.w + 2
	step := int32(1) << uint(p)
	for y0 := 0; y0 < t.h; y0 += 4 {
		y1 := min(y0+4, t.h)
		for x := range t.w {
			for y := y0; y < y1; y++ {
				i := (y+1)*s + x + 1
				f := t.flags[i]
				if f&(fSig|fVisit) != fSig {
					continue
				}
				var bit int
				if raw {
					bit = t.raw.decode()
				} else {
					cx := ctxMag0 + 2
					if f&fRefined == 0 {
						cx = ctxMag0
						if t.nbMask(i, y) != 0 {
							cx = ctxMag0 + 1
						}
					}
					bit = t.mq.decode(&t.ctx[cx])
				}
				// Replace the previous mid-point by this bit and a new
				// mid-point half a step below.
				if bit == 1 {
					t.data[y*t.w+x] += step
				} else {
					t.data[y*t.w+x] -= step
				}
				t.flags[i] |= fRefined
			}
		}
	}
}

// cleanPass is the cleanup pass of bit-plane p with its run-length mode
// (D.3.4).
func (t *t1) cleanPass(p int) {
	s := t.w + 2
	half := int32(3) << uint(p)
	for y0 := 0; y0 < t.h; y0 += 4 {
		y1 := min(y0+4, t.h)
		for x := range t.w {
			y := y0
			if y1-y0 == 4 {
				run := true
				for k := y0; k < y1; k++ {
					i := (k+1)*s + x + 1
					if t.flags[i]&(fSig|fVisit) != 0 || t.zc(i, k) != 0 {
						run = false
						break
					}
				}
				if run {
					if t.mq.decode(&t.ctx[ctxRL]) == 0 {
						continue
					}
					r := t.mq.decode(&t.ctx[ctxUniform]) << 1
					r |= t.mq.decode(&t.ctx[ctxUniform])
					y = y0 + r
					i := (y+1)*s + x + 1
					t.decodeSign(i, y, false)
					t.data[y*t.w+x] = half
					y++
				}
			}
			for ; y < y1; y++ {
				i := (y+1)*s + x + 1
				if t.flags[i]&(fSig|fVisit) != 0 {
					continue
				}
				if t.mq.decode(&t.ctx[t.zc(i, y)]) == 1 {
					t.decodeSign(i, y, false)
					t.data[y*t.w+x] = half
				}
			}
		}
	}
	for i := range t.flags {
		t.flags[i] &^= fVisit
	}
}

// decode runs the coding passes of one code-block of the given orientation
// whose most significant bit-plane is numbps-1. On return t.data holds the
// magnitudes ×2 and t.flags the signs.
func (t *t1) decode(segs []segment, numbps, orient int, style byte) error {
	t.orient = orient
	t.causal = style&cbCausal != 0
	t.resetContexts()
	total := 0
	for _, sg := range segs {
		total += sg.passes
	}
	if total == 0 {
		return nil
	}
	if numbps <= 0 || total > 3*numbps-2 {
		return corruptf("%d coding passes for %d bit-planes", total, numbps)
	}
	pass := 0
	for _, sg := range segs {
		raw := style&cbBypass != 0 && pass >= 10 && pass%3 != 0
		if raw {
			t.raw.init(sg.data)
		} else {
			t.mq.init(sg.data)
		}
		for range sg.passes {
			// Pass 0 is the cleanup of the top plane; then SPP, MRP, CUP.
			p := numbps - 1 - (pass+2)/3
			switch pass % 3 {
			case 0:
				t.cleanPass(p)
				if style&cbSegSymbol != 0 {
					for range 4 {
						t.mq.decode(&t.ctx[ctxUniform])
					}
				}
			case 1:
				t.sigPass(p, raw)
			case 2:
				t.refPass(p, raw)
			}
			if style&cbReset != 0 {
				t.resetContexts()
			}
			pass++
		}
	}
	return nil
}
