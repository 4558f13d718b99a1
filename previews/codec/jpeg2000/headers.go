package jpeg2000

// Codestream markers (T.800 Table A.2).
const (
	mSOC = 0x4F
	mCAP = 0x50
	mSIZ = 0x51
	mCOD = 0x52
	mCOC = 0x53
	mTLM = 0x55
	mPLM = 0x57
	mPLT = 0x58
	mQCD = 0x5C
	mQCC = 0x5D
	mRGN = 0x5E
	mPOC = 0x5F
	mPPM = 0x60
	mPPT = 0x61
	mCRG = 0x63
	mCOM = 0x64
	mSOT = 0x90
	mSOD = 0x93
	mEOC = 0xD9
)

// Progression orders (Table A.16).
const (
	progLRCP = iota
	progRLCP
	progRPCL
	progPCRL
	progCPRL
)

// Code-block style bits (Table A.19).
const (
	cbBypass    = 0x01
	cbReset     = 0x02
	cbTermAll   = 0x04
	cbCausal    = 0x08
	cbPredTerm  = 0x10
	cbSegSymbol = 0x20
	cbHT        = 0x40
)

type compInfo struct {
	prec   int
	signed bool
	dx, dy int
}

// codingStyle is the per-component part of COD/COC (SPcod, SPcoc).
type codingStyle struct {
	levels     int
	cbw, cbh   int // code-block size exponents
	style      byte
	reversible bool
	precincts  []byte // per resolution: PPx | PPy<<4
}

// globalStyle is the component-independent part of COD (Scod, SGcod).
type globalStyle struct {
	prog, layers int
	mct          bool
	sop, eph     bool
}

// quantStyle is QCD/QCC.
type quantStyle struct {
	style int // 0 none, 1 scalar derived, 2 scalar expounded
	guard int
	exp   []int
	mant  []int
}

// styles holds the COD/COC/QCD/QCC markers of one header (main or tile).
type styles struct {
	haveCOD bool
	glob    globalStyle
	cod     codingStyle
	coc     []*codingStyle
	qcd     *quantStyle
	qcc     []*quantStyle
}

type tile struct {
	index int
	st    styles
	data  []byte
	parts int
}

type header struct {
	x0, y0, x1, y1   int // image area on the reference grid
	tw, th, tx0, ty0 int // tile size and origin
	ntx, nty         int
	comps            []compInfo
	main             styles
	tiles            []*tile // by tile index; nil when absent
}

func newStyles(nc int) styles {
	return styles{coc: make([]*codingStyle, nc), qcc: make([]*quantStyle, nc)}
}

// reader walks marker segments.
type reader struct {
	b   []byte
	pos int
}

func (r *reader) marker() (byte, error) {
	if r.pos+2 > len(r.b) || r.b[r.pos] != 0xFF {
		return 0, corruptf("expected marker at offset %d", r.pos)
	}
	m := r.b[r.pos+1]
	r.pos += 2
	return m, nil
}

func (r *reader) segment() ([]byte, error) {
	if r.pos+2 > len(r.b) {
		return nil, corruptf("truncated marker segment")
	}
	n := be16(r.b[r.pos:])
	if n < 2 || r.pos+n > len(r.b) {
		return nil, corruptf("marker segment length %d exceeds data", n)
	}
	seg := r.b[r.pos+2 : r.pos+n]
	r.pos += n
	return seg, nil
}

