package jpeg

import (
	"math/bits"
)

// This file holds a small test-only JPEG writer. It makes bitstreams with
// features DCMTK's encoder never emits (restart intervals, one scan per
// component, Huffman tables redefined between scans, four components,
// differences of 32768) so the decoder can be checked against the samples
// that went in.

// bitWriter writes entropy-coded data MSB first with byte stuffing.
type bitWriter struct {
	out []byte
	acc byte
	n   uint
}

func (w *bitWriter) put(code uint32, n uint) {
	for i := n; i > 0; i-- {
		w.acc = w.acc<<1 | byte(code>>(i-1)&1)
		w.n++
		if w.n == 8 {
			w.out = append(w.out, w.acc)
			if w.acc == 0xFF {
				w.out = append(w.out, 0)
			}
			w.acc, w.n = 0, 0
		}
	}
}

// flush pads the last byte with 1-bits (F.1.2.3).
func (w *bitWriter) flush() {
	for w.n != 0 {
		w.put(1, 1)
	}
}

func (w *bitWriter) marker(m byte, payload []byte) {
	w.out = append(w.out, 0xFF, m)
	if payload != nil {
		n := len(payload) + 2
		w.out = append(w.out, byte(n>>8), byte(n))
		w.out = append(w.out, payload...)
	}
}

// testTable is a Huffman table with its encoder codes (T.81 C.2).
type testTable struct {
	counts [16]byte
	vals   []byte
	code   map[byte][2]uint32 // symbol -> code, length
}

func makeTable(counts [16]byte, vals []byte) testTable {
	t := testTable{counts: counts, vals: vals, code: map[byte][2]uint32{}}
	code, k := uint32(0), 0
	for l := 1; l <= 16; l++ {
		for i := 0; i < int(counts[l-1]); i++ {
			t.code[vals[k]] = [2]uint32{code, uint32(l)}
			code++
			k++
		}
		code <<= 1
	}
	return t
}

func (t testTable) dht(class, id byte) []byte {
	p := []byte{class<<4 | id}
	p = append(p, t.counts[:]...)
	return append(p, t.vals...)
}

func (t testTable) emit(w *bitWriter, sym byte) {
	c, ok := t.code[sym]
	if !ok {
		panic("test table lacks symbol")
	}
	w.put(c[0], uint(c[1]))
}

// Two tables over the lossless categories 0..16 with different code shapes.
var (
	llTableA = makeTable([16]byte{4: 17}, seq(0, 17))
	llTableB = makeTable([16]byte{1: 2, 5: 15}, seq(0, 17))
)

func seq(from, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(from + i)
	}
	return b
}

// llOptions describe a lossless test bitstream.
type llOptions struct {
	precision, pt, sv int
	ri                int  // restart interval in MCUs
	perComponent      bool // one scan per component, tables redefined between scans
}

// encodeLossless codes planes (one per component, w*h samples) with the
// lossless process, all components sampled 1x1.
func encodeLossless(planes [][]uint16, w, h int, o llOptions) []byte {
	var bw bitWriter
	bw.out = []byte{0xFF, 0xD8}
	sof := []byte{byte(o.precision), byte(h >> 8), byte(h), byte(w >> 8), byte(w), byte(len(planes))}
	for i := range planes {
		sof = append(sof, byte(i+1), 0x11, 0)
	}
	bw.marker(mSOF3, sof)
	if o.ri > 0 {
		bw.marker(mDRI, []byte{byte(o.ri >> 8), byte(o.ri)})
	}
	var scans [][]int
	if o.perComponent {
		for i := range planes {
			scans = append(scans, []int{i})
		}
	} else {
		all := make([]int, len(planes))
		for i := range all {
			all[i] = i
		}
		scans = [][]int{all}
	}
	for si, comps := range scans {
		table := llTableA
		if si%2 == 1 {
			table = llTableB
		}
		bw.marker(mDHT, table.dht(0, 0))
		sos := []byte{byte(len(comps))}
		for _, c := range comps {
			sos = append(sos, byte(c+1), 0x00)
		}
		sos = append(sos, byte(o.sv), 0, byte(o.pt))
		bw.marker(mSOS, sos)
		for i := 0; i < w*h; i++ {
			if o.ri > 0 && i > 0 && i%o.ri == 0 {
				bw.flush()
				bw.marker(mRST0+byte(i/o.ri-1)%8, nil)
			}
			x, y := i%w, i/w
			firstRow := 0
			if o.ri > 0 {
				firstRow = (i / o.ri) * o.ri / w
			}
			for _, c := range comps {
				s := func(x, y int) int32 { return int32(planes[c][y*w+x] >> o.pt) }
				var px int32
				switch {
				case y == firstRow && x == 0:
					px = 1 << (o.precision - o.pt - 1)
				case y == firstRow:
					px = s(x-1, y)
				case x == 0:
					px = s(x, y-1)
				default:
					ra, rb, rc := s(x-1, y), s(x, y-1), s(x-1, y-1)
					px = [8]int32{0, ra, rb, rc, ra + rb - rc, ra + (rb-rc)>>1, rb + (ra-rc)>>1, (ra + rb) >> 1}[o.sv]
				}
				d := int32(int16(uint16(s(x, y) - px)))
				if d == -32768 {
					table.emit(&bw, 16)
					continue
				}
				bw.diff(table, d)
			}
		}
		bw.flush()
	}
	bw.marker(mEOI, nil)
	return bw.out
}

