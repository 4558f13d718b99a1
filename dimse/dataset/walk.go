package dataset

import (
	"bufio"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrMalformed reports a data set whose structure contradicts PS3.5.
var ErrMalformed = errors.New("dataset: malformed")

// Tags the walker treats specially.
const (
	tagItem              = 0xFFFEE000
	tagItemDelimitation  = 0xFFFEE00D
	tagSeqDelimitation   = 0xFFFEE0DD
	tagPixelData         = 0x7FE00010
	tagFloatPixelData    = 0x7FE00008
	tagDoublePixelData   = 0x7FE00009
	tagSOPClassUID       = 0x00080016
	tagSOPInstanceUID    = 0x00080018
	tagStudyInstanceUID  = 0x0020000D
	tagSeriesInstanceUID = 0x0020000E
	undefinedLength      = 0xFFFFFFFF
	maxDepth             = 64
	maxPickedValue       = 256
)

// Summary is what Walk learns from a data set.
type Summary struct {
	SOPClassUID       string // (0008,0016), empty when absent
	SOPInstanceUID    string // (0008,0018)
	StudyInstanceUID  string // (0020,000D)
	SeriesInstanceUID string // (0020,000E)
	Elements          int    // number of elements, nested ones included
	// HeaderLength is the number of bytes before the first top-level
	// element of group 7FE0 or above (pixel data, trailing padding,
	// signatures), or of the whole data set when it has none: everything
	// a header reader needs, without the bulk. It is zero for a deflated
	// data set, whose raw bytes do not map to the inflated stream.
	HeaderLength int64
	// PixelData reports that the first such element is Pixel Data, Float
	// Pixel Data or Double Float Pixel Data (7FE0,0010/0008/0009).
	PixelData bool
}

// Walk reads a whole data set encoded with enc from r and checks its
// structure: element headers, explicit VRs, value lengths against their
// enclosing item or sequence, undefined-length sequences and items, and
// encapsulated pixel data fragments (PS3.5 sections 7 and A.4). It holds no
// value in memory beyond the few UIDs it returns, so the data set may be any
// size. A deflated data set is inflated while walking. Every structural
// problem is reported as an error wrapping ErrMalformed.
func Walk(r io.Reader, enc Encoding) (Summary, error) {
	return walk(r, enc, 0)
}

// errStop ends an Identify walk early.
var errStop = errors.New("dataset: stop")

// Identify reads a data set from r only as far as the SOP Instance UID
// (0008,0018) and returns its SOP Class and Instance UIDs; a sender uses it to
// build the C-STORE command from the data set itself without reading the
// rest. Study and series UIDs are not filled in.
func Identify(r io.Reader, enc Encoding) (Summary, error) {
	s, err := walk(r, enc, tagSOPInstanceUID)
	if errors.Is(err, errStop) {
		err = nil
	}
	return s, err
}

func walk(r io.Reader, enc Encoding, stopAfter uint32) (Summary, error) {
	var br *bufio.Reader
	if enc.Deflated {
		fr := flate.NewReader(r)
		defer fr.Close()
		br = bufio.NewReaderSize(fr, 32*1024)
	} else if b, ok := r.(*bufio.Reader); ok {
		br = b
	} else {
		br = bufio.NewReaderSize(r, 32*1024)
	}
	w := &walker{r: br, bo: binary.LittleEndian, stopAfter: stopAfter}
	if enc.BigEndian {
		w.bo = binary.BigEndian
	}
	err := w.elements(0, true, true, enc.Implicit, 0)
	if err == nil && !w.headerDone {
		w.sum.HeaderLength, w.headerDone = w.pos, true
	}
	if enc.Deflated {
		w.sum.HeaderLength = 0
	}
	if err != nil && !errors.Is(err, ErrMalformed) && !errors.Is(err, errStop) {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("%w: truncated at byte %d", ErrMalformed, w.pos)
		} else if ce := flate.CorruptInputError(0); errors.As(err, &ce) {
			err = fmt.Errorf("%w: deflate stream: %v", ErrMalformed, err)
		}
	}
	return w.sum, err
}

