package jpegls

import "math/bits"

// bitReader reads the entropy-coded segment of a scan (T.87 A.1, C.1.4):
// after every 0xFF byte the encoder stuffs a zero bit, so the byte that
// follows contributes only its 7 low bits.
type bitReader struct {
	data   []byte // one entropy-coded segment, markers excluded
	pos    int
	acc    uint64 // valid bits left-aligned; bits below them are zero
	n      int    // number of valid bits in acc
	prevFF bool
	pad    int // zero bits appended beyond the end of data
}

func newBitReader(seg []byte) *bitReader {
	return &bitReader{data: seg}
}

// fill tops the cache up to at least 57 bits, appending zero bits past the
// end of the segment (overrun reports whether any of them were consumed).
func (b *bitReader) fill() {
	for b.n <= 56 {
		if b.pos >= len(b.data) {
			b.pad += 8
			b.n += 8
			continue
		}
		v := b.data[b.pos]
		b.pos++
		if b.prevFF {
			// The stuffed bit is the MSB, which is zero in a valid segment.
			b.acc |= uint64(v&0x7F) << (64 - 7 - b.n)
			b.n += 7
		} else {
			b.acc |= uint64(v) << (64 - 8 - b.n)
			b.n += 8
		}
		b.prevFF = v == 0xFF
	}
}

// overrun reports whether more bits were consumed than the segment holds.
func (b *bitReader) overrun() bool {
	return b.pad > b.n
}

func (b *bitReader) bit() int {
	if b.n < 1 {
		b.fill()
	}
	v := int(b.acc >> 63)
	b.acc <<= 1
	b.n--
	return v
}

// read returns the next n bits (0 ≤ n ≤ 32) as an unsigned value.
func (b *bitReader) read(n int) int {
	if n == 0 {
		return 0
	}
	if b.n < n {
		b.fill()
	}
	v := int(b.acc >> (64 - uint(n)))
	b.acc <<= uint(n)
	b.n -= n
	return v
}

// zeros counts and consumes zero bits up to and including the next one bit.
// It gives up, returning max+1, once more than max zeros have been seen.
func (b *bitReader) zeros(max int) int {
	cnt := 0
	for {
		if b.n < 57 {
			b.fill()
		}
		lz := bits.LeadingZeros64(b.acc)
		if lz < b.n {
			b.acc <<= uint(lz + 1)
			b.n -= lz + 1
			return cnt + lz
		}
		cnt += b.n
		b.acc = 0
		b.n = 0
		if cnt > max {
			return max + 1
		}
	}
}

// golomb decodes one limited-length Golomb code (T.87 A.5.3): a unary
// prefix, then k bits; a prefix of limit-qbpp-1 escapes to qbpp raw bits
// holding value-1. ok is false for a prefix longer than the limit allows.
func (b *bitReader) golomb(k, limit, qbpp int) (v int, ok bool) {
	esc := limit - qbpp - 1
	high := b.zeros(esc)
	if high > esc {
		return 0, false
	}
	if high == esc {
		return b.read(qbpp) + 1, true
	}
	return high<<uint(k) | b.read(k), true
}
