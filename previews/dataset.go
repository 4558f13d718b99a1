package previews

import (
	"bufio"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	dicomds "dicomgate/dimse/dataset"
)

// Transfer syntax UIDs the renderer tells apart, by the short names this
// package uses; dimse/dataset holds the table of PS3.5 section 10.
const (
	tsImplicitLE      = dicomds.ImplicitVRLittleEndian
	tsExplicitLE      = dicomds.ExplicitVRLittleEndian
	tsDeflatedLE      = dicomds.DeflatedExplicitVRLittleEndian
	tsExplicitBE      = dicomds.ExplicitVRBigEndian
	tsJPEGBaseline    = dicomds.JPEGBaseline8Bit
	tsJPEGExtended    = dicomds.JPEGExtended12Bit
	tsJPEGLossless    = dicomds.JPEGLossless
	tsJPEGLosslessSV1 = dicomds.JPEGLosslessSV1
	tsJPEGLSLossless  = dicomds.JPEGLSLossless
	tsJPEGLSNear      = dicomds.JPEGLSNearLossless
	tsJPEG2000Lossles = dicomds.JPEG2000Lossless
	tsJPEG2000        = dicomds.JPEG2000
	tsRLE             = dicomds.RLELossless
)

// Tags the renderer reads, as group<<16 | element.
const (
	tagTransferSyntax      = 0x00020010
	tagSamplesPerPixel     = 0x00280002
	tagPhotometric         = 0x00280004
	tagPlanarConfiguration = 0x00280006
	tagNumberOfFrames      = 0x00280008
	tagRows                = 0x00280010
	tagColumns             = 0x00280011
	tagPixelSpacing        = 0x00280030
	tagPixelAspectRatio    = 0x00280034
	tagBitsAllocated       = 0x00280100
	tagBitsStored          = 0x00280101
	tagHighBit             = 0x00280102
	tagPixelRepresentation = 0x00280103
	tagWindowCenter        = 0x00281050
	tagWindowWidth         = 0x00281051
	tagRescaleIntercept    = 0x00281052
	tagRescaleSlope        = 0x00281053
	tagVOILUTFunction      = 0x00281056
	tagRedDescriptor       = 0x00281101
	tagGreenDescriptor     = 0x00281102
	tagBlueDescriptor      = 0x00281103
	tagRedData             = 0x00281201
	tagGreenData           = 0x00281202
	tagBlueData            = 0x00281203
	tagSegRedData          = 0x00281221
	tagSegGreenData        = 0x00281222
	tagSegBlueData         = 0x00281223
	tagModalityLUTSequence = 0x00283000
	tagLUTDescriptor       = 0x00283002
	tagModalityLUTType     = 0x00283004
	tagLUTData             = 0x00283006
	tagVOILUTSequence      = 0x00283010
	tagExtendedOffsetTable = 0x7FE00001
	tagExtendedOffsetLens  = 0x7FE00002
	tagFloatPixelData      = 0x7FE00008
	tagDoublePixelData     = 0x7FE00009
	tagPixelData           = 0x7FE00010
	tagItem                = 0xFFFEE000
	tagItemDelim           = 0xFFFEE00D
	tagSeqDelim            = 0xFFFEE0DD
)

const (
	undefinedLength = 0xFFFFFFFF
	// maxKeptValue bounds the value of any element kept in memory. The
	// largest element the renderer needs is a 16-bit LUT of 65536 entries;
	// the extended offset table is bounded separately.
	maxKeptValue = 1 << 18
	// maxDepth bounds sequence nesting so hostile files cannot recurse
	// without end.
	maxDepth = 16
)

// element is one parsed data element. Values are kept only for the tags the
// renderer needs; everything else is skipped without being read into memory.
type element struct {
	vr    string
	value []byte
	items []*dataset
}

// dataset is the subset of a DICOM data set the renderer needs.
type dataset struct {
	elems     map[uint32]*element
	byteOrder binary.ByteOrder
}

func newDataset(bo binary.ByteOrder) *dataset {
	return &dataset{elems: make(map[uint32]*element), byteOrder: bo}
}

// pixelLocation says where the top-level Pixel Data element's value starts in
// the data set stream and how long it is (undefinedLength when encapsulated).
type pixelLocation struct {
	offset int64
	length uint32
	vr     string
}

// stream is a counting reader over the data set's bytes that can skip
// forward cheaply when the underlying reader can seek.
type stream struct {
	br     *bufio.Reader
	src    io.Reader
	seeker io.Seeker // nil when skipping must read (deflated data)
	pos    int64
	base   int64 // file offset of the first byte of src
	limit  int64 // file size when known, else -1
}

