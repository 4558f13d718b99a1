package dimse

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// Command field values, (0000,0100), PS3.7 annex E.
const (
	CommandCStoreRQ  uint16 = 0x0001
	CommandCStoreRSP uint16 = 0x8001
	CommandCEchoRQ   uint16 = 0x0030
	CommandCEchoRSP  uint16 = 0x8030
)

// Priority values, (0000,0700).
const (
	PriorityMedium uint16 = 0x0000
	PriorityHigh   uint16 = 0x0001
	PriorityLow    uint16 = 0x0002
)

// dataSetAbsent is the Command Data Set Type value meaning "no data set".
const dataSetAbsent uint16 = 0x0101

// maxCommandLength bounds an incoming command set: real ones are a few
// hundred bytes.
const maxCommandLength = 64 * 1024

// ErrBadCommand reports a command set that cannot be decoded.
var ErrBadCommand = errors.New("dimse: malformed command set")

// Command is a DIMSE command set (group 0000), PS3.7 section 9.3 and annex
// E, reduced to the fields of the C-ECHO and C-STORE messages.
type Command struct {
	AffectedSOPClassUID       string // (0000,0002)
	CommandField              uint16 // (0000,0100)
	MessageID                 uint16 // (0000,0110)
	MessageIDBeingRespondedTo uint16 // (0000,0120)
	Priority                  uint16 // (0000,0700)
	HasDataSet                bool   // (0000,0800) != 0101
	Status                    Status // (0000,0900)
	ErrorComment              string // (0000,0902)
	AffectedSOPInstanceUID    string // (0000,1000)
	MoveOriginatorAETitle     string // (0000,1030)
	MoveOriginatorMessageID   uint16 // (0000,1031)
}

// IsResponse reports whether the command field is a response.
func (c *Command) IsResponse() bool { return c.CommandField&0x8000 != 0 }

// Encode returns the command set in implicit VR little endian, the encoding
// PS3.7 section 6.3.1 mandates, group length first.
func (c *Command) Encode() []byte {
	var b []byte
	str := func(tag uint32, s string, pad byte) {
		v := []byte(s)
		if len(v)%2 == 1 {
			v = append(v, pad)
		}
		b = appendElem(b, tag, v)
	}
	u16 := func(tag uint32, v uint16) {
		b = appendElem(b, tag, binary.LittleEndian.AppendUint16(nil, v))
	}
	if c.AffectedSOPClassUID != "" {
		str(0x00000002, c.AffectedSOPClassUID, 0)
	}
	u16(0x00000100, c.CommandField)
	if c.IsResponse() {
		u16(0x00000120, c.MessageIDBeingRespondedTo)
	} else {
		u16(0x00000110, c.MessageID)
	}
	if c.CommandField == CommandCStoreRQ {
		u16(0x00000700, c.Priority)
	}
	if c.HasDataSet {
		u16(0x00000800, 0x0000)
	} else {
		u16(0x00000800, dataSetAbsent)
	}
	if c.IsResponse() {
		u16(0x00000900, uint16(c.Status))
		if c.ErrorComment != "" {
			str(0x00000902, comment(c.ErrorComment), ' ')
		}
	}
	if c.AffectedSOPInstanceUID != "" {
		str(0x00001000, c.AffectedSOPInstanceUID, 0)
	}
	if c.MoveOriginatorAETitle != "" {
		str(0x00001030, c.MoveOriginatorAETitle, ' ')
		u16(0x00001031, c.MoveOriginatorMessageID)
	}
	out := appendElem(nil, 0x00000000, binary.LittleEndian.AppendUint32(nil, uint32(len(b))))
	return append(out, b...)
}

func appendElem(b []byte, tag uint32, v []byte) []byte {
	b = binary.LittleEndian.AppendUint16(b, uint16(tag>>16))
	b = binary.LittleEndian.AppendUint16(b, uint16(tag))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(v)))
	return append(b, v...)
}

// DecodeCommand decodes a command set in implicit VR little endian. Unknown
// elements are skipped; elements must lie in group 0000 and fit the buffer.
func DecodeCommand(b []byte) (*Command, error) {
	if len(b) > maxCommandLength {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadCommand, len(b))
	}
	c := &Command{HasDataSet: true}
	var sawField, sawDataSetType bool
	for len(b) > 0 {
		if len(b) < 8 {
			return nil, fmt.Errorf("%w: truncated element header", ErrBadCommand)
		}
		group, elem := binary.LittleEndian.Uint16(b), binary.LittleEndian.Uint16(b[2:])
		n := binary.LittleEndian.Uint32(b[4:])
		if group != 0x0000 {
			return nil, fmt.Errorf("%w: element (%04X,%04X) outside group 0000", ErrBadCommand, group, elem)
		}
		if uint64(n) > uint64(len(b)-8) {
			return nil, fmt.Errorf("%w: (0000,%04X) length %d exceeds the command set", ErrBadCommand, elem, n)
		}
		v := b[8 : 8+n]
		b = b[8+n:]
		u16 := func() (uint16, error) {
			if len(v) != 2 {
				return 0, fmt.Errorf("%w: (0000,%04X) of %d bytes, want 2", ErrBadCommand, elem, len(v))
			}
			return binary.LittleEndian.Uint16(v), nil
		}
		var err error
		switch elem {
		case 0x0002:
			c.AffectedSOPClassUID = trimValue(v)
		case 0x0100:
			c.CommandField, err = u16()
			sawField = true
		case 0x0110:
			c.MessageID, err = u16()
		case 0x0120:
			c.MessageIDBeingRespondedTo, err = u16()
		case 0x0700:
			c.Priority, err = u16()
		case 0x0800:
			var t uint16
			t, err = u16()
			c.HasDataSet = t != dataSetAbsent
			sawDataSetType = true
		case 0x0900:
			var s uint16
			s, err = u16()
			c.Status = Status(s)
		case 0x0902:
			c.ErrorComment = strings.TrimSpace(string(v))
		case 0x1000:
			c.AffectedSOPInstanceUID = trimValue(v)
		case 0x1030:
			c.MoveOriginatorAETitle = strings.TrimSpace(string(v))
		case 0x1031:
			c.MoveOriginatorMessageID, err = u16()
		}
		if err != nil {
			return nil, err
		}
	}
	if !sawField || !sawDataSetType {
		return nil, fmt.Errorf("%w: command field or data set type missing", ErrBadCommand)
	}
	return c, nil
}

func trimValue(v []byte) string { return strings.TrimRight(string(v), "\x00 ") }
