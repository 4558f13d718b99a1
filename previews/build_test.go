package previews

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"sort"
)

// This file writes small DICOM Part 10 files for the tests: every
// photometric interpretation, bit depth and LUT the renderer handles can be
// built here and, where DCMTK is present, rendered by it for comparison.

type el struct {
	tag   uint32
	vr    string
	value []byte
	items [][]el // SQ only
}

func usv(v ...uint16) []byte {
	b := make([]byte, 2*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint16(b[2*i:], x)
	}
	return b
}

func pad(s string, with byte) []byte {
	b := []byte(s)
	if len(b)%2 == 1 {
		b = append(b, with)
	}
	return b
}

func cs(tag uint32, s string) el { return el{tag: tag, vr: "CS", value: pad(s, ' ')} }
func ds(tag uint32, s string) el { return el{tag: tag, vr: "DS", value: pad(s, ' ')} }
func is(tag uint32, s string) el { return el{tag: tag, vr: "IS", value: pad(s, ' ')} }
func us(tag uint32, v ...uint16) el {
	return el{tag: tag, vr: "US", value: usv(v...)}
}
func ow(tag uint32, v ...uint16) el { return el{tag: tag, vr: "OW", value: usv(v...)} }
func sq(tag uint32, items ...[]el) el {
	return el{tag: tag, vr: "SQ", items: items}
}

// encodeElems writes elements in explicit VR little endian (or big endian),
// sorted by tag, sequences with defined lengths.
func encodeElems(elems []el, bo binary.ByteOrder, implicit bool) []byte {
	sorted := append([]el(nil), elems...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].tag < sorted[j].tag })
	var buf bytes.Buffer
	for _, e := range sorted {
		val := e.value
		if e.vr == "SQ" {
			var items bytes.Buffer
			for _, it := range e.items {
				body := encodeElems(it, bo, implicit)
				putTag(&items, tagItem, bo)
				putU32(&items, uint32(len(body)), bo)
				items.Write(body)
			}
			val = items.Bytes()
		} else if bo == binary.BigEndian && (e.vr == "US" || e.vr == "OW" || e.vr == "SS") {
			val = swap16(val)
		}
		putTag(&buf, e.tag, bo)
		if implicit {
			putU32(&buf, uint32(len(val)), bo)
			buf.Write(val)
			continue
		}
		buf.WriteString(e.vr)
		if longVR(e.vr) {
			buf.Write([]byte{0, 0})
			putU32(&buf, uint32(len(val)), bo)
		} else {
			var l [2]byte
			bo.PutUint16(l[:], uint16(len(val)))
			buf.Write(l[:])
		}
		buf.Write(val)
	}
	return buf.Bytes()
}

func swap16(b []byte) []byte {
	out := make([]byte, len(b))
	for i := 0; i+1 < len(b); i += 2 {
		out[i], out[i+1] = b[i+1], b[i]
	}
	return out
}

func putTag(buf *bytes.Buffer, tag uint32, bo binary.ByteOrder) {
	var b [4]byte
	bo.PutUint16(b[0:], uint16(tag>>16))
	bo.PutUint16(b[2:], uint16(tag))
	buf.Write(b[:])
}

func putU32(buf *bytes.Buffer, v uint32, bo binary.ByteOrder) {
	var b [4]byte
	bo.PutUint32(b[:], v)
	buf.Write(b[:])
}

