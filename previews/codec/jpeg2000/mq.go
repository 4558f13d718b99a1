package jpeg2000

// qeEntry is one row of the MQ-coder probability estimation table (T.800
// Table C.2).
type qeEntry struct {
	qe         uint32
	nmps, nlps uint8
	switchMPS  bool
}

var qeTable = [47]qeEntry{
	{0x5601, 1, 1, true}, {0x3401, 2, 6, false}, {0x1801, 3, 9, false}, {0x0AC1, 4, 12, false},
	{0x0521, 5, 29, false}, {0x0221, 38, 33, false}, {0x5601, 7, 6, true}, {0x5401, 8, 14, false},
	{0x4801, 9, 14, false}, {0x3801, 10, 14, false}, {0x3001, 11, 17, false}, {0x2401, 12, 18, false},
	{0x1C01, 13, 20, false}, {0x1601, 29, 21, false}, {0x5601, 15, 14, true}, {0x5401, 16, 14, false},
	{0x5101, 17, 15, false}, {0x4801, 18, 16, false}, {0x3801, 19, 17, false}, {0x3401, 20, 18, false},
	{0x3001, 21, 19, false}, {0x2801, 22, 19, false}, {0x2401, 23, 20, false}, {0x2201, 24, 21, false},
	{0x1C01, 25, 22, false}, {0x1801, 26, 23, false}, {0x1601, 27, 24, false}, {0x1401, 28, 25, false},
	{0x1201, 29, 26, false}, {0x1101, 30, 27, false}, {0x0AC1, 31, 28, false}, {0x09C1, 32, 29, false},
	{0x08A1, 33, 30, false}, {0x0521, 34, 31, false}, {0x0441, 35, 32, false}, {0x02A1, 36, 33, false},
	{0x0221, 37, 34, false}, {0x0141, 38, 35, false}, {0x0111, 39, 36, false}, {0x0085, 40, 37, false},
	{0x0049, 41, 38, false}, {0x0025, 42, 39, false}, {0x0015, 43, 40, false}, {0x0009, 44, 41, false},
	{0x0005, 45, 42, false}, {0x0001, 45, 43, false}, {0x5601, 46, 46, false},
}

// mqContext is the adaptive state of one context: table index and MPS.
type mqContext struct {
	index uint8
	mps   uint8
}

// mqDecoder is the MQ arithmetic decoder of T.800 Annex C.3. Bytes past the
// end of the segment read as 0xFF, which the decoder treats as a marker.
type mqDecoder struct {
	data []byte
	bp   int
	a, c uint32
	ct   int
}

func (d *mqDecoder) byteAt(i int) uint32 {
	if i < len(d.data) {
		return uint32(d.data[i])
	}
	return 0xFF
}

// init is INITDEC (C.3.5).
func (d *mqDecoder) init(data []byte) {
	d.data = data
	d.bp = 0
	d.c = d.byteAt(0) << 16
	d.byteIn()
	d.c <<= 7
	d.ct -= 7
	d.a = 0x8000
}

// byteIn is BYTEIN (C.3.4), with bit stuffing after 0xFF.
func (d *mqDecoder) byteIn() {
	if d.byteAt(d.bp) == 0xFF {
		if d.byteAt(d.bp+1) > 0x8F {
			d.c += 0xFF00
			d.ct = 8
		} else {
			d.bp++
			d.c += d.byteAt(d.bp) << 9
			d.ct = 7
		}
	} else {
		d.bp++
		d.c += d.byteAt(d.bp) << 8
		d.ct = 8
	}
}

// decode is DECODE (C.3.2) for context cx.
func (d *mqDecoder) decode(cx *mqContext) int {
	e := &qeTable[cx.index]
	qe := e.qe
	d.a -= qe
	var bit int
	if d.c>>16 < qe {
		// LPS_EXCHANGE
		if d.a < qe {
			bit = int(cx.mps)
			cx.index = e.nmps
		} else {
			bit = 1 - int(cx.mps)
			if e.switchMPS {
				cx.mps = 1 - cx.mps
			}
			cx.index = e.nlps
		}
		d.a = qe
	} else {
		d.c -= qe << 16
		if d.a&0x8000 != 0 {
			return int(cx.mps)
		}
		// MPS_EXCHANGE
		if d.a < qe {
			bit = 1 - int(cx.mps)
			if e.switchMPS {
				cx.mps = 1 - cx.mps
			}
			cx.index = e.nlps
		} else {
			bit = int(cx.mps)
			cx.index = e.nmps
		}
	}
	// RENORMD
	for {
		if d.ct == 0 {
			d.byteIn()
		}
		d.a <<= 1
		d.c <<= 1
		d.ct--
		if d.a&0x8000 != 0 {
			break
		}
	}
	return bit
}

// rawDecoder reads the raw (bypass) segments of selective arithmetic coding
// bypass (D.6), which also stuff a zero bit after 0xFF.
type rawDecoder struct {
	data []byte
	bp   int
	c    uint32
	ct   int
}

func (r *rawDecoder) init(data []byte) {
	*r = rawDecoder{data: data}
}

func (r *rawDecoder) decode() int {
	if r.ct == 0 {
		next := uint32(0xFF)
		if r.bp < len(r.data) {
			next = uint32(r.data[r.bp])
		}
		if r.c == 0xFF {
			if next > 0x8F {
				r.c = 0xFF
				r.ct = 8
			} else {
				r.c = next
				r.bp++
				r.ct = 7
			}
		} else {
			r.c = next
			r.bp++
			r.ct = 8
		}
	}
	r.ct--
	return int(r.c>>uint(r.ct)) & 1
}
