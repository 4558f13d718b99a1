package jpeg

// predict computes the prediction Px for selection value sv from the
// reconstructed neighbours Ra (left), Rb (above) and Rc (above left),
// T.81 Table H.1. Shifts are arithmetic, as in T.81 and libjpeg.
func predict(sv int, ra, rb, rc int32) int32 {
	switch sv {
	case 1:
		return ra
	case 2:
		return rb
	case 3:
		return rc
	case 4:
		return ra + rb - rc
	case 5:
		return ra + ((rb - rc) >> 1)
	case 6:
		return rb + ((ra - rc) >> 1)
	default:
		return (ra + rb) >> 1
	}
}

// losslessDiff reads one Huffman-coded difference, T.81 H.1.2.2: the
// category SSSS (0..16) then SSSS extra bits; SSSS 16 means 32768 and has
// no extra bits.
func losslessDiff(br *bitReader, t *huffTable) (int32, error) {
	s, err := br.decode(t)
	if err != nil {
		return 0, err
	}
	switch {
	case s == 16:
		return 32768, nil
	case s > 16:
		return 0, corrupt("lossless difference category %d", s)
	}
	return br.receiveExtend(int(s)), nil
}

// losslessScan decodes a lossless scan (T.81 Annex H) with predictor sv and
// point transform pt into the planes of its components.
//
// At the start of the scan and of each restart interval the first sample
// is predicted by 2^(P-Pt-1) and the rest of that line by Ra; the first
// sample of every other line by Rb (H.1.2.1). Reconstruction is modulo 2^16.
func (d *decoder) losslessScan(br *bitReader, scs []scanComp, sv, pt int) error {
	initial := int32(1) << (d.precision - pt - 1)
	mcusX, mcusY := d.mcusX, d.mcusY
	single := len(scs) == 1
	if single {
		mcusX, mcusY = scs[0].c.w, scs[0].c.h2
	}
	if single && d.ri == 0 {
		if err := losslessPlane(br, scs[0].c, scs[0].dc, sv, initial); err != nil {
			return err
		}
		d.pointTransform(scs, pt)
		return nil
	}
	// (firstMX, firstMY) is the MCU that began the current restart interval.
	firstMX, firstMY := 0, 0
	mcu := 0
	for my := 0; my < mcusY; my++ {
		for mx := 0; mx < mcusX; mx++ {
			if d.ri > 0 && mcu > 0 && mcu%d.ri == 0 {
				if err := br.restart(); err != nil {
					return err
				}
				firstMX, firstMY = mx, my
			}
			mcu++
			for i := range scs {
				c := scs[i].c
				t := scs[i].dc
				hh, vv := c.h, c.v
				if single {
					hh, vv = 1, 1
				}
				for v := 0; v < vv; v++ {
					y := my*vv + v
					row := c.plane[y*c.stride : (y+1)*c.stride]
					for h := 0; h < hh; h++ {
						x := mx*hh + h
						diff, err := losslessDiff(br, t)
						if err != nil {
							return err
						}
						var px int32
						switch {
						case y == firstMY*vv && x == firstMX*hh:
							px = initial
						case y == firstMY*vv:
							px = int32(row[x-1])
						case x == 0:
							px = int32(c.plane[(y-1)*c.stride])
						default:
							up := c.plane[(y-1)*c.stride : y*c.stride]
							px = predict(sv, int32(row[x-1]), int32(up[x]), int32(up[x-1]))
						}
						row[x] = uint16(px + diff)
					}
				}
			}
			if br.overrun() {
				return corrupt("lossless scan data ends early")
			}
		}
	}
	d.pointTransform(scs, pt)
	return nil
}

// losslessPlane is losslessScan for the common case of one component
// without restart intervals, line by line.
func losslessPlane(br *bitReader, c *component, t *huffTable, sv int, initial int32) error {
	var up []uint16
	for y := 0; y < c.h2; y++ {
		row := c.plane[y*c.stride : y*c.stride+c.w]
		for x := range row {
			diff, err := losslessDiff(br, t)
			if err != nil {
				return err
			}
			var px int32
			switch {
			case x > 0 && up != nil:
				px = predict(sv, int32(row[x-1]), int32(up[x]), int32(up[x-1]))
			case x > 0:
				px = int32(row[x-1])
			case up != nil:
				px = int32(up[0])
			default:
				px = initial
			}
			row[x] = uint16(px + diff)
		}
		if br.overrun() {
			return corrupt("lossless scan data ends early")
		}
		up = row
	}
	return nil
}

// pointTransform undoes the point transform and keeps samples within P
// bits, so callers can index tables by sample value even on damaged input.
func (d *decoder) pointTransform(scs []scanComp, pt int) {
	mask := uint16(1<<d.precision - 1)
	for i := range scs {
		c := scs[i].c
		for j, s := range c.plane {
			c.plane[j] = (s << pt) & mask
		}
	}
}
