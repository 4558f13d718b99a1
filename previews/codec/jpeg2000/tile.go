package jpeg2000

import (
	"cmp"
	"math"
	"slices"
)

// codeblock is one code-block of a precinct band.
type codeblock struct {
	x0, y0, x1, y1 int // band coordinates
	included       bool
	lblock         int
	zbp            int
	passes         int
	segs           []segment
}

// precBand is the part of a band inside one precinct.
type precBand struct {
	band      *band
	blocks    []*codeblock
	incl, zbp *tagTree
}

type band struct {
	orient         int
	x0, y0, x1, y1 int // band coordinates
	offX, offY     int // position in the tile-component buffer
	numbps         int // Mb: magnitude bit-planes (E-2)
	step           float32
	style          byte
}

type resolution struct {
	x0, y0, x1, y1 int
	ppx, ppy       int
	npx, npy       int
	bands          []*band
	precincts      [][]*precBand // [precinct][band]
}

type tileComp struct {
	x0, y0, x1, y1 int
	cs             codingStyle
	res            []*resolution
	ints           []int32
	floats         []float32
}

func ceilDiv(a, b int) int {
	if a >= 0 {
		return (a + b - 1) / b
	}
	return -((-a) / b)
}

func floorDiv(a, b int) int {
	if a >= 0 {
		return a / b
	}
	return -((-a + b - 1) / b)
}

func (h *header) decode() (*Image, error) {
	c0 := h.comps[0]
	for i, c := range h.comps {
		if c.dx != 1 || c.dy != 1 {
			return nil, unsupportedf("component %d subsampled %d×%d", i, c.dx, c.dy)
		}
		if c.prec != c0.prec || c.signed != c0.signed {
			return nil, unsupportedf("components of unequal precision or signedness")
		}
	}
	if c0.prec > 16 {
		return nil, unsupportedf("precision %d", c0.prec)
	}
	w, ht := h.x1-h.x0, h.y1-h.y0
	img := &Image{Width: w, Height: ht, Components: len(h.comps), Precision: c0.prec, Signed: c0.signed}
	img.Pix = make([]uint16, w*ht*len(h.comps))
	var dec t1
	for idx, t := range h.tiles {
		if t == nil {
			continue
		}
		if err := h.decodeTile(idx, t, img, &dec); err != nil {
			return nil, err
		}
	}
	return img, nil
}

// bandGain is log2 of the nominal gain of a band (E.1.1.1).
func bandGain(orient int) int {
	switch orient {
	case bandHL, bandLH:
		return 1
	case bandHH:
		return 2
	}
	return 0
}

// buildTileComp computes the resolutions, bands, precincts and code-blocks
// of one tile-component (B.5–B.7).
func buildTileComp(tx0, ty0, tx1, ty1 int, cs codingStyle, q *quantStyle, prec int) (*tileComp, error) {
	tc := &tileComp{x0: tx0, y0: ty0, x1: tx1, y1: ty1, cs: cs}
	nl := cs.levels
	for r := 0; r <= nl; r++ {
		scale := 1 << uint(nl-r)
		res := &resolution{
			x0: ceilDiv(tx0, scale), y0: ceilDiv(ty0, scale),
			x1: ceilDiv(tx1, scale), y1: ceilDiv(ty1, scale),
		}
		res.ppx, res.ppy = int(cs.precincts[r]&0x0F), int(cs.precincts[r]>>4)
		if res.x1 > res.x0 {
			res.npx = ceilDiv(res.x1, 1<<uint(res.ppx)) - floorDiv(res.x0, 1<<uint(res.ppx))
		}
		if res.y1 > res.y0 {
			res.npy = ceilDiv(res.y1, 1<<uint(res.ppy)) - floorDiv(res.y0, 1<<uint(res.ppy))
		}
		// Bands and their place in the tile-component buffer: LL top left,
		// HL right of it, LH below it, HH diagonal.
		var orients []int
		nb := nl - r + 1
		if r == 0 {
			orients = []int{bandLL}
			nb = nl
		} else {
			orients = []int{bandHL, bandLH, bandHH}
		}
		var lw, lh int
		if r > 0 {
			prev := tc.res[r-1]
			lw, lh = prev.x1-prev.x0, prev.y1-prev.y0
		}
		for _, o := range orients {
			xob, yob := 0, 0
			if o == bandHL || o == bandHH {
				xob = 1
			}
			if o == bandLH || o == bandHH {
				yob = 1
			}
			b := &band{orient: o, style: cs.style}
			if r == 0 {
				b.x0, b.y0, b.x1, b.y1 = res.x0, res.y0, res.x1, res.y1
			} else {
				s := 1 << uint(nb)
				hx, hy := xob<<uint(nb-1), yob<<uint(nb-1)
				b.x0, b.y0 = ceilDiv(tx0-hx, s), ceilDiv(ty0-hy, s)
				b.x1, b.y1 = ceilDiv(tx1-hx, s), ceilDiv(ty1-hy, s)
			}
			b.offX, b.offY = xob*lw, yob*lh
			// Quantisation: exponent and mantissa of this band (E.1).
			bi := 0
			if r > 0 {
				bi = 3*(r-1) + 1 + o - 1
			}
			var eps, mu int
			switch q.style {
			case 1:
				eps, mu = q.exp[0]-nl+nb, q.mant[0]
				if r == 0 {
					eps = q.exp[0]
				}
			default:
				if bi >= len(q.exp) {
					return nil, corruptf("no quantisation step for band %d", bi)
				}
				eps, mu = q.exp[bi], q.mant[bi]
			}
			b.numbps = q.guard + eps - 1
			if b.numbps > 30 {
				return nil, unsupportedf("%d magnitude bit-planes", b.numbps)
			}
			if !cs.reversible {
				rb := prec + bandGain(o)
				b.step = float32(math.Ldexp(1+float64(mu)/2048, rb-eps))
			}
			res.bands = append(res.bands, b)
		}
		tc.res = append(tc.res, res)
	}
	return tc, nil
}