func newStream(r io.Reader, seeker io.Seeker, base, limit int64) *stream {
	return &stream{br: bufio.NewReaderSize(r, 16<<10), src: r, seeker: seeker, pos: base, base: base, limit: limit}
}

func (s *stream) read(p []byte) error {
	n, err := io.ReadFull(s.br, p)
	s.pos += int64(n)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: truncated at byte %d", ErrCorrupt, s.pos)
		}
		return fmt.Errorf("%w: read: %w", ErrCorrupt, err)
	}
	return nil
}

func (s *stream) peek(n int) ([]byte, error) {
	return s.br.Peek(n)
}

func (s *stream) skip(n int64) error {
	if n < 0 {
		return fmt.Errorf("%w: negative length", ErrCorrupt)
	}
	if s.limit >= 0 && s.pos+n > s.limit {
		return fmt.Errorf("%w: element of %d bytes at byte %d runs past the end of the file", ErrCorrupt, n, s.pos)
	}
	if s.seeker != nil && n > int64(s.br.Buffered()) {
		if _, err := s.seeker.Seek(s.pos+n-s.base, io.SeekStart); err != nil {
			return fmt.Errorf("%w: seek: %w", ErrCorrupt, err)
		}
		s.br.Reset(s.src)
		s.pos += n
		return nil
	}
	d, err := s.br.Discard(int(min(n, 1<<62)))
	s.pos += int64(d)
	if err != nil {
		return fmt.Errorf("%w: truncated at byte %d", ErrCorrupt, s.pos)
	}
	return nil
}

// header is the Part 10 file header: where the data set starts and how it is
// encoded.
type header struct {
	transferSyntax string
	datasetOffset  int64
	explicit       bool
	bigEndian      bool
	deflated       bool
}

// readHeader reads the 128-byte preamble, "DICM" and the File Meta
// Information group (PS3.10 section 7.1). Files without a preamble or meta
// group are accepted the way DCMTK accepts them: the encoding is guessed
// from the first element.
func readHeader(r io.ReaderAt, size int64) (*header, *dataset, error) {
	var pre [132]byte
	n, _ := r.ReadAt(pre[:], 0)
	start := int64(0)
	switch {
	case n == 132 && string(pre[128:132]) == "DICM":
		start = 132
	case n >= 8 && pre[0] == 0x02 && pre[1] == 0x00:
		// Meta group without preamble.
	default:
		return guessHeader(pre[:n])
	}
	sr := io.NewSectionReader(r, start, size-start)
	s := newStream(sr, nil, start, size)
	meta := newDataset(binary.LittleEndian)
	p := &parser{s: s, explicit: true, bo: binary.LittleEndian}
	for {
		b, err := s.peek(2)
		if err != nil || binary.LittleEndian.Uint16(b) != 0x0002 {
			break
		}
		if _, err := p.readElement(meta, 0, true, true); err != nil {
			return nil, nil, err
		}
	}
	h := &header{datasetOffset: s.pos}
	if e := meta.elems[tagTransferSyntax]; e != nil {
		h.transferSyntax = cleanUID(e.value)
	}
	if h.transferSyntax == "" {
		// PS3.10 requires it, but DCMTK and pydicom both fall back to
		// looking at the data set; do the same.
		var b [8]byte
		m, _ := r.ReadAt(b[:], h.datasetOffset)
		if m < 8 {
			return nil, nil, fmt.Errorf("%w: file meta information has no transfer syntax", ErrCorrupt)
		}
		h.transferSyntax = tsImplicitLE
		if b[4] >= 'A' && b[4] <= 'Z' && b[5] >= 'A' && b[5] <= 'Z' {
			h.transferSyntax, h.explicit = tsExplicitLE, true
		}
		return h, meta, nil
	}
	// A transfer syntax the table does not know is taken, like every
	// encapsulated one, to encode the data set as explicit VR little endian.
	ts, _ := dicomds.LookupTransferSyntax(h.transferSyntax)
	h.explicit, h.bigEndian, h.deflated = !ts.Implicit, ts.BigEndian, ts.Deflated
	return h, meta, nil
}