func parseHeaders(cs []byte) (*header, error) {
	r := &reader{b: cs}
	m, err := r.marker()
	if err != nil || m != mSOC {
		return nil, corruptf("missing SOC")
	}
	m, err = r.marker()
	if err != nil || m != mSIZ {
		return nil, corruptf("SIZ must follow SOC")
	}
	seg, err := r.segment()
	if err != nil {
		return nil, err
	}
	h := &header{}
	if err := h.parseSIZ(seg); err != nil {
		return nil, err
	}
	h.main = newStyles(len(h.comps))
	// Main header.
	for {
		m, err := r.marker()
		if err != nil {
			return nil, err
		}
		if m == mSOT {
			r.pos -= 2
			break
		}
		if m == mEOC {
			return nil, corruptf("no tile in codestream")
		}
		seg, err := r.segment()
		if err != nil {
			return nil, err
		}
		if err := h.parseStyleMarker(m, seg, &h.main); err != nil {
			return nil, err
		}
	}
	if !h.main.haveCOD || h.main.qcd == nil {
		return nil, corruptf("main header lacks COD or QCD")
	}
	// Tile-parts.
	for r.pos < len(cs) {
		sot := r.pos
		m, err := r.marker()
		if err != nil {
			return nil, err
		}
		if m == mEOC {
			break
		}
		if m != mSOT {
			return nil, corruptf("expected SOT, found 0xFF%02X", m)
		}
		seg, err := r.segment()
		if err != nil {
			return nil, err
		}
		if len(seg) != 8 {
			return nil, corruptf("SOT length %d", len(seg))
		}
		idx := be16(seg)
		psot := int(be32(seg[2:]))
		if idx >= len(h.tiles) {
			return nil, corruptf("tile index %d of %d", idx, len(h.tiles))
		}
		end := len(cs)
		if psot != 0 {
			if psot < 14 {
				return nil, corruptf("Psot %d", psot)
			}
			// A truncated last tile-part decodes as far as it goes.
			end = min(sot+psot, len(cs))
		} else if end >= 2 && cs[end-2] == 0xFF && cs[end-1] == mEOC {
			end -= 2
		}
		t := h.tiles[idx]
		if t == nil {
			t = &tile{index: idx, st: newStyles(len(h.comps))}
			h.tiles[idx] = t
		}
		t.parts++
		for {
			m, err := r.marker()
			if err != nil {
				return nil, err
			}
			if m == mSOD {
				break
			}
			seg, err := r.segment()
			if err != nil {
				return nil, err
			}
			if r.pos > end {
				return nil, corruptf("tile-part header overruns Psot")
			}
			if err := h.parseStyleMarker(m, seg, &t.st); err != nil {
				return nil, err
			}
		}
		if r.pos > end {
			return nil, corruptf("tile-part header overruns Psot")
		}
		t.data = append(t.data, cs[r.pos:end]...)
		r.pos = end
	}
	return h, nil
}

func (h *header) parseSIZ(s []byte) error {
	if len(s) < 36 {
		return corruptf("SIZ too short")
	}
	// Rsiz (capabilities) is informational: HTJ2K announces itself with a
	// CAP marker and HT code-block styles, both rejected where parsed.
	g := func(i int) int { return int(be32(s[2+4*i:])) }
	h.x1, h.y1, h.x0, h.y0 = g(0), g(1), g(2), g(3)
	h.tw, h.th, h.tx0, h.ty0 = g(4), g(5), g(6), g(7)
	nc := be16(s[34:])
	if nc < 1 || len(s) != 36+3*nc {
		return corruptf("SIZ with %d components and length %d", nc, len(s))
	}
	if h.x0 >= h.x1 || h.y0 >= h.y1 || h.tw == 0 || h.th == 0 || h.tx0 > h.x0 || h.ty0 > h.y0 ||
		h.tx0+h.tw <= h.x0 || h.ty0+h.th <= h.y0 {
		return corruptf("image/tile geometry %d,%d-%d,%d tile %dx%d at %d,%d", h.x0, h.y0, h.x1, h.y1, h.tw, h.th, h.tx0, h.ty0)
	}
	w, ht := h.x1-h.x0, h.y1-h.y0
	if w > MaxSamples || ht > MaxSamples || w*ht > MaxSamples/nc {
		return unsupportedf("%d×%d×%d samples exceed limit %d", w, ht, nc, MaxSamples)
	}
	h.ntx = (h.x1 - h.tx0 + h.tw - 1) / h.tw
	h.nty = (h.y1 - h.ty0 + h.th - 1) / h.th
	// Isot is 16 bits, so a codestream cannot address more tiles.
	if h.ntx > 65535 || h.nty > 65535 || h.ntx*h.nty > 65535 {
		return unsupportedf("%d×%d tiles", h.ntx, h.nty)
	}
	h.tiles = make([]*tile, h.ntx*h.nty)
	h.comps = make([]compInfo, nc)
	for i := range nc {
		c := s[36+3*i:]
		ci := compInfo{prec: int(c[0]&0x7F) + 1, signed: c[0]&0x80 != 0, dx: int(c[1]), dy: int(c[2])}
		if ci.dx == 0 || ci.dy == 0 {
			return corruptf("component %d subsampling 0", i)
		}
		if ci.prec > 38 {
			return corruptf("component %d precision %d", i, ci.prec)
		}
		h.comps[i] = ci
	}
	return nil
}

