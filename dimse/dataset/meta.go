package dataset

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// ErrNotPart10 reports a stream that does not start with the 128-byte
// preamble and "DICM" prefix of PS3.10 section 7.1.
var ErrNotPart10 = errors.New("dataset: not a DICOM Part 10 file")

// maxMetaLength bounds the file meta information group a reader accepts.
const maxMetaLength = 64 * 1024

// FileMeta is the file meta information of PS3.10 section 7.1 (group 0002),
// reduced to the elements dicomgate reads or writes.
type FileMeta struct {
	MediaStorageSOPClassUID    string // (0002,0002)
	MediaStorageSOPInstanceUID string // (0002,0003)
	TransferSyntaxUID          string // (0002,0010)
	ImplementationClassUID     string // (0002,0012)
	ImplementationVersionName  string // (0002,0013)
	SourceAETitle              string // (0002,0016)
}

// ReadFileMeta reads the preamble, prefix and file meta information from r,
// leaving r positioned at the first byte of the data set. It returns the
// number of bytes consumed, the offset of the data set in the file.
func ReadFileMeta(r *bufio.Reader) (FileMeta, int64, error) {
	var m FileMeta
	head := make([]byte, 132)
	if _, err := io.ReadFull(r, head); err != nil {
		return m, 0, fmt.Errorf("%w: %v", ErrNotPart10, err)
	}
	if string(head[128:]) != "DICM" {
		return m, 0, ErrNotPart10
	}
	off := int64(132)
	var groupEnd int64 = -1
	for {
		if groupEnd >= 0 && off >= groupEnd {
			break
		}
		peek, err := r.Peek(6)
		if err != nil {
			if groupEnd < 0 && err == io.EOF && len(peek) == 0 {
				break
			}
			return m, off, fmt.Errorf("%w: truncated file meta information", ErrMalformed)
		}
		group := binary.LittleEndian.Uint16(peek)
		if group != 0x0002 {
			if groupEnd >= 0 {
				return m, off, fmt.Errorf("%w: file meta group length disagrees with its elements", ErrMalformed)
			}
			break
		}
		elem := binary.LittleEndian.Uint16(peek[2:])
		vr := string(peek[4:6])
		var hdr, n int
		if isLongVR(vr) {
			var b [12]byte
			if _, err := io.ReadFull(r, b[:]); err != nil {
				return m, off, fmt.Errorf("%w: truncated file meta element", ErrMalformed)
			}
			hdr, n = 12, int(binary.LittleEndian.Uint32(b[8:]))
		} else {
			var b [8]byte
			if _, err := io.ReadFull(r, b[:]); err != nil {
				return m, off, fmt.Errorf("%w: truncated file meta element", ErrMalformed)
			}
			hdr, n = 8, int(binary.LittleEndian.Uint16(b[6:]))
		}
		if n < 0 || off+int64(hdr)+int64(n) > 132+maxMetaLength {
			return m, off, fmt.Errorf("%w: file meta information longer than %d bytes", ErrMalformed, maxMetaLength)
		}
		val := make([]byte, n)
		if _, err := io.ReadFull(r, val); err != nil {
			return m, off, fmt.Errorf("%w: truncated file meta element", ErrMalformed)
		}
		off += int64(hdr + n)
		s := strings.TrimRight(string(val), "\x00 ")
		switch elem {
		case 0x0000:
			if n == 4 {
				groupEnd = off + int64(binary.LittleEndian.Uint32(val))
			}
		case 0x0002:
			m.MediaStorageSOPClassUID = s
		case 0x0003:
			m.MediaStorageSOPInstanceUID = s
		case 0x0010:
			m.TransferSyntaxUID = s
		case 0x0012:
			m.ImplementationClassUID = s
		case 0x0013:
			m.ImplementationVersionName = strings.TrimSpace(s)
		case 0x0016:
			m.SourceAETitle = strings.TrimSpace(s)
		}
	}
	if m.TransferSyntaxUID == "" {
		return m, off, fmt.Errorf("%w: file meta information without transfer syntax", ErrMalformed)
	}
	return m, off, nil
}

// ReadFileMetaFile reads the file meta information of the Part 10 file at
// path, as ReadFileMeta does.
func ReadFileMetaFile(path string) (FileMeta, error) {
	f, err := os.Open(path)
	if err != nil {
		return FileMeta{}, err
	}
	defer f.Close()
	m, _, err := ReadFileMeta(bufio.NewReader(f))
	return m, err
}

func isLongVR(vr string) bool {
	switch vr {
	case "OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV":
		return true
	}
	return false
}

// AppendFileMeta appends the 128-byte preamble, the "DICM" prefix and the
// file meta information of m (explicit VR little endian, PS3.10 7.1) to b.
func AppendFileMeta(b []byte, m *FileMeta) []byte {
	var g bytes.Buffer
	putElem := func(elem uint16, vr string, val []byte) {
		var h [8]byte
		binary.LittleEndian.PutUint16(h[0:], 0x0002)
		binary.LittleEndian.PutUint16(h[2:], elem)
		copy(h[4:], vr)
		if isLongVR(vr) {
			g.Write(h[:6])
			g.Write([]byte{0, 0})
			var l [4]byte
			binary.LittleEndian.PutUint32(l[:], uint32(len(val)))
			g.Write(l[:])
		} else {
			binary.LittleEndian.PutUint16(h[6:], uint16(len(val)))
			g.Write(h[:])
		}
		g.Write(val)
	}
	putElem(0x0001, "OB", []byte{0, 1})
	putElem(0x0002, "UI", padUID(m.MediaStorageSOPClassUID))
	putElem(0x0003, "UI", padUID(m.MediaStorageSOPInstanceUID))
	putElem(0x0010, "UI", padUID(m.TransferSyntaxUID))
	putElem(0x0012, "UI", padUID(m.ImplementationClassUID))
	if m.ImplementationVersionName != "" {
		putElem(0x0013, "SH", padText(m.ImplementationVersionName))
	}
	if m.SourceAETitle != "" {
		putElem(0x0016, "AE", padText(m.SourceAETitle))
	}
	b = append(b, make([]byte, 128)...)
	b = append(b, "DICM"...)
	b = append(b, 0x02, 0x00, 0x00, 0x00, 'U', 'L', 4, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(g.Len()))
	return append(b, g.Bytes()...)
}

func padUID(s string) []byte {
	b := []byte(s)
	if len(b)%2 == 1 {
		b = append(b, 0)
	}
	return b
}

func padText(s string) []byte {
	b := []byte(s)
	if len(b)%2 == 1 {
		b = append(b, ' ')
	}
	return b
}