// guessHeader decides the encoding of a data set that has no meta group by
// looking at its first element: a group number in the wrong byte order means
// big endian, two upper-case letters after the tag mean explicit VR.
func guessHeader(b []byte) (*header, *dataset, error) {
	if len(b) < 8 {
		return nil, nil, fmt.Errorf("%w: too short", ErrNotDICOM)
	}
	h := &header{}
	groupLE := binary.LittleEndian.Uint16(b)
	groupBE := binary.BigEndian.Uint16(b)
	vr := b[4:6]
	explicitVR := vr[0] >= 'A' && vr[0] <= 'Z' && vr[1] >= 'A' && vr[1] <= 'Z'
	switch {
	case groupLE >= 0x0008 && groupLE <= 0x0010 && groupLE%2 == 0:
		h.explicit = explicitVR
		h.transferSyntax = tsImplicitLE
		if explicitVR {
			h.transferSyntax = tsExplicitLE
		}
	case groupBE >= 0x0008 && groupBE <= 0x0010 && groupBE%2 == 0 && explicitVR:
		h.explicit, h.bigEndian = true, true
		h.transferSyntax = tsExplicitBE
	default:
		return nil, nil, fmt.Errorf("%w: no DICM prefix and no recognisable first element", ErrNotDICOM)
	}
	return h, newDataset(binary.LittleEndian), nil
}

func cleanUID(b []byte) string {
	return strings.TrimRight(string(b), "\x00 ")
}

// parser reads data elements (PS3.5 section 7) from a stream.
type parser struct {
	s        *stream
	explicit bool
	bo       binary.ByteOrder
	pixel    *pixelLocation // set when the top-level Pixel Data element is reached
}

// longVR reports whether an explicit VR has the 4-byte length form.
func longVR(vr string) bool {
	switch vr {
	case "OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV":
		return true
	}
	return false
}

// keep reports whether the value of a top-level tag is needed by the
// renderer. Inside the sequences the renderer reads every small value is kept.
func keep(tag uint32) bool {
	g := tag >> 16
	return g == 0x0002 || g == 0x0028 || tag == tagExtendedOffsetTable || tag == tagExtendedOffsetLens
}

// sequenceTag reports whether the renderer needs the items of a sequence.
func sequenceTag(tag uint32) bool {
	return tag == tagModalityLUTSequence || tag == tagVOILUTSequence
}

// errPixelData stops the top-level parse at the Pixel Data element.
var errPixelData = errors.New("pixel data reached")

// readElement reads one element into ds. At top level it stops with
// errPixelData on the Pixel Data element, leaving the stream at its value.
func (p *parser) readElement(ds *dataset, depth int, meta, keepAll bool) (uint32, error) {
	var b [8]byte
	if err := p.s.read(b[:4]); err != nil {
		return 0, err
	}
	bo := p.bo
	if meta {
		bo = binary.LittleEndian
	}
	tag := uint32(bo.Uint16(b[0:]))<<16 | uint32(bo.Uint16(b[2:]))
	var vr string
	var length uint32
	explicit := p.explicit || meta
	if tag>>16 == 0xFFFE {
		explicit = false // item tags never carry a VR
	}
	if explicit {
		if err := p.s.read(b[4:6]); err != nil {
			return 0, err
		}
		vr = string(b[4:6])
		if longVR(vr) {
			if err := p.s.read(b[:6]); err != nil {
				return 0, err
			}
			length = bo.Uint32(b[2:6])
		} else {
			if err := p.s.read(b[:2]); err != nil {
				return 0, err
			}
			length = uint32(bo.Uint16(b[:2]))
		}
	} else {
		if err := p.s.read(b[:4]); err != nil {
			return 0, err
		}
		length = bo.Uint32(b[:4])
		if sequenceTag(tag) {
			vr = "SQ"
		}
	}
	if tag == tagItemDelim || tag == tagSeqDelim {
		return tag, nil
	}
	if depth == 0 && !meta && (tag == tagPixelData || tag == tagFloatPixelData || tag == tagDoublePixelData) {
		ds.elems[tag] = &element{vr: vr}
		p.pixel = &pixelLocation{offset: p.s.pos, length: length, vr: vr}
		return tag, errPixelData
	}
	// Undefined length means a sequence (or UN holding an implicit VR
	// sequence, PS3.5 section 6.2.2).
	if length == undefinedLength || vr == "SQ" {
		want := keepAll || (depth == 0 && sequenceTag(tag))
		items, err := p.readSequence(length, depth+1, vr == "UN", want)
		if err != nil {
			return 0, err
		}
		if want {
			ds.elems[tag] = &element{vr: "SQ", items: items}
		}
		return tag, nil
	}
	if (keepAll || (depth == 0 && keep(tag))) && length <= maxKeptValue {
		v := make([]byte, length)
		if err := p.s.read(v); err != nil {
			return 0, err
		}
		ds.elems[tag] = &element{vr: vr, value: v}
		return tag, nil
	}
	return tag, p.s.skip(int64(length))
}

