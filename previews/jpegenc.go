package previews

import (
	"bytes"
	"errors"
	"image"
	"image/jpeg"
	"io"
	"math"
	"math/bits"
	"sync"
)

// This file is a baseline sequential JPEG encoder (ITU-T T.81, process 1)
// for one-component grayscale images, the bulk of medical previews. It
// exists for speed: image/jpeg divides every coefficient by its quantizer
// and reads pixels through an interface, and JPEG encoding is most of the
// cost of a thumbnail. This encoder uses the AAN scaled float DCT with the
// scale folded into reciprocal quantizers, reads image.Gray directly and
// buffers bits in a 64-bit word. Colour images still go through
// image/jpeg.

// lumaQuant is the luminance quantization table of T.81 Annex K.1, in
// natural (row-major) order.
var lumaQuant = [64]int{
	16, 11, 10, 16, 24, 40, 51, 61,
	12, 12, 14, 19, 26, 58, 60, 55,
	14, 13, 16, 24, 40, 57, 69, 56,
	14, 17, 22, 29, 51, 87, 80, 62,
	18, 22, 37, 56, 68, 109, 103, 77,
	24, 35, 55, 64, 81, 104, 113, 92,
	49, 64, 78, 87, 103, 121, 120, 101,
	72, 92, 95, 98, 112, 100, 103, 99,
}

// zigzag maps the zig-zag sequence index to the natural index (T.81
// Figure A.6).
var zigzag = func() [64]int {
	var z [64]int
	i := 0
	for s := 0; s < 15; s++ {
		if s%2 == 0 { // up-right: row decreases
			for r := min(s, 7); r >= max(0, s-7); r-- {
				z[i] = r*8 + (s - r)
				i++
			}
		} else {
			for r := max(0, s-7); r <= min(s, 7); r++ {
				z[i] = r*8 + (s - r)
				i++
			}
		}
	}
	return z
}()

// huffTable is a Huffman table as coded in DHT (counts per length and
// symbols) with the derived code and length of each symbol.
type huffTable struct {
	counts  [16]byte
	symbols []byte
	code    [256]uint16
	size    [256]uint8
}

func (h *huffTable) derive() {
	code, k := 0, 0
	for l := 1; l <= 16; l++ {
		for i := 0; i < int(h.counts[l-1]); i++ {
			s := h.symbols[k]
			h.code[s], h.size[s] = uint16(code), uint8(l)
			code++
			k++
		}
		code <<= 1
	}
}

// standardTables returns the luminance DC and AC Huffman tables of T.81
// Annex K.3, taken from the DHT segment image/jpeg writes (it uses exactly
// those tables), so they are not retyped here.
var standardTables = sync.OnceValues(func() (*[2]huffTable, error) {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, image.NewGray(image.Rect(0, 0, 8, 8)), nil); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	var t [2]huffTable
	found := 0
	for i := 2; i+4 <= len(b) && b[i] == 0xFF; {
		marker := b[i+1]
		n := int(b[i+2])<<8 | int(b[i+3])
		if i+2+n > len(b) {
			break
		}
		seg := b[i+4 : i+2+n]
		if marker == 0xC4 {
			for len(seg) >= 17 {
				class, id := seg[0]>>4, seg[0]&15
				var counts [16]byte
				copy(counts[:], seg[1:17])
				total := 0
				for _, c := range counts {
					total += int(c)
				}
				if len(seg) < 17+total {
					break
				}
				if id == 0 && class < 2 {
					t[class] = huffTable{counts: counts, symbols: append([]byte(nil), seg[17:17+total]...)}
					t[class].derive()
					found++
				}
				seg = seg[17+total:]
			}
		}
		if marker == 0xDA {
			break
		}
		i += 2 + n
	}
	if found != 2 {
		return nil, errors.New("previews: could not read the standard Huffman tables")
	}
	return &t, nil
})

