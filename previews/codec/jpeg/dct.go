package jpeg

import "math"

// zigzag maps the zig-zag sequence index of a coefficient (T.81 Figure A.6)
// to its natural (row-major) index in the 8x8 block.
var zigzag = [64]int{
	0, 1, 8, 16, 9, 2, 3, 10,
	17, 24, 32, 25, 18, 11, 4, 5,
	12, 19, 26, 33, 40, 48, 41, 34,
	27, 20, 13, 6, 7, 14, 21, 28,
	35, 42, 49, 56, 57, 50, 43, 36,
	29, 22, 15, 23, 30, 37, 44, 51,
	58, 59, 52, 45, 38, 31, 39, 46,
	53, 60, 61, 54, 47, 55, 62, 63,
}

// idctBasis[x*8+u] is C(u)/2 * cos((2x+1)uπ/16), the separable factor of
// the inverse DCT of T.81 A.3.3.
var idctBasis = func() (b [64]float64) {
	for x := 0; x < 8; x++ {
		for u := 0; u < 8; u++ {
			cu := 1.0
			if u == 0 {
				cu = 1 / math.Sqrt2
			}
			b[x*8+u] = cu / 2 * math.Cos(float64(2*x+1)*float64(u)*math.Pi/16)
		}
	}
	return b
}()

// idct transforms a block of dequantised coefficients (natural order) and
// writes level-shifted, clamped samples to dst with the given stride.
// maxv is 2^P-1; the level shift is 2^(P-1).
func idct(blk *[64]int32, dst []uint16, stride int, maxv int32) {
	center := float64(maxv/2 + 1)
	fmax := float64(maxv)
	acZero := true
	for _, c := range blk[1:] {
		if c != 0 {
			acZero = false
			break
		}
	}
	if acZero {
		// Only DC: every sample is DC/8.
		v := math.Round(float64(blk[0])/8) + center
		s := uint16(min(max(v, 0), fmax))
		for y := 0; y < 8; y++ {
			row := dst[y*stride : y*stride+8]
			for x := range row {
				row[x] = s
			}
		}
		return
	}
	// Rows: tmp[v*8+x] = sum over u of F(v,u) * basis(x,u).
	var tmp [64]float64
	for v := 0; v < 8; v++ {
		in := blk[v*8 : v*8+8]
		if in[0] == 0 && in[1] == 0 && in[2] == 0 && in[3] == 0 && in[4] == 0 && in[5] == 0 && in[6] == 0 && in[7] == 0 {
			continue
		}
		var f [8]float64
		for u := range f {
			f[u] = float64(in[u])
		}
		for x := 0; x < 8; x++ {
			b := idctBasis[x*8 : x*8+8]
			tmp[v*8+x] = f[0]*b[0] + f[1]*b[1] + f[2]*b[2] + f[3]*b[3] + f[4]*b[4] + f[5]*b[5] + f[6]*b[6] + f[7]*b[7]
		}
	}
	// Columns: out(y,x) = sum over v of tmp[v][x] * basis(y,v).
	for y := 0; y < 8; y++ {
		b := idctBasis[y*8 : y*8+8]
		row := dst[y*stride : y*stride+8]
		for x := 0; x < 8; x++ {
			s := tmp[x]*b[0] + tmp[8+x]*b[1] + tmp[16+x]*b[2] + tmp[24+x]*b[3] +
				tmp[32+x]*b[4] + tmp[40+x]*b[5] + tmp[48+x]*b[6] + tmp[56+x]*b[7]
			v := math.Round(s) + center
			row[x] = uint16(min(max(v, 0), fmax))
		}
	}
}

// checkQuant makes sure every component of a DCT scan has its table.
func (d *decoder) checkQuant(scs []scanComp) error {
	for _, sc := range scs {
		if !d.quantSet[sc.c.tq] {
			return corrupt("component %d uses undefined quantisation table %d", sc.c.id, sc.c.tq)
		}
	}
	return nil
}

// decodeBlock decodes one sequential-mode data unit (T.81 F.2.2) into blk,
// dequantised, in natural order.
func decodeBlock(br *bitReader, sc *scanComp, q *[64]int32, blk *[64]int32) error {
	*blk = [64]int32{}
	s, err := br.decode(sc.dc)
	if err != nil {
		return err
	}
	if s > 15 {
		return corrupt("DC difference category %d", s)
	}
	sc.pred += br.receiveExtend(int(s))
	blk[0] = sc.pred * q[0]
	for k := 1; k < 64; k++ {
		rs, err := br.decode(sc.ac)
		if err != nil {
			return err
		}
		r, s := int(rs>>4), int(rs&15)
		if s == 0 {
			if r != 15 {
				break // EOB
			}
			k += 15 // ZRL: sixteen zeros
			continue
		}
		k += r
		if k > 63 {
			return corrupt("AC coefficient index beyond 63")
		}
		z := zigzag[k]
		blk[z] = br.receiveExtend(s) * q[z]
	}
	return nil
}

// sequentialScan decodes a baseline or extended sequential DCT scan.
func (d *decoder) sequentialScan(br *bitReader, scs []scanComp) error {
	if err := d.checkQuant(scs); err != nil {
		return err
	}
	maxv := int32(1)<<d.precision - 1
	single := len(scs) == 1
	mcusX, mcusY := d.mcusX, d.mcusY
	if single {
		// A non-interleaved scan covers just the component's blocks.
		mcusX, mcusY = scs[0].c.bw, scs[0].c.bh
	}
	var blk [64]int32
	mcu := 0
	for my := 0; my < mcusY; my++ {
		for mx := 0; mx < mcusX; mx++ {
			if d.ri > 0 && mcu > 0 && mcu%d.ri == 0 {
				if err := br.restart(); err != nil {
					return err
				}
				for i := range scs {
					scs[i].pred = 0
				}
			}
			mcu++
			for i := range scs {
				sc := &scs[i]
				c := sc.c
				q := &d.quant[c.tq]
				hh, vv := c.h, c.v
				if single {
					hh, vv = 1, 1
				}
				for v := 0; v < vv; v++ {
					for h := 0; h < hh; h++ {
						if err := decodeBlock(br, sc, q, &blk); err != nil {
							return err
						}
						bx, by := (mx*hh+h)*8, (my*vv+v)*8
						idct(&blk, c.plane[by*c.stride+bx:], c.stride, maxv)
					}
				}
			}
			if br.overrun() {
				return corrupt("scan data ends early")
			}
		}
	}
	return nil
}