// compIndex reads a component index of a COC/QCC/RGN (one byte when
// Csiz < 257, else two).
func (h *header) compIndex(s []byte) (c, n int, err error) {
	if len(h.comps) < 257 {
		if len(s) < 1 {
			return 0, 0, corruptf("segment too short")
		}
		c, n = int(s[0]), 1
	} else {
		if len(s) < 2 {
			return 0, 0, corruptf("segment too short")
		}
		c, n = be16(s), 2
	}
	if c >= len(h.comps) {
		return 0, 0, corruptf("component %d of %d", c, len(h.comps))
	}
	return c, n, nil
}

func (h *header) parseStyleMarker(m byte, s []byte, st *styles) error {
	switch m {
	case mCOD:
		if len(s) < 10 {
			return corruptf("COD too short")
		}
		scod := s[0]
		if scod&^0x07 != 0 {
			return unsupportedf("COD Scod 0x%02X", scod)
		}
		g := globalStyle{prog: int(s[1]), layers: be16(s[2:]), mct: s[4] == 1, sop: scod&2 != 0, eph: scod&4 != 0}
		if g.prog > progCPRL {
			return corruptf("progression order %d", g.prog)
		}
		if g.layers == 0 {
			return corruptf("zero layers")
		}
		if s[4] > 1 {
			return unsupportedf("multiple component transform %d", s[4])
		}
		cs, err := parseSPcod(s[5:], scod&1 != 0)
		if err != nil {
			return err
		}
		st.haveCOD, st.glob, st.cod = true, g, cs
	case mCOC:
		c, n, err := h.compIndex(s)
		if err != nil {
			return err
		}
		if len(s) < n+1 {
			return corruptf("COC too short")
		}
		cs, err := parseSPcod(s[n+1:], s[n]&1 != 0)
		if err != nil {
			return err
		}
		st.coc[c] = &cs
	case mQCD:
		q, err := parseQuant(s)
		if err != nil {
			return err
		}
		st.qcd = q
	case mQCC:
		c, n, err := h.compIndex(s)
		if err != nil {
			return err
		}
		q, err := parseQuant(s[n:])
		if err != nil {
			return err
		}
		st.qcc[c] = q
	case mCAP:
		return unsupportedf("CAP marker (HTJ2K)")
	case mRGN:
		return unsupportedf("region of interest (RGN)")
	case mPOC:
		return unsupportedf("progression order change (POC)")
	case mPPM, mPPT:
		return unsupportedf("packed packet headers (PPM/PPT)")
	case mTLM, mPLM, mPLT, mCRG, mCOM:
		// Informational only.
	default:
		if m < 0x30 || m > 0x3F {
			return corruptf("unexpected marker 0xFF%02X in header", m)
		}
	}
	return nil
}

