package jpeg2000

// Tier-2: packet headers (T.800 Annex B.10).

// pktReader reads packet header bits: after a 0xFF byte the next byte
// carries only 7 bits (B.10.1).
type pktReader struct {
	data   []byte
	pos    int
	cur    uint32
	ct     int
	prevFF bool
	over   bool // read past the end of data
}

func (r *pktReader) bit() int {
	if r.ct == 0 {
		if r.pos >= len(r.data) {
			r.over = true
			return 0
		}
		b := r.data[r.pos]
		r.pos++
		r.ct = 8
		if r.prevFF {
			r.ct = 7
		}
		r.prevFF = b == 0xFF
		r.cur = uint32(b)
	}
	r.ct--
	return int(r.cur>>uint(r.ct)) & 1
}

func (r *pktReader) bits(n int) int {
	v := 0
	for range n {
		v = v<<1 | r.bit()
	}
	return v
}

// align ends the header: remaining bits of the byte are padding, and a
// header ending in 0xFF is followed by one more (stuffed) byte.
func (r *pktReader) align() {
	r.ct = 0
	if r.prevFF {
		r.pos++
		r.prevFF = false
	}
}

// tagTree is a tag tree (B.10.2) over a w×h grid of leaves.
type tagTree struct {
	value  []int32
	low    []int32
	parent []int32
}

const ttUnknown = 1 << 30

func newTagTree(w, h int) *tagTree {
	t := &tagTree{}
	// Levels from the leaves up to a single root.
	type level struct{ w, h, off int }
	var levels []level
	n := 0
	for {
		levels = append(levels, level{w, h, n})
		n += w * h
		if w <= 1 && h <= 1 {
			break
		}
		w, h = (w+1)/2, (h+1)/2
	}
	t.value = make([]int32, n)
	t.low = make([]int32, n)
	t.parent = make([]int32, n)
	for i := range t.value {
		t.value[i] = ttUnknown
	}
	for li, l := range levels {
		for y := range l.h {
			for x := range l.w {
				i := l.off + y*l.w + x
				if li+1 < len(levels) {
					p := levels[li+1]
					t.parent[i] = int32(p.off + (y/2)*p.w + x/2)
				} else {
					t.parent[i] = -1
				}
			}
		}
	}
	return t
}

// decode reads bits until it knows whether the leaf's value is below
// threshold, and reports whether it is.
func (t *tagTree) decode(r *pktReader, leaf int, threshold int32) bool {
	var path [32]int32
	n := 0
	for i := int32(leaf); i >= 0 && n < len(path); i = t.parent[i] {
		path[n] = i
		n++
	}
	var low int32
	for k := n - 1; k >= 0; k-- {
		i := path[k]
		if low > t.low[i] {
			t.low[i] = low
		} else {
			low = t.low[i]
		}
		for low < threshold && low < t.value[i] {
			if r.bit() == 1 {
				t.value[i] = low
			} else {
				low++
			}
			if r.over {
				return false
			}
		}
		t.low[i] = low
	}
	return t.value[leaf] < threshold
}

// numPasses decodes the number of new coding passes (Table B.4).
func numPasses(r *pktReader) int {
	if r.bit() == 0 {
		return 1
	}
	if r.bit() == 0 {
		return 2
	}
	if v := r.bits(2); v != 3 {
		return 3 + v
	}
	if v := r.bits(5); v != 31 {
		return 6 + v
	}
	return 37 + r.bits(7)
}

func floorLog2(v int) int {
	n := 0
	for v > 1 {
		v >>= 1
		n++
	}
	return n
}

// segmentLimit is the number of passes the segment starting at pass first
// can hold: one with termination on each pass; with bypass, the first ten
// passes, then alternately a raw SPP+MRP pair and an MQ cleanup pass.
func segmentLimit(style byte, first int) int {
	switch {
	case style&cbTermAll != 0:
		return 1
	case style&cbBypass != 0:
		if first < 10 {
			return 10 - first
		}
		if first%3 == 1 {
			return 2
		}
		return 1
	}
	return 1 << 30
}

// contribution of one code-block to a packet body.
type contrib struct {
	cb     *codeblock
	seg    int
	passes int
	length int
}

// readPacket decodes the packet of layer l for one precinct whose bands
// are given, starting at data[pos]; it returns the position after it. A
// truncated packet body stops decoding cleanly: ok is false.
func readPacket(data []byte, pos int, l int, bands []*precBand, styleOf func(*precBand) byte, sop, eph bool) (next int, ok bool, err error) {
	if sop && pos+6 <= len(data) && data[pos] == 0xFF && data[pos+1] == 0x91 {
		pos += 6
	}
	if pos >= len(data) {
		return pos, false, nil
	}
	r := &pktReader{data: data, pos: pos}
	var cs []contrib
	if r.bit() == 1 {
		for _, pb := range bands {
			style := styleOf(pb)
			for bi, cb := range pb.blocks {
				var incl bool
				first := !cb.included
				if first {
					incl = pb.incl.decode(r, bi, int32(l+1))
				} else {
					incl = r.bit() == 1
				}
				if r.over {
					return pos, false, nil
				}
				if !incl {
					continue
				}
				if first {
					i := int32(1)
					for !pb.zbp.decode(r, bi, i) {
						i++
						if i > 80 || r.over {
							return pos, false, corruptf("zero bit-plane count out of range")
						}
					}
					cb.zbp = int(pb.zbp.value[bi])
					cb.included = true
				}
				n := numPasses(r)
				for r.bit() == 1 {
					cb.lblock++
					if cb.lblock > 32 {
						return pos, false, corruptf("Lblock out of range")
					}
				}
				// Split the new passes over codeword segments, each with
				// its own length field.
				segIdx := len(cb.segs) - 1
				used := 0
				if segIdx >= 0 {
					used = cb.segs[segIdx].passes
				}
				for n > 0 {
					if segIdx < 0 || used >= cb.segs[segIdx].maxPasses {
						cb.segs = append(cb.segs, segment{maxPasses: segmentLimit(style, cb.passes)})
						segIdx++
						used = 0
					}
					k := min(n, cb.segs[segIdx].maxPasses-used)
					length := r.bits(cb.lblock + floorLog2(k))
					cs = append(cs, contrib{cb: cb, seg: segIdx, passes: k, length: length})
					cb.passes += k
					used += k
					n -= k
				}
				if cb.passes > 164*8 {
					return pos, false, corruptf("too many coding passes")
				}
			}
		}
	}
	if r.over {
		return pos, false, nil
	}
	r.align()
	pos = r.pos
	if eph && pos+2 <= len(data) && data[pos] == 0xFF && data[pos+1] == 0x92 {
		pos += 2
	}
	for _, c := range cs {
		sg := &c.cb.segs[c.seg]
		if pos+c.length > len(data) {
			return len(data), false, nil
		}
		sg.data = append(sg.data, data[pos:pos+c.length]...)
		sg.passes += c.passes
		pos += c.length
	}
	return pos, true, nil
}
