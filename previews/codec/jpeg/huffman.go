package jpeg

// lutBits is how many leading bits the fast decoding table resolves; most
// codes in real tables are this short or shorter.
const lutBits = 9

// huffTable is a Huffman decoding table built from a DHT segment as in
// T.81 Annex C (code generation) and F.2.2.3 (decoding procedure).
type huffTable struct {
	defined bool
	// lut maps the next lutBits bits to (code length << 8 | value), or 0
	// when the code is longer than lutBits.
	lut [1 << lutBits]uint16
	// maxcode[l] is the largest code of length l, -1 if none (F.2.2.3);
	// valptr[l]-mincode[l] indexes vals for codes of length l.
	maxcode [17]int32
	mincode [17]int32
	valptr  [17]int32
	vals    [256]byte
}

// build fills t from the BITS counts (codes of each length 1..16) and the
// HUFFVAL symbols. It rejects tables whose codes do not fit their lengths.
func (t *huffTable) build(counts [16]int, vals []byte) error {
	*t = huffTable{}
	copy(t.vals[:], vals)
	code := int32(0)
	k := int32(0)
	for l := 1; l <= 16; l++ {
		n := int32(counts[l-1])
		t.valptr[l] = k
		t.mincode[l] = code
		if n == 0 {
			t.maxcode[l] = -1
		} else {
			t.maxcode[l] = code + n - 1
		}
		// T.81 reserves the all-ones code of each length and libjpeg
		// refuses tables that use it; decoding stays unambiguous with it,
		// so only tables whose codes do not fit in l bits are refused.
		if code+n > int32(1)<<l {
			return corrupt("Huffman table overfull at length %d", l)
		}
		for i := int32(0); i < n; i++ {
			if l <= lutBits {
				// Every lutBits-bit pattern starting with this code.
				shift := lutBits - l
				base := int((code + i) << shift)
				e := uint16(l)<<8 | uint16(t.vals[k+i])
				for j := 0; j < 1<<shift; j++ {
					t.lut[base+j] = e
				}
			}
		}
		k += n
		code = (code + n) << 1
	}
	t.defined = true
	return nil
}

// bitReader reads the entropy-coded segment of a scan, removing stuffed
// zero bytes (F.1.2.3). At a marker, or at the end of the data, it feeds
// zero bits and counts them, so that decoding can notice when it has used
// bits that were never there.
type bitReader struct {
	data   []byte
	pos    int    // next byte to load
	acc    uint64 // valid bits left-aligned
	n      uint   // number of valid bits in acc
	marker bool   // a marker stops the segment at pos
	zeros  int    // bytes of zero fill fed after the segment ended
}

// fill loads bytes until at least 57 bits are buffered.
func (br *bitReader) fill() {
	for br.n <= 56 {
		var b byte
		if !br.marker && br.pos < len(br.data) {
			b = br.data[br.pos]
			if b == 0xFF {
				// Skip fill bytes: FF FF ... is padding before a marker.
				q := br.pos + 1
				for q < len(br.data) && br.data[q] == 0xFF {
					q++
				}
				switch {
				case q < len(br.data) && br.data[q] == 0x00:
					br.pos = q + 1
				default:
					br.pos = q - 1 // at the last FF, which starts the marker
					br.marker = true
					b = 0
					br.zeros++
				}
			} else {
				br.pos++
			}
		} else {
			br.marker = true
			br.zeros++
		}
		br.acc |= uint64(b) << (56 - br.n)
		br.n += 8
	}
}

// overrun reports whether decoding has consumed zero fill, i.e. the scan
// needed more data than the segment holds.
func (br *bitReader) overrun() bool { return br.zeros*8 > int(br.n) }

// decode reads one Huffman-coded symbol.
func (br *bitReader) decode(t *huffTable) (byte, error) {
	if br.n < 16 {
		br.fill()
	}
	if e := t.lut[br.acc>>(64-lutBits)]; e != 0 {
		br.acc <<= e >> 8
		br.n -= uint(e >> 8)
		return byte(e), nil
	}
	if !t.defined {
		return 0, corrupt("scan uses an undefined Huffman table")
	}
	for l := lutBits + 1; l <= 16; l++ {
		code := int32(br.acc >> (64 - uint(l)))
		if code <= t.maxcode[l] {
			br.acc <<= uint(l)
			br.n -= uint(l)
			i := t.valptr[l] + code - t.mincode[l]
			return t.vals[i&0xFF], nil
		}
	}
	return 0, corrupt("invalid Huffman code")
}

// bits reads s (0..16) raw bits.
func (br *bitReader) bits(s int) int32 {
	if s == 0 {
		return 0
	}
	if br.n < uint(s) {
		br.fill()
	}
	v := int32(br.acc >> (64 - uint(s)))
	br.acc <<= uint(s)
	br.n -= uint(s)
	return v
}

// receiveExtend reads an s-bit magnitude and sign-extends it (F.2.2.1,
// procedures RECEIVE and EXTEND).
func (br *bitReader) receiveExtend(s int) int32 {
	if s == 0 {
		return 0
	}
	v := br.bits(s)
	if v < int32(1)<<(s-1) {
		v += -(int32(1) << s) + 1
	}
	return v
}

// restart consumes the RSTn marker that ends a restart interval (F.2.1.3.1)
// and resets the bit buffer. It resynchronises on the next marker if
// padding precedes it, and tolerates a wrong RST number as libjpeg does.
func (br *bitReader) restart() error {
	br.acc, br.n, br.zeros = 0, 0, 0
	p := br.pos
	for p+1 < len(br.data) {
		if br.data[p] == 0xFF && br.data[p+1] != 0x00 && br.data[p+1] != 0xFF {
			m := br.data[p+1]
			if m < mRST0 || m > mRST7 {
				return corrupt("expected RST marker at offset %d, found 0x%02X", p, m)
			}
			br.pos = p + 2
			br.marker = false
			return nil
		}
		p++
	}
	return corrupt("data ends before RST marker")
}

// skipToMarker returns the offset of the marker that ends the scan.
func (br *bitReader) skipToMarker() int {
	p := br.pos
	for p+1 < len(br.data) {
		if br.data[p] == 0xFF && br.data[p+1] != 0x00 && br.data[p+1] != 0xFF {
			return p
		}
		p++
	}
	return len(br.data)
}