// buildPrecincts partitions the bands of res into precincts and code-blocks.
func buildPrecincts(res *resolution, r int, cs codingStyle) {
	res.precincts = make([][]*precBand, res.npx*res.npy)
	cbw, cbh := cs.cbw, cs.cbh
	ppx, ppy := res.ppx, res.ppy
	if r > 0 {
		ppx, ppy = ppx-1, ppy-1
	}
	cbw, cbh = min(cbw, ppx), min(cbh, ppy)
	px0 := floorDiv(res.x0, 1<<uint(res.ppx))
	py0 := floorDiv(res.y0, 1<<uint(res.ppy))
	for py := range res.npy {
		for px := range res.npx {
			pbs := make([]*precBand, len(res.bands))
			for bi, b := range res.bands {
				// Precinct area in band coordinates, clipped to the band.
				x0 := max((px0+px)<<uint(ppx), b.x0)
				y0 := max((py0+py)<<uint(ppy), b.y0)
				x1 := min((px0+px+1)<<uint(ppx), b.x1)
				y1 := min((py0+py+1)<<uint(ppy), b.y1)
				pb := &precBand{band: b}
				if x1 > x0 && y1 > y0 {
					cx0, cy0 := floorDiv(x0, 1<<uint(cbw)), floorDiv(y0, 1<<uint(cbh))
					cx1, cy1 := ceilDiv(x1, 1<<uint(cbw)), ceilDiv(y1, 1<<uint(cbh))
					for cy := cy0; cy < cy1; cy++ {
						for cx := cx0; cx < cx1; cx++ {
							pb.blocks = append(pb.blocks, &codeblock{
								x0: max(cx<<uint(cbw), x0), y0: max(cy<<uint(cbh), y0),
								x1: min((cx+1)<<uint(cbw), x1), y1: min((cy+1)<<uint(cbh), y1),
								lblock: 3,
							})
						}
					}
					pb.incl = newTagTree(cx1-cx0, cy1-cy0)
					pb.zbp = newTagTree(cx1-cx0, cy1-cy0)
				}
				pbs[bi] = pb
			}
			res.precincts[py*res.npx+px] = pbs
		}
	}
}

type packet struct {
	l, r, c, p int
	key        [5]int
}

