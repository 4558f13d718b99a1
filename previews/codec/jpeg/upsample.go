package jpeg

// upsample brings a subsampled component to the frame size and returns a
// Width x Height plane.
//
// DCT frames with 2:1 horizontal, or 2:1 horizontal and vertical, ratios
// get the triangle filter libjpeg applies by default ("fancy upsampling"):
// output samples sit between input samples, so each is 3/4 of the nearer
// and 1/4 of the farther input, with the frame edges replicated and the
// same alternating rounding biases, which keeps the output within a level
// of DCMTK's. Every other case replicates samples.
func (d *decoder) upsample(c *component) []uint16 {
	w, h := d.width, d.height
	out := make([]uint16, w*h)
	fancy := d.sof != 3 && c.w > 2 && d.hmax == 2*c.h
	switch {
	case fancy && d.vmax == c.v:
		d.fancyH2V1(c, out)
	case fancy && d.vmax == 2*c.v:
		d.fancyH2V2(c, out)
	default:
		for y := 0; y < h; y++ {
			sy := y * c.v / d.vmax
			src := c.plane[sy*c.stride:]
			dst := out[y*w : (y+1)*w]
			for x := range dst {
				dst[x] = src[x*c.h/d.hmax]
			}
		}
	}
	return out
}

// fancyH2V1 doubles each line horizontally with the triangle filter.
func (d *decoder) fancyH2V1(c *component, out []uint16) {
	w := d.width
	line := make([]uint16, 2*c.w)
	for y := 0; y < d.height; y++ {
		in := c.plane[y*c.stride : y*c.stride+c.w]
		n := len(in)
		line[0] = in[0]
		line[2*n-1] = in[n-1]
		for i := 0; i < n; i++ {
			cur := 3 * int32(in[i])
			if i > 0 {
				line[2*i] = uint16((cur + int32(in[i-1]) + 1) >> 2)
			}
			if i < n-1 {
				line[2*i+1] = uint16((cur + int32(in[i+1]) + 2) >> 2)
			}
		}
		copy(out[y*w:(y+1)*w], line)
	}
}

// fancyH2V2 doubles the component both ways: each output line mixes its
// nearer input line (3/4) with the farther one (1/4), then filters the
// column sums horizontally as fancyH2V1 does.
func (d *decoder) fancyH2V2(c *component, out []uint16) {
	w := d.width
	n := c.w
	colsum := make([]int32, n)
	line := make([]uint16, 2*n)
	for y := 0; y < d.height; y++ {
		r := y / 2
		far := r - 1
		if y%2 == 1 {
			far = r + 1
		}
		far = min(max(far, 0), c.h2-1)
		near := c.plane[r*c.stride : r*c.stride+n]
		other := c.plane[far*c.stride : far*c.stride+n]
		for i := range colsum {
			colsum[i] = 3*int32(near[i]) + int32(other[i])
		}
		line[0] = uint16((4*colsum[0] + 8) >> 4)
		line[2*n-1] = uint16((4*colsum[n-1] + 7) >> 4)
		for i := 0; i < n; i++ {
			cur := 3 * colsum[i]
			if i > 0 {
				line[2*i] = uint16((cur + colsum[i-1] + 8) >> 4)
			}
			if i < n-1 {
				line[2*i+1] = uint16((cur + colsum[i+1] + 7) >> 4)
			}
		}
		copy(out[y*w:(y+1)*w], line)
	}
}
