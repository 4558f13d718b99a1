package jpeg

// progressiveScan decodes one scan of a progressive DCT frame (T.81 Annex G,
// Huffman coding): a DC scan (Ss=0) first or refining, or an AC band scan
// (Ss..Se of one component) first or refining. Coefficients accumulate in
// the components' coefficient buffers; finishProgressive transforms them.
func (d *decoder) progressiveScan(br *bitReader, scs []scanComp, ss, se, ah, al int) error {
	if err := d.checkQuant(scs); err != nil {
		return err
	}
	dcScan := ss == 0
	switch {
	case dcScan && se != 0:
		return corrupt("progressive DC scan with Se=%d", se)
	case !dcScan && (se < ss || se > 63 || len(scs) != 1):
		return corrupt("progressive AC scan Ss=%d Se=%d with %d components", ss, se, len(scs))
	case ah > 13 || al > 13:
		return corrupt("successive approximation Ah=%d Al=%d", ah, al)
	}
	for _, sc := range scs {
		c := sc.c
		if c.coef == nil {
			// Latch the quantisation table the component starts with, as
			// libjpeg does; later DQT segments do not apply to it.
			c.coef = make([]int16, 64*d.mcusX*c.h*d.mcusY*c.v)
			c.q = d.quant[c.tq]
		}
	}
	single := len(scs) == 1
	mcusX, mcusY := d.mcusX, d.mcusY
	if single {
		mcusX, mcusY = scs[0].c.bw, scs[0].c.bh
	}
	d.eobrun = 0
	mcu := 0
	for my := 0; my < mcusY; my++ {
		for mx := 0; mx < mcusX; mx++ {
			if d.ri > 0 && mcu > 0 && mcu%d.ri == 0 {
				if err := br.restart(); err != nil {
					return err
				}
				d.eobrun = 0
				for i := range scs {
					scs[i].pred = 0
				}
			}
			mcu++
			for i := range scs {
				sc := &scs[i]
				c := sc.c
				hh, vv := c.h, c.v
				if single {
					hh, vv = 1, 1
				}
				blocksPerLine := d.mcusX * c.h
				for v := 0; v < vv; v++ {
					for h := 0; h < hh; h++ {
						bx, by := mx*hh+h, my*vv+v
						blk := c.coef[64*(by*blocksPerLine+bx):][:64]
						var err error
						switch {
						case dcScan && ah == 0:
							err = dcFirst(br, sc, blk, al)
						case dcScan:
							if br.bits(1) != 0 {
								blk[0] |= int16(1) << al
							}
						case ah == 0:
							err = d.acFirst(br, sc.ac, blk, ss, se, al)
						default:
							err = d.acRefine(br, sc.ac, blk, ss, se, al)
						}
						if err != nil {
							return err
						}
					}
				}
			}
			if br.overrun() {
				return corrupt("progressive scan data ends early")
			}
		}
	}
	return nil
}

// dcFirst decodes the first DC scan of a block (G.1.2.1).
func dcFirst(br *bitReader, sc *scanComp, blk []int16, al int) error {
	s, err := br.decode(sc.dc)
	if err != nil {
		return err
	}
	if s > 15 {
		return corrupt("DC difference category %d", s)
	}
	sc.pred += br.receiveExtend(int(s))
	blk[0] = int16(sc.pred << al)
	return nil
}

// acFirst decodes the first scan of an AC band of a block (G.1.2.2).
func (d *decoder) acFirst(br *bitReader, t *huffTable, blk []int16, ss, se, al int) error {
	if d.eobrun > 0 {
		d.eobrun--
		return nil
	}
	for k := ss; k <= se; k++ {
		rs, err := br.decode(t)
		if err != nil {
			return err
		}
		r, s := int(rs>>4), int(rs&15)
		if s == 0 {
			if r < 15 {
				// EOBn: this block and 2^r-1+extra more end here.
				d.eobrun = 1<<r - 1
				if r > 0 {
					d.eobrun += int(br.bits(r))
				}
				return nil
			}
			k += 15 // ZRL
			continue
		}
		k += r
		if k > se {
			return corrupt("AC coefficient index %d beyond band end %d", k, se)
		}
		blk[zigzag[k]] = int16(br.receiveExtend(s) << al)
	}
	return nil
}

// acRefine decodes a refinement scan of an AC band of a block (G.1.2.3):
// one correction bit for each coefficient already non-zero, and newly
// non-zero coefficients of magnitude 1 at bit position al.
func (d *decoder) acRefine(br *bitReader, t *huffTable, blk []int16, ss, se, al int) error {
	p1 := int16(1) << al
	m1 := int16(-1) << al
	refine := func(z int) {
		if br.bits(1) != 0 && blk[z]&p1 == 0 {
			if blk[z] >= 0 {
				blk[z] += p1
			} else {
				blk[z] += m1
			}
		}
	}
	k := ss
	if d.eobrun == 0 {
		for k <= se {
			rs, err := br.decode(t)
			if err != nil {
				return err
			}
			r, s := int(rs>>4), int(rs&15)
			var val int16
			switch {
			case s == 1:
				val = m1
				if br.bits(1) != 0 {
					val = p1
				}
			case s != 0:
				return corrupt("refinement coefficient size %d", s)
			case r != 15:
				// EOBn: the rest of this band, and of 2^r-1+extra more
				// blocks, only gets correction bits.
				d.eobrun = 1 << r
				if r > 0 {
					d.eobrun += int(br.bits(r))
				}
			}
			if d.eobrun > 0 {
				break
			}
			// Skip r zero-history coefficients, refining the non-zero
			// ones passed on the way, then place val.
			for ; k <= se; k++ {
				z := zigzag[k]
				if blk[z] != 0 {
					refine(z)
					continue
				}
				if r == 0 {
					if val != 0 {
						blk[z] = val
					}
					k++
					break
				}
				r--
			}
		}
	}
	if d.eobrun > 0 {
		for ; k <= se; k++ {
			if z := zigzag[k]; blk[z] != 0 {
				refine(z)
			}
		}
		d.eobrun--
	}
	return nil
}

// finishProgressive dequantises and inverse-transforms every block of a
// progressive frame into the component planes.
func (d *decoder) finishProgressive() {
	maxv := int32(1)<<d.precision - 1
	var blk [64]int32
	for ci := range d.comps {
		c := &d.comps[ci]
		if c.coef == nil {
			continue
		}
		blocksPerLine := d.mcusX * c.h
		for by := 0; by < d.mcusY*c.v; by++ {
			for bx := 0; bx < blocksPerLine; bx++ {
				src := c.coef[64*(by*blocksPerLine+bx):][:64]
				for i, v := range src {
					blk[i] = int32(v) * c.q[i]
				}
				idct(&blk, c.plane[by*8*c.stride+bx*8:], c.stride, maxv)
			}
		}
	}
}