func (h *header) decodeTile(idx int, t *tile, img *Image, dec *t1) error {
	g, css, qs := h.tileStyles(t)
	p, q := idx%h.ntx, idx/h.ntx
	tx0 := max(h.tx0+p*h.tw, h.x0)
	ty0 := max(h.ty0+q*h.th, h.y0)
	tx1 := min(h.tx0+(p+1)*h.tw, h.x1)
	ty1 := min(h.ty0+(q+1)*h.th, h.y1)
	nc := len(h.comps)
	tcs := make([]*tileComp, nc)
	var packets []packet
	npre := 0
	for c := range nc {
		tc, err := buildTileComp(tx0, ty0, tx1, ty1, css[c], qs[c], h.comps[c].prec)
		if err != nil {
			return err
		}
		tcs[c] = tc
		for _, res := range tc.res {
			npre += res.npx * res.npy
		}
	}
	// Every packet takes at least one byte (PPM/PPT are not supported), so
	// a complete tile cannot hold more packets than bytes.
	if npre*g.layers > maxPackets || npre*g.layers > len(t.data) {
		return corruptf("%d precincts × %d layers cannot fit in %d bytes of tile %d", npre, g.layers, len(t.data), idx)
	}
	for c, tc := range tcs {
		nl := tc.cs.levels
		for r, res := range tc.res {
			buildPrecincts(res, r, tc.cs)
			px0 := floorDiv(res.x0, 1<<uint(res.ppx))
			py0 := floorDiv(res.y0, 1<<uint(res.ppy))
			for pi := range res.npx * res.npy {
				// Reference-grid position of the precinct (B.12.1.3).
				xr := max(tx0, ((px0+pi%res.npx)<<uint(res.ppx))<<uint(nl-r))
				yr := max(ty0, ((py0+pi/res.npx)<<uint(res.ppy))<<uint(nl-r))
				for l := range g.layers {
					pk := packet{l: l, r: r, c: c, p: pi}
					switch g.prog {
					case progLRCP:
						pk.key = [5]int{l, r, c, pi}
					case progRLCP:
						pk.key = [5]int{r, l, c, pi}
					case progRPCL:
						pk.key = [5]int{r, yr, xr, c, l}
					case progPCRL:
						pk.key = [5]int{yr, xr, c, r, l}
					case progCPRL:
						pk.key = [5]int{c, yr, xr, r, l}
					}
					packets = append(packets, pk)
				}
			}
		}
	}
	slices.SortStableFunc(packets, func(a, b packet) int {
		for i := range a.key {
			if d := cmp.Compare(a.key[i], b.key[i]); d != 0 {
				return d
			}
		}
		return 0
	})
	pos := 0
	for _, pk := range packets {
		res := tcs[pk.c].res[pk.r]
		next, ok, err := readPacket(t.data, pos, pk.l, res.precincts[pk.p], func(pb *precBand) byte { return pb.band.style }, g.sop, g.eph)
		if err != nil {
			return err
		}
		pos = next
		if !ok {
			break // truncated: decode what arrived
		}
	}
	for _, tc := range tcs {
		if err := tc.reconstruct(dec); err != nil {
			return err
		}
	}
	return h.store(tcs, g.mct, img, tx0, ty0, tx1, ty1)
}

// reconstruct runs tier-1 on every code-block, dequantises into the
// tile-component buffer and applies the inverse DWT.
func (tc *tileComp) reconstruct(dec *t1) error {
	w, h := tc.x1-tc.x0, tc.y1-tc.y0
	if tc.cs.reversible {
		tc.ints = make([]int32, w*h)
	} else {
		tc.floats = make([]float32, w*h)
	}
	for _, res := range tc.res {
		for _, pbs := range res.precincts {
			for _, pb := range pbs {
				b := pb.band
				for _, cb := range pb.blocks {
					if len(cb.segs) == 0 {
						continue
					}
					cw, ch := cb.x1-cb.x0, cb.y1-cb.y0
					dec.setup(cw, ch)
					if err := dec.decode(cb.segs, b.numbps-cb.zbp, b.orient, b.style); err != nil {
						return err
					}
					ox, oy := b.offX+cb.x0-b.x0, b.offY+cb.y0-b.y0
					for y := range ch {
						row := (oy+y)*w + ox
						for x := range cw {
							m := dec.data[y*cw+x]
							if m == 0 {
								continue
							}
							neg := dec.flags[(y+1)*(cw+2)+x+1]&fNeg != 0
							if tc.ints != nil {
								v := m >> 1
								if neg {
									v = -v
								}
								tc.ints[row+x] = v
							} else {
								v := float32(m) * 0.5 * b.step
								if neg {
									v = -v
								}
								tc.floats[row+x] = v
							}
						}
					}
				}
			}
		}
	}
	tc.idwt()
	return nil
}