func parseSPcod(s []byte, custom bool) (codingStyle, error) {
	var cs codingStyle
	if len(s) < 5 {
		return cs, corruptf("SPcod too short")
	}
	cs.levels = int(s[0])
	cs.cbw, cs.cbh = int(s[1]&0x0F)+2, int(s[2]&0x0F)+2
	cs.style = s[3]
	if cs.levels > 32 {
		return cs, corruptf("%d decomposition levels", cs.levels)
	}
	if s[1] > 8 || s[2] > 8 || cs.cbw+cs.cbh > 12 {
		return cs, corruptf("code-block size 2^%d×2^%d", cs.cbw, cs.cbh)
	}
	if cs.style&cbHT != 0 {
		return cs, unsupportedf("HT code-blocks (HTJ2K)")
	}
	if cs.style&0x80 != 0 {
		return cs, unsupportedf("code-block style 0x%02X", cs.style)
	}
	switch s[4] {
	case 0:
	case 1:
		cs.reversible = true
	default:
		return cs, unsupportedf("wavelet transform %d (Part 2)", s[4])
	}
	cs.precincts = make([]byte, cs.levels+1)
	if custom {
		if len(s) != 5+cs.levels+1 {
			return cs, corruptf("precinct sizes: %d bytes for %d levels", len(s)-5, cs.levels)
		}
		copy(cs.precincts, s[5:])
		for r, p := range cs.precincts {
			if r > 0 && (p&0x0F == 0 || p>>4 == 0) {
				return cs, corruptf("precinct size 0x%02X at resolution %d", p, r)
			}
		}
	} else {
		if len(s) != 5 {
			return cs, corruptf("SPcod length %d", len(s))
		}
		for r := range cs.precincts {
			cs.precincts[r] = 0xFF
		}
	}
	return cs, nil
}

func parseQuant(s []byte) (*quantStyle, error) {
	if len(s) < 1 {
		return nil, corruptf("empty quantisation segment")
	}
	q := &quantStyle{style: int(s[0] & 0x1F), guard: int(s[0] >> 5)}
	b := s[1:]
	switch q.style {
	case 0:
		if len(b) == 0 {
			return nil, corruptf("no exponents")
		}
		for _, v := range b {
			q.exp = append(q.exp, int(v>>3))
			q.mant = append(q.mant, 0)
		}
	case 1, 2:
		if len(b) < 2 || len(b)%2 != 0 || (q.style == 1 && len(b) != 2) {
			return nil, corruptf("quantisation step sizes: %d bytes", len(b))
		}
		for i := 0; i < len(b); i += 2 {
			v := be16(b[i:])
			q.exp = append(q.exp, v>>11)
			q.mant = append(q.mant, v&0x7FF)
		}
	default:
		return nil, corruptf("quantisation style %d", q.style)
	}
	return q, nil
}

// tileStyles resolves the coding and quantisation style of every component
// of a tile (precedence: tile COC, tile COD, main COC, main COD; likewise for
// QCC/QCD).
func (h *header) tileStyles(t *tile) (globalStyle, []codingStyle, []*quantStyle) {
	g := h.main.glob
	if t.st.haveCOD {
		g = t.st.glob
	}
	nc := len(h.comps)
	cs := make([]codingStyle, nc)
	qs := make([]*quantStyle, nc)
	for c := range nc {
		switch {
		case t.st.coc[c] != nil:
			cs[c] = *t.st.coc[c]
		case t.st.haveCOD:
			cs[c] = t.st.cod
		case h.main.coc[c] != nil:
			cs[c] = *h.main.coc[c]
		default:
			cs[c] = h.main.cod
		}
		switch {
		case t.st.qcc[c] != nil:
			qs[c] = t.st.qcc[c]
		case t.st.qcd != nil:
			qs[c] = t.st.qcd
		case h.main.qcc[c] != nil:
			qs[c] = h.main.qcc[c]
		default:
			qs[c] = h.main.qcd
		}
	}
	return g, cs, qs
}