// readSequence reads the items of a sequence of the given length (or
// undefined length). Items are parsed into data sets only when wanted.
func (p *parser) readSequence(length uint32, depth int, implicitUN, want bool) ([]*dataset, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("%w: sequences nested deeper than %d", ErrCorrupt, maxDepth)
	}
	sub := p
	if implicitUN {
		sub = &parser{s: p.s, explicit: false, bo: binary.LittleEndian}
	}
	end := int64(-1)
	if length != undefinedLength {
		end = p.s.pos + int64(length)
	}
	var items []*dataset
	for end < 0 || p.s.pos < end {
		var b [8]byte
		if err := p.s.read(b[:]); err != nil {
			return nil, err
		}
		tag := uint32(p.bo.Uint16(b[0:]))<<16 | uint32(p.bo.Uint16(b[2:]))
		ilen := p.bo.Uint32(b[4:])
		if tag == tagSeqDelim {
			break
		}
		if tag != tagItem {
			return nil, fmt.Errorf("%w: expected item tag in sequence, found (%04X,%04X)", ErrCorrupt, tag>>16, tag&0xFFFF)
		}
		item := newDataset(p.bo)
		iend := int64(-1)
		if ilen != undefinedLength {
			iend = p.s.pos + int64(ilen)
		}
		for iend < 0 || p.s.pos < iend {
			t, err := sub.readElement(item, depth, false, want)
			if err != nil {
				return nil, err
			}
			if t == tagItemDelim {
				break
			}
		}
		if want {
			items = append(items, item)
		}
	}
	return items, nil
}

// parseDataset reads the data set from s until the top-level Pixel Data
// element (whose value position it returns) or the end of the stream.
func parseDataset(s *stream, h *header) (*dataset, *pixelLocation, error) {
	bo := binary.ByteOrder(binary.LittleEndian)
	if h.bigEndian {
		bo = binary.BigEndian
	}
	ds := newDataset(bo)
	p := &parser{s: s, explicit: h.explicit, bo: bo}
	for {
		if b, _ := s.peek(8); len(b) < 8 {
			// End of the data set; a few stray bytes of padding are not
			// worth refusing the file for.
			return ds, nil, nil
		}
		_, err := p.readElement(ds, 0, false, false)
		if errors.Is(err, errPixelData) {
			return ds, p.pixel, nil
		}
		if err != nil {
			return ds, nil, err
		}
	}
}

// openDataset returns a stream over the data set bytes, inflating deflated
// data sets (PS3.5 section A.5). Offsets in the stream count data set bytes
// from the start of the file for non-deflated files, and inflated bytes
// after the meta group for deflated ones.
func openDataset(r io.ReaderAt, size int64, h *header) *stream {
	sr := io.NewSectionReader(r, h.datasetOffset, size-h.datasetOffset)
	if h.deflated {
		return newStream(flate.NewReader(sr), nil, 0, -1)
	}
	return newStream(sr, sr, h.datasetOffset, size)
}

// String values ---------------------------------------------------------

func (ds *dataset) has(tag uint32) bool { return ds.elems[tag] != nil }

func (ds *dataset) str(tag uint32) string {
	e := ds.elems[tag]
	if e == nil {
		return ""
	}
	return strings.TrimRight(strings.TrimLeft(string(e.value), " "), "\x00 ")
}

// strs returns the backslash-separated values of a string element.
func (ds *dataset) strs(tag uint32) []string {
	s := ds.str(tag)
	if s == "" {
		return nil
	}
	parts := strings.Split(s, "\\")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

// us returns the first value of a US element, or def when absent.
func (ds *dataset) us(tag uint32, def int) int {
	e := ds.elems[tag]
	if e == nil || len(e.value) < 2 {
		return def
	}
	return int(ds.byteOrder.Uint16(e.value))
}

// words returns a US/SS/OW element's values as 16-bit words.
func (ds *dataset) words(tag uint32) []uint16 {
	e := ds.elems[tag]
	if e == nil {
		return nil
	}
	return wordsOf(e.value, ds.byteOrder)
}

func wordsOf(v []byte, bo binary.ByteOrder) []uint16 {
	out := make([]uint16, len(v)/2)
	for i := range out {
		out[i] = bo.Uint16(v[2*i:])
	}
	return out
}

func (ds *dataset) raw(tag uint32) []byte {
	if e := ds.elems[tag]; e != nil {
		return e.value
	}
	return nil
}

func (ds *dataset) items(tag uint32) []*dataset {
	if e := ds.elems[tag]; e != nil {
		return e.items
	}
	return nil
}