// aanScale are the AAN DCT output scale factors: 1 and cos(k*pi/16)*sqrt(2).
var aanScale = func() [8]float64 {
	var s [8]float64
	s[0] = 1
	for k := 1; k < 8; k++ {
		s[k] = math.Cos(float64(k)*math.Pi/16) * math.Sqrt2
	}
	return s
}()

// quantTables returns the quantizers for a quality (IJG scaling of the
// Annex K table), in zig-zag order, and the reciprocal multipliers that
// quantize AAN DCT output directly, in natural order.
func quantTables(quality int) (q [64]byte, recip [64]float32) {
	quality = min(max(quality, 1), 100)
	scale := 200 - 2*quality
	if quality < 50 {
		scale = 5000 / quality
	}
	for z := 0; z < 64; z++ {
		n := zigzag[z]
		v := min(max((lumaQuant[n]*scale+50)/100, 1), 255)
		q[z] = byte(v)
		recip[n] = float32(1 / (float64(v) * aanScale[n/8] * aanScale[n%8] * 8))
	}
	return q, recip
}

// fdct is the forward DCT of one 8x8 block in place (Arai, Agui and
// Nakajima's flow graph); outputs are scaled by 8*aanScale[u]*aanScale[v].
func fdct(b *[64]float32) {
	for r := 0; r < 64; r += 8 {
		p := (*[8]float32)(b[r : r+8])
		p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7] = aan8(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7])
	}
	for c := 0; c < 8; c++ {
		b[c], b[8+c], b[16+c], b[24+c], b[32+c], b[40+c], b[48+c], b[56+c] =
			aan8(b[c], b[8+c], b[16+c], b[24+c], b[32+c], b[40+c], b[48+c], b[56+c])
	}
}

// aan8 is the one-dimensional 8-point AAN DCT.
func aan8(d0, d1, d2, d3, d4, d5, d6, d7 float32) (o0, o1, o2, o3, o4, o5, o6, o7 float32) {
	t0, t7 := d0+d7, d0-d7
	t1, t6 := d1+d6, d1-d6
	t2, t5 := d2+d5, d2-d5
	t3, t4 := d3+d4, d3-d4

	t10, t13 := t0+t3, t0-t3
	t11, t12 := t1+t2, t1-t2
	o0, o4 = t10+t11, t10-t11
	z1 := (t12 + t13) * 0.707106781
	o2, o6 = t13+z1, t13-z1

	t10, t11, t12 = t4+t5, t5+t6, t6+t7
	z5 := (t10 - t12) * 0.382683433
	z2 := 0.541196100*t10 + z5
	z4 := 1.306562965*t12 + z5
	z3 := t11 * 0.707106781
	z11, z13 := t7+z3, t7-z3
	o5, o3 = z13+z2, z13-z2
	o1, o7 = z11+z4, z11-z4
	return
}

// bitWriter accumulates Huffman-coded bits, stuffing a zero after every
// 0xFF byte of entropy-coded data (T.81 F.1.2.3).
type bitWriter struct {
	out  []byte
	acc  uint64
	nacc uint
}

func (w *bitWriter) put(code uint32, n uint) {
	w.acc = w.acc<<n | uint64(code)&(1<<n-1)
	w.nacc += n
	for w.nacc >= 8 {
		w.nacc -= 8
		c := byte(w.acc >> w.nacc)
		w.out = append(w.out, c)
		if c == 0xFF {
			w.out = append(w.out, 0)
		}
	}
}

func (w *bitWriter) flush() {
	if w.nacc > 0 {
		w.put(0x7F, 8-w.nacc) // pad with one-bits
	}
}

// magnitude returns the size category of v and its additional bits (T.81
// F.1.2.1).
func magnitude(v int32) (uint, uint32) {
	a := v
	if a < 0 {
		a = -a
		v--
	}
	n := uint(bits.Len32(uint32(a)))
	return n, uint32(v) & (1<<n - 1)
}