// idwt applies the inverse 2D transform level by level (F.3.2: rows, then
// columns).
func (tc *tileComp) idwt() {
	stride := tc.x1 - tc.x0
	for r := 1; r < len(tc.res); r++ {
		res, low := tc.res[r], tc.res[r-1]
		rw, rh := res.x1-res.x0, res.y1-res.y0
		lw, lh := low.x1-low.x0, low.y1-low.y0
		if rw == 0 || rh == 0 {
			continue
		}
		if tc.ints != nil {
			synth2D(tc.ints, stride, rw, rh, lw, lh, res.x0, res.y0, synth53)
		} else {
			synth2D(tc.floats, stride, rw, rh, lw, lh, res.x0, res.y0, synth97)
		}
	}
}

// synth2D applies one level of the inverse 2D transform to the rw×rh
// region at the start of a (rows stride samples apart), whose low band is
// lw×lh and whose origin is (x0, y0): rows, then columns (F.3.2), each
// with the 1D synthesis synth, 5/3 reversible or 9/7 irreversible. It is
// generic so the two wavelets share one traversal.
func synth2D[T int32 | float32](a []T, stride, rw, rh, lw, lh, x0, y0 int, synth func(x []T, i0 int, ext []T)) {
	n := max(rw, rh)
	line := make([]T, n)
	tmp := make([]T, n)
	ext := make([]T, n+2*dwtPad)
	for y := range rh {
		row := a[y*stride : y*stride+rw]
		copy(tmp, row)
		interleave(line[:rw], tmp[:lw], tmp[lw:rw], x0)
		synth(line[:rw], x0, ext)
		copy(row, line[:rw])
	}
	for x := range rw {
		for y := range rh {
			tmp[y] = a[y*stride+x]
		}
		interleave(line[:rh], tmp[:lh], tmp[lh:rh], y0)
		synth(line[:rh], y0, ext)
		for y := range rh {
			a[y*stride+x] = line[y]
		}
	}
}

// store applies the inverse component transform (G.2, G.3) and the DC
// level shift (G.1.2), clamps, and writes the tile into img.
func (h *header) store(tcs []*tileComp, mct bool, img *Image, tx0, ty0, tx1, ty1 int) error {
	nc := len(tcs)
	prec := h.comps[0].prec
	lo, hi := 0, 1<<uint(prec)-1
	shift := 1 << uint(prec-1)
	if h.comps[0].signed {
		lo, hi, shift = -(1 << uint(prec-1)), 1<<uint(prec-1)-1, 0
	}
	if mct {
		if nc < 3 {
			return corruptf("multiple component transform with %d components", nc)
		}
		if tcs[0].cs.reversible != tcs[1].cs.reversible || tcs[0].cs.reversible != tcs[2].cs.reversible {
			return unsupportedf("component transform over mixed wavelets")
		}
	}
	w := tx1 - tx0
	vals := make([]int, nc)
	for y := range ty1 - ty0 {
		for x := range w {
			i := y*w + x
			for c, tc := range tcs {
				if tc.ints != nil {
					vals[c] = int(tc.ints[i])
				} else if !mct || c >= 3 {
					vals[c] = int(math.RoundToEven(float64(tc.floats[i])))
				}
			}
			if mct {
				if tcs[0].ints != nil {
					// Inverse RCT.
					y0, u, v := vals[0], vals[1], vals[2]
					g := y0 - ((u + v) >> 2)
					vals[0], vals[1], vals[2] = v+g, g, u+g
				} else {
					// Inverse ICT.
					y0, u, v := float64(tcs[0].floats[i]), float64(tcs[1].floats[i]), float64(tcs[2].floats[i])
					vals[0] = int(math.RoundToEven(y0 + 1.402*v))
					vals[1] = int(math.RoundToEven(y0 - 0.34413*u - 0.71414*v))
					vals[2] = int(math.RoundToEven(y0 + 1.772*u))
				}
			}
			out := img.Pix[((ty0+y-h.y0)*img.Width+(tx0+x-h.x0))*nc:]
			for c := range nc {
				v := max(lo, min(hi, vals[c]+shift))
				out[c] = uint16(v)
			}
		}
	}
	return nil
}