// buildFile writes a Part 10 file: preamble, meta group with the transfer
// syntax, the data set elements, and Pixel Data (native pixel bytes, or
// encapsulated when encap is non-nil).
func buildFile(ts string, elems []el, pixelVR string, pixel []byte, encap []byte) []byte {
	var out bytes.Buffer
	out.Write(make([]byte, 128))
	out.WriteString("DICM")
	meta := encodeElems([]el{
		{tag: 0x00020001, vr: "OB", value: []byte{0, 1}},
		{tag: 0x00020002, vr: "UI", value: pad("1.2.840.10008.5.1.4.1.1.7", 0)},
		{tag: 0x00020003, vr: "UI", value: pad("1.2.3.4", 0)},
		{tag: tagTransferSyntax, vr: "UI", value: pad(ts, 0)},
	}, binary.LittleEndian, false)
	out.Write(encodeElems([]el{{tag: 0x00020000, vr: "UL", value: binary.LittleEndian.AppendUint32(nil, uint32(len(meta)))}}, binary.LittleEndian, false))
	out.Write(meta)
	var bo binary.ByteOrder = binary.LittleEndian
	if ts == tsExplicitBE {
		bo = binary.BigEndian
	}
	var body bytes.Buffer
	implicit := ts == tsImplicitLE
	body.Write(encodeElems(elems, bo, implicit))
	if encap != nil {
		putTag(&body, tagPixelData, bo)
		body.WriteString("OB\x00\x00")
		putU32(&body, undefinedLength, bo)
		body.Write(encap)
	} else if pixel != nil {
		putTag(&body, tagPixelData, bo)
		if !implicit {
			body.WriteString(pixelVR + "\x00\x00")
		}
		putU32(&body, uint32(len(pixel)), bo)
		body.Write(pixel)
	}
	if ts == tsDeflatedLE {
		var z bytes.Buffer
		w, _ := flate.NewWriter(&z, flate.BestSpeed)
		w.Write(body.Bytes())
		w.Close()
		out.Write(z.Bytes())
	} else {
		out.Write(body.Bytes())
	}
	return out.Bytes()
}

// encapsulate builds encapsulated pixel data (PS3.5 A.4): the Basic Offset
// Table (when withBOT) and each frame split into fragments of at most
// fragSize bytes.
func encapsulate(frames [][]byte, fragSize int, withBOT bool) []byte {
	var items bytes.Buffer
	var offsets []uint32
	for _, f := range frames {
		offsets = append(offsets, uint32(items.Len()))
		for len(f) > 0 {
			n := min(fragSize, len(f))
			frag := f[:n]
			f = f[n:]
			if len(frag)%2 == 1 {
				frag = append(append([]byte(nil), frag...), 0)
			}
			putTag(&items, tagItem, binary.LittleEndian)
			putU32(&items, uint32(len(frag)), binary.LittleEndian)
			items.Write(frag)
		}
	}
	var out bytes.Buffer
	putTag(&out, tagItem, binary.LittleEndian)
	if withBOT {
		putU32(&out, uint32(4*len(offsets)), binary.LittleEndian)
		for _, o := range offsets {
			putU32(&out, o, binary.LittleEndian)
		}
	} else {
		putU32(&out, 0, binary.LittleEndian)
	}
	out.Write(items.Bytes())
	putTag(&out, tagSeqDelim, binary.LittleEndian)
	putU32(&out, 0, binary.LittleEndian)
	return out.Bytes()
}

// imageElems is the Image Pixel Module of a rows x cols image.
func imageElems(rows, cols, spp, bitsAlloc, bitsStored, highBit, pixelRep int, photometric string) []el {
	e := []el{
		{tag: 0x00080016, vr: "UI", value: pad("1.2.840.10008.5.1.4.1.1.7", 0)},
		us(tagSamplesPerPixel, uint16(spp)),
		cs(tagPhotometric, photometric),
		us(tagRows, uint16(rows)),
		us(tagColumns, uint16(cols)),
		us(tagBitsAllocated, uint16(bitsAlloc)),
		us(tagBitsStored, uint16(bitsStored)),
		us(tagHighBit, uint16(highBit)),
		us(tagPixelRepresentation, uint16(pixelRep)),
	}
	if spp == 3 {
		e = append(e, us(tagPlanarConfiguration, 0))
	}
	return e
}

// with replaces or adds elements.
func with(base []el, extra ...el) []el {
	out := make([]el, 0, len(base)+len(extra))
	for _, b := range base {
		replaced := false
		for _, x := range extra {
			if x.tag == b.tag {
				replaced = true
			}
		}
		if !replaced {
			out = append(out, b)
		}
	}
	return append(out, extra...)
}

// words16 encodes 16-bit samples little endian.
func words16(v ...int) []byte {
	b := make([]byte, 2*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(x))
	}
	return b
}

func words32(v ...int64) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(x))
	}
	return b
}