// encodeGrayJPEG writes img as a baseline grayscale JPEG.
func encodeGrayJPEG(w io.Writer, img *image.Gray, quality int) error {
	tables, err := standardTables()
	if err != nil {
		return err
	}
	dc, ac := &tables[0], &tables[1]
	q, recip := quantTables(quality)
	b := img.Bounds()
	width, height := b.Dx(), b.Dy()
	if width < 1 || height < 1 || width > 65535 || height > 65535 {
		return errors.New("previews: image size not encodable as JPEG")
	}

	hdr := []byte{0xFF, 0xD8}
	// DQT: one 8-bit table, id 0.
	hdr = append(hdr, 0xFF, 0xDB, 0, 67, 0)
	hdr = append(hdr, q[:]...)
	// SOF0: 8-bit, one component (id 1, 1x1 sampling, table 0).
	hdr = append(hdr, 0xFF, 0xC0, 0, 11, 8, byte(height>>8), byte(height), byte(width>>8), byte(width), 1, 1, 0x11, 0)
	// DHT: DC table 0 and AC table 0.
	for class, t := range []*huffTable{dc, ac} {
		n := 2 + 17 + len(t.symbols)
		hdr = append(hdr, 0xFF, 0xC4, byte(n>>8), byte(n), byte(class<<4))
		hdr = append(hdr, t.counts[:]...)
		hdr = append(hdr, t.symbols...)
	}
	// SOS: one component, tables 0/0, full spectral range.
	hdr = append(hdr, 0xFF, 0xDA, 0, 8, 1, 1, 0x00, 0, 63, 0)

	bw := bitWriter{out: make([]byte, 0, len(hdr)+width*height/4+1024)}
	bw.out = append(bw.out, hdr...)
	var blk [64]float32
	var prevDC int32
	for by := 0; by < height; by += 8 {
		for bx := 0; bx < width; bx += 8 {
			// Load the block, repeating the last row and column past
			// the edges, level-shifted to be centred on zero.
			for y := 0; y < 8; y++ {
				sy := min(by+y, height-1)
				row := img.Pix[(b.Min.Y+sy)*img.Stride+b.Min.X : (b.Min.Y+sy)*img.Stride+b.Min.X+width]
				if bx+8 <= width {
					r := row[bx : bx+8]
					for x := 0; x < 8; x++ {
						blk[y*8+x] = float32(r[x]) - 128
					}
				} else {
					for x := 0; x < 8; x++ {
						blk[y*8+x] = float32(row[min(bx+x, width-1)]) - 128
					}
				}
			}
			fdct(&blk)
			var coef [64]int32
			for z := 0; z < 64; z++ {
				n := zigzag[z]
				v := blk[n] * recip[n]
				// Baseline Huffman tables code magnitudes up to 10 bits
				// for AC and 11 for DC differences: clamp to those.
				// Offsetting to positive makes truncation a round to
				// nearest without a data-dependent branch.
				v = min(max(v, -1023), 1023)
				coef[z] = int32(v+1024.5) - 1024
			}
			// DC difference, then run-length coded AC coefficients.
			diff := coef[0] - prevDC
			prevDC = coef[0]
			s, extra := magnitude(diff)
			bw.put(uint32(dc.code[s]), uint(dc.size[s]))
			bw.put(extra, s)
			run := 0
			for z := 1; z < 64; z++ {
				if coef[z] == 0 {
					run++
					continue
				}
				for run > 15 {
					bw.put(uint32(ac.code[0xF0]), uint(ac.size[0xF0]))
					run -= 16
				}
				s, extra := magnitude(coef[z])
				sym := byte(run<<4) | byte(s)
				bw.put(uint32(ac.code[sym]), uint(ac.size[sym]))
				bw.put(extra, s)
				run = 0
			}
			if run > 0 {
				bw.put(uint32(ac.code[0x00]), uint(ac.size[0x00]))
			}
		}
	}
	bw.flush()
	bw.out = append(bw.out, 0xFF, 0xD9)
	_, err = w.Write(bw.out)
	return err
}
