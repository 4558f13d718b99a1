package jpeg2000

// Inverse discrete wavelet transform (T.800 Annex F.3).

// dwtPad is how far the periodic symmetric extension reaches on each side;
// the 9/7 synthesis needs four samples.
const dwtPad = 4

// pse maps index k (relative to a signal of length n) into [0, n) by
// periodic symmetric extension (F.3.7).
func pse(k, n int) int {
	if n == 1 {
		return 0
	}
	period := 2 * (n - 1)
	k %= period
	if k < 0 {
		k += period
	}
	if k >= n {
		k = period - k
	}
	return k
}

// synth53 performs the reversible 1D_SR of F.3.8.1 on x, the interleaved
// signal whose first sample has coordinate i0; ext is scratch space of at
// least len(x)+2*dwtPad.
func synth53(x []int32, i0 int, ext []int32) {
	n := len(x)
	if n == 1 {
		if i0&1 == 1 {
			x[0] /= 2
		}
		return
	}
	e := ext[:n+2*dwtPad]
	for j := range e {
		e[j] = x[pse(j-dwtPad, n)]
	}
	// Coordinate of e[j] is i0-dwtPad+j; even coordinates are low-pass.
	first := (i0 - dwtPad) & 1 // parity of e[0]
	// STEP1: X(2n) = Y(2n) - floor((Y(2n-1)+Y(2n+1)+2)/4)
	start := 1
	if (first+start)&1 == 1 {
		start++
	}
	for j := start; j < len(e)-1; j += 2 {
		e[j] -= (e[j-1] + e[j+1] + 2) >> 2
	}
	// STEP2: X(2n+1) = Y(2n+1) + floor((X(2n)+X(2n+2))/2)
	start = 1
	if (first+start)&1 == 0 {
		start++
	}
	for j := start; j < len(e)-1; j += 2 {
		e[j] += (e[j-1] + e[j+1]) >> 1
	}
	copy(x, e[dwtPad:dwtPad+n])
}

// 9/7 lifting constants (Table F.4).
const (
	alpha97 = -1.586134342059924
	beta97  = -0.052980118572961
	gamma97 = 0.882911075530934
	delta97 = 0.443506852043971
	k97     = 1.230174104914001
)

// synth97 performs the irreversible 1D_SR of F.3.8.2.
func synth97(x []float32, i0 int, ext []float32) {
	n := len(x)
	if n == 1 {
		if i0&1 == 1 {
			x[0] /= 2
		}
		return
	}
	e := ext[:n+2*dwtPad]
	for j := range e {
		e[j] = x[pse(j-dwtPad, n)]
	}
	first := (i0 - dwtPad) & 1
	even := 0 // index of the first low-pass (even coordinate) sample
	if first == 1 {
		even = 1
	}
	odd := 1 - even
	for j := even; j < len(e); j += 2 {
		e[j] *= k97
	}
	for j := odd; j < len(e); j += 2 {
		e[j] *= 1 / k97
	}
	lift := func(start int, c float32) {
		if start == 0 {
			start = 2
		}
		for j := start; j < len(e)-1; j += 2 {
			e[j] -= c * (e[j-1] + e[j+1])
		}
	}
	lift(even, delta97)
	lift(odd, gamma97)
	lift(even, beta97)
	lift(odd, alpha97)
	copy(x, e[dwtPad:dwtPad+n])
}

// interleave orders the low-pass samples lo and high-pass samples hi of a
// signal starting at coordinate i0 into out.
func interleave[T int32 | float32](out, lo, hi []T, i0 int) {
	li, hi2 := 0, 0
	for k := range out {
		if (i0+k)&1 == 0 {
			out[k] = lo[li]
			li++
		} else {
			out[k] = hi[hi2]
			hi2++
		}
	}
}
