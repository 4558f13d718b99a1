package previews

import "image"

// span is the source range and weights that make one output sample of an
// area-averaging (box) reduction: each source sample counts in proportion
// to how much of the output sample's footprint it covers.
type span struct {
	first   int
	weights []uint32 // sum to 1<<weightBits
}

const weightBits = 14

// boxSpans computes the spans for shrinking n source samples to m (m <= n).
func boxSpans(n, m int) []span {
	spans := make([]span, m)
	scale := float64(n) / float64(m)
	backing := make([]uint32, 0, m*(int(scale)+2))
	for i := range spans {
		lo, hi := float64(i)*scale, float64(i+1)*scale
		first := int(lo)
		last := min(int(hi+0.999999), n) // exclusive
		if last <= first {
			last = first + 1
		}
		backing = append(backing, make([]uint32, last-first)...)
		w := backing[len(backing)-(last-first):]
		var sum uint32
		for j := range w {
			cover := min(hi, float64(first+j+1)) - max(lo, float64(first+j))
			w[j] = uint32(cover / scale * (1 << weightBits))
			sum += w[j]
		}
		// Give the rounding remainder to the largest weight so every span
		// sums exactly to one and flat areas stay exactly flat.
		big := 0
		for j := range w {
			if w[j] > w[big] {
				big = j
			}
		}
		w[big] += 1<<weightBits - sum
		spans[i] = span{first: first, weights: w}
	}
	return spans
}

// shrinkGray reduces a grayscale image to w x h by area averaging, in
// integer arithmetic and without leaving the one-channel representation.
// imaging.Resize would convert to NRGBA and back, four times the work for a
// colour conversion nobody needs.
func shrinkGray(src *image.Gray, w, h int) *image.Gray {
	b := src.Bounds()
	sw, sh := b.Dx(), b.Dy()
	if sw == 2*w && sh == 2*h {
		return halveGray(src, w, h)
	}
	xs, ys := boxSpans(sw, w), boxSpans(sh, h)
	// Horizontal pass: sh rows of w samples, kept with 7 extra bits.
	tmp := make([]uint32, sh*w)
	for y := 0; y < sh; y++ {
		row := src.Pix[(b.Min.Y+y)*src.Stride+b.Min.X : (b.Min.Y+y)*src.Stride+b.Min.X+sw]
		out := tmp[y*w : (y+1)*w]
		for x, s := range xs {
			var acc uint32
			for j, wt := range s.weights {
				acc += uint32(row[s.first+j]) * wt
			}
			out[x] = (acc + 1<<6) >> 7
		}
	}
	// Vertical pass.
	dst := image.NewGray(image.Rect(0, 0, w, h))
	for y, s := range ys {
		out := dst.Pix[y*dst.Stride : y*dst.Stride+w]
		for x := range out {
			var acc uint32
			for j, wt := range s.weights {
				acc += tmp[(s.first+j)*w+x] * wt
			}
			out[x] = uint8(min((acc+1<<(weightBits+6))>>(weightBits+7), 255))
		}
	}
	return dst
}

// halveGray is shrinkGray for the commonest thumbnail, exactly half size
// (512 -> 256): each output pixel is the rounded mean of a 2x2 block.
func halveGray(src *image.Gray, w, h int) *image.Gray {
	b := src.Bounds()
	dst := image.NewGray(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		r0 := src.Pix[(b.Min.Y+2*y)*src.Stride+b.Min.X:]
		r1 := src.Pix[(b.Min.Y+2*y+1)*src.Stride+b.Min.X:]
		r0, r1 = r0[:2*w], r1[:2*w]
		out := dst.Pix[y*dst.Stride : y*dst.Stride+w]
		for x := range out {
			out[x] = uint8((uint32(r0[2*x]) + uint32(r0[2*x+1]) + uint32(r1[2*x]) + uint32(r1[2*x+1]) + 2) >> 2)
		}
	}
	return dst
}