type walker struct {
	r   *bufio.Reader
	bo  binary.ByteOrder
	pos int64
	sum Summary
	buf [12]byte
	// stopAfter, when not zero, ends the walk at the first top-level tag
	// beyond it.
	stopAfter uint32
	// headerDone is set once sum.HeaderLength is known.
	headerDone bool
}

func (w *walker) malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s at byte %d", ErrMalformed, fmt.Sprintf(format, args...), w.pos)
}

func (w *walker) read(b []byte) error {
	n, err := io.ReadFull(w.r, b)
	w.pos += int64(n)
	return err
}

// tag decodes the tag in the first four bytes of w.buf.
func (w *walker) tag() uint32 {
	return uint32(w.bo.Uint16(w.buf[0:]))<<16 | uint32(w.bo.Uint16(w.buf[2:]))
}

// itemHeader reads the tag and 4-byte length of an item or delimitation
// (PS3.5 7.5), which have no VR in any encoding.
func (w *walker) itemHeader() (tag, length uint32, err error) {
	if err := w.read(w.buf[:8]); err != nil {
		return 0, 0, err
	}
	return w.tag(), w.bo.Uint32(w.buf[4:8]), nil
}

func (w *walker) skip(n int64) error {
	for n > 0 {
		chunk := int(min(n, 1<<30))
		d, err := w.r.Discard(chunk)
		w.pos += int64(d)
		n -= int64(d)
		if err != nil {
			if err == io.EOF {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// elements walks elements until end (defined length) or, when undefined, an
// item delimitation (nested) or the end of the stream (top level).
func (w *walker) elements(end int64, undefined, top, implicit bool, depth int) error {
	if depth > maxDepth {
		return w.malformed("nesting deeper than %d", maxDepth)
	}
	for {
		if !undefined && w.pos >= end {
			if w.pos > end {
				return w.malformed("element overruns its item by %d bytes", w.pos-end)
			}
			return nil
		}
		if top {
			if _, err := w.r.Peek(1); err == io.EOF {
				return nil
			}
		}
		if err := w.read(w.buf[:4]); err != nil {
			return err
		}
		tag := w.tag()
		if top && w.stopAfter != 0 && tag > w.stopAfter {
			return errStop
		}
		if top && !w.headerDone && tag>>16 >= 0x7FE0 {
			w.sum.HeaderLength, w.headerDone = w.pos-4, true
			w.sum.PixelData = tag == tagPixelData || tag == tagFloatPixelData || tag == tagDoublePixelData
		}
		if tag>>16 == 0xFFFE {
			if err := w.read(w.buf[:4]); err != nil {
				return err
			}
			if tag == tagItemDelimitation && undefined && !top {
				if w.bo.Uint32(w.buf[:4]) != 0 {
					return w.malformed("item delimitation with non-zero length")
				}
				return nil
			}
			return w.malformed("unexpected (FFFE,%04X) in data set", tag&0xFFFF)
		}
		var vr string
		var length uint32
		if implicit {
			if err := w.read(w.buf[:4]); err != nil {
				return err
			}
			length = w.bo.Uint32(w.buf[:4])
		} else {
			if err := w.read(w.buf[:2]); err != nil {
				return err
			}
			vr = string(w.buf[:2])
			if !validVR(vr) {
				return w.malformed("invalid VR %q in (%04X,%04X)", vr, tag>>16, tag&0xFFFF)
			}
			if isLongVR(vr) {
				if err := w.read(w.buf[:6]); err != nil {
					return err
				}
				length = w.bo.Uint32(w.buf[2:6])
			} else {
				if err := w.read(w.buf[:2]); err != nil {
					return err
				}
				length = uint32(w.bo.Uint16(w.buf[:2]))
			}
		}
		w.sum.Elements++
		if length == undefinedLength {
			var err error
			switch {
			case tag == tagPixelData && vr != "SQ":
				err = w.encapsulated()
			case implicit || vr == "SQ":
				err = w.sequence(0, true, implicit, depth+1)
			case vr == "UN":
				// PS3.5 6.2.2: UN of undefined length holds a sequence
				// in implicit VR little endian.
				saved := w.bo
				w.bo = binary.LittleEndian
				err = w.sequence(0, true, true, depth+1)
				w.bo = saved
			case vr == "OB" || vr == "OW":
				err = w.encapsulated()
			default:
				err = w.malformed("undefined length for VR %s in (%04X,%04X)", vr, tag>>16, tag&0xFFFF)
			}
			if err != nil {
				return err
			}
			continue
		}
		if !undefined && w.pos+int64(length) > end {
			return w.malformed("(%04X,%04X) of %d bytes overruns its item", tag>>16, tag&0xFFFF, length)
		}
		if depth == 0 && isPicked(tag) {
			if length > maxPickedValue {
				return w.malformed("UID (%04X,%04X) of %d bytes", tag>>16, tag&0xFFFF, length)
			}
			v := make([]byte, length)
			if err := w.read(v); err != nil {
				return err
			}
			s := strings.TrimRight(string(v), "\x00 ")
			switch tag {
			case tagSOPClassUID:
				w.sum.SOPClassUID = s
			case tagSOPInstanceUID:
				w.sum.SOPInstanceUID = s
			case tagStudyInstanceUID:
				w.sum.StudyInstanceUID = s
			case tagSeriesInstanceUID:
				w.sum.SeriesInstanceUID = s
			}
			continue
		}
		if vr == "SQ" {
			if err := w.sequence(w.pos+int64(length), false, implicit, depth+1); err != nil {
				return err
			}
			continue
		}
		if err := w.skip(int64(length)); err != nil {
			return err
		}
	}
}

func isPicked(tag uint32) bool {
	return tag == tagSOPClassUID || tag == tagSOPInstanceUID || tag == tagStudyInstanceUID || tag == tagSeriesInstanceUID
}

// sequence walks the items of a sequence value.
func (w *walker) sequence(end int64, undefined, implicit bool, depth int) error {
	if depth > maxDepth {
		return w.malformed("nesting deeper than %d", maxDepth)
	}
	for {
		if !undefined && w.pos >= end {
			if w.pos > end {
				return w.malformed("item overruns its sequence by %d bytes", w.pos-end)
			}
			return nil
		}
		tag, length, err := w.itemHeader()
		if err != nil {
			return err
		}
		switch tag {
		case tagSeqDelimitation:
			if !undefined {
				return w.malformed("sequence delimitation in a defined-length sequence")
			}
			if length != 0 {
				return w.malformed("sequence delimitation with non-zero length")
			}
			return nil
		case tagItem:
		default:
			return w.malformed("(%04X,%04X) where an item was expected", tag>>16, tag&0xFFFF)
		}
		if length == undefinedLength {
			if err := w.elements(0, true, false, implicit, depth); err != nil {
				return err
			}
			continue
		}
		if !undefined && w.pos+int64(length) > end {
			return w.malformed("item of %d bytes overruns its sequence", length)
		}
		if err := w.elements(w.pos+int64(length), false, false, implicit, depth); err != nil {
			return err
		}
	}
}

// encapsulated walks encapsulated pixel data: items of defined length (the
// basic offset table, then fragments) closed by a sequence delimitation
// (PS3.5 A.4).
func (w *walker) encapsulated() error {
	for {
		tag, length, err := w.itemHeader()
		if err != nil {
			return err
		}
		switch tag {
		case tagSeqDelimitation:
			return nil
		case tagItem:
			if length == undefinedLength {
				return w.malformed("pixel data fragment of undefined length")
			}
			if err := w.skip(int64(length)); err != nil {
				return err
			}
		default:
			return w.malformed("(%04X,%04X) in encapsulated pixel data", tag>>16, tag&0xFFFF)
		}
	}
}

func validVR(vr string) bool {
	switch vr {
	case "AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO", "LT", "OB", "OD", "OF", "OL",
		"OV", "OW", "PN", "SH", "SL", "SQ", "SS", "ST", "SV", "TM", "UC", "UI", "UL", "UN", "UR", "US",
		"UT", "UV":
		return true
	}
	return false
}