// diff codes the difference d as T.81 F.1.2.1 (DC) and H.1.2.2 (lossless)
// do: its magnitude category SSSS through table, then SSSS additional bits,
// ones' complement when d is negative.
func (w *bitWriter) diff(table testTable, d int32) {
	mag := d
	if d < 0 {
		mag = -d
	}
	ssss := bits.Len32(uint32(mag))
	table.emit(w, byte(ssss))
	if d < 0 {
		d += 1<<ssss - 1
	}
	w.put(uint32(d), uint(ssss))
}

// DC-only DCT test streams: a DC table over categories 0..11 and an AC
// table with just EOB.
var (
	dcTable  = makeTable([16]byte{3: 12}, seq(0, 12))
	eobTable = makeTable([16]byte{0: 1}, []byte{0})
)

// dcComponent is one component of a DC-only DCT test stream.
type dcComponent struct {
	h, v int
	dc   []int32 // quantised DC per block, blocks in raster order over the MCU grid
}

// encodeDCOnly writes a baseline frame whose blocks carry only DC values
// (quantisation table of ones). With interleaved set all components share
// one scan; otherwise each has its own, covering only its own blocks.
func encodeDCOnly(w, h int, comps []dcComponent, ri int, interleaved bool) []byte {
	var bw bitWriter
	bw.out = []byte{0xFF, 0xD8}
	q := append([]byte{0}, make([]byte, 64)...)
	for i := 1; i < len(q); i++ {
		q[i] = 1
	}
	bw.marker(mDQT, q)
	sof := []byte{8, byte(h >> 8), byte(h), byte(w >> 8), byte(w), byte(len(comps))}
	hmax, vmax := 1, 1
	for i, c := range comps {
		sof = append(sof, byte(i+1), byte(c.h<<4|c.v), 0)
		hmax, vmax = max(hmax, c.h), max(vmax, c.v)
	}
	bw.marker(mSOF0, sof)
	bw.marker(mDHT, append(dcTable.dht(0, 0), eobTable.dht(1, 0)...))
	if ri > 0 {
		bw.marker(mDRI, []byte{byte(ri >> 8), byte(ri)})
	}
	mcusX, mcusY := ceilDiv(w, 8*hmax), ceilDiv(h, 8*vmax)
	block := func(c int, pred *int32, bx, by int) {
		v := comps[c].dc[by*mcusX*comps[c].h+bx]
		d := v - *pred
		*pred = v
		bw.diff(dcTable, d)
		eobTable.emit(&bw, 0)
	}
	scan := func(cs []int, nx, ny int, unit func(mx, my int, preds []int32)) {
		sos := []byte{byte(len(cs))}
		for _, c := range cs {
			sos = append(sos, byte(c+1), 0x00)
		}
		sos = append(sos, 0, 63, 0)
		bw.marker(mSOS, sos)
		preds := make([]int32, len(comps))
		for i := 0; i < nx*ny; i++ {
			if ri > 0 && i > 0 && i%ri == 0 {
				bw.flush()
				bw.marker(mRST0+byte(i/ri-1)%8, nil)
				clear(preds)
			}
			unit(i%nx, i/nx, preds)
		}
		bw.flush()
	}
	if interleaved {
		all := make([]int, len(comps))
		for i := range all {
			all[i] = i
		}
		scan(all, mcusX, mcusY, func(mx, my int, preds []int32) {
			for c, cc := range comps {
				for v := 0; v < cc.v; v++ {
					for hh := 0; hh < cc.h; hh++ {
						block(c, &preds[c], mx*cc.h+hh, my*cc.v+v)
					}
				}
			}
		})
	} else {
		for c, cc := range comps {
			cw, ch := ceilDiv(w*cc.h, hmax), ceilDiv(h*cc.v, vmax)
			scan([]int{c}, ceilDiv(cw, 8), ceilDiv(ch, 8), func(mx, my int, preds []int32) {
				block(c, &preds[c], mx, my)
			})
		}
	}
	bw.marker(mEOI, nil)
	return bw.out
}
