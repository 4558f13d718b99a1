package pdu

import (
	"encoding/binary"
	"fmt"
)

// Encode returns the wire form of p, header included.
func Encode(p PDU) ([]byte, error) {
	var body []byte
	var err error
	switch v := p.(type) {
	case *AssociateRQ:
		body, err = encodeAssociate(v.ProtocolVersion, v.CalledAETitle, v.CallingAETitle, v.ApplicationContext, func(b []byte) ([]byte, error) {
			for _, pc := range v.PresentationContexts {
				sub := []byte{pc.ID, 0, 0, 0}
				if sub, err = appendItem(sub, ItemAbstractSyntax, []byte(pc.AbstractSyntax)); err != nil {
					return nil, err
				}
				for _, ts := range pc.TransferSyntaxes {
					if sub, err = appendItem(sub, ItemTransferSyntax, []byte(ts)); err != nil {
						return nil, err
					}
				}
				if b, err = appendItem(b, ItemPresentationContextRQ, sub); err != nil {
					return nil, err
				}
			}
			return b, nil
		}, &v.UserInformation)
	case *AssociateAC:
		body, err = encodeAssociate(v.ProtocolVersion, v.CalledAETitle, v.CallingAETitle, v.ApplicationContext, func(b []byte) ([]byte, error) {
			for _, pc := range v.PresentationContexts {
				sub := []byte{pc.ID, 0, byte(pc.Result), 0}
				if sub, err = appendItem(sub, ItemTransferSyntax, []byte(pc.TransferSyntax)); err != nil {
					return nil, err
				}
				if b, err = appendItem(b, ItemPresentationContextAC, sub); err != nil {
					return nil, err
				}
			}
			return b, nil
		}, &v.UserInformation)
	case *AssociateRJ:
		body = []byte{0, byte(v.Result), byte(v.Source), v.Reason}
	case *PDataTF:
		for _, pdv := range v.PDVs {
			body = binary.BigEndian.AppendUint32(body, uint32(len(pdv.Data)+2))
			body = append(body, pdv.ContextID, MessageControlHeader(pdv.Command, pdv.Last))
			body = append(body, pdv.Data...)
		}
	case *ReleaseRQ, *ReleaseRP:
		body = make([]byte, 4)
	case *Abort:
		body = []byte{0, 0, byte(v.Source), byte(v.Reason)}
	default:
		return nil, fmt.Errorf("pdu: cannot encode %T", p)
	}
	if err != nil {
		return nil, err
	}
	out := make([]byte, pduHeaderLength, pduHeaderLength+len(body))
	out[0] = byte(p.Type())
	binary.BigEndian.PutUint32(out[2:], uint32(len(body)))
	return append(out, body...), nil
}

// MessageControlHeader returns the message control header byte of a PDV
// (PS3.8 annex E.2).
func MessageControlHeader(command, last bool) byte {
	var m byte
	if command {
		m |= 1
	}
	if last {
		m |= 2
	}
	return m
}

// PDataHeaderLength is the number of bytes PutPDataHeader writes: the PDU
// header and the header of its single PDV item.
const PDataHeaderLength = pduHeaderLength + pdvHeaderLength

// PutPDataHeader writes into b[:PDataHeaderLength] the header of a P-DATA-TF
// PDU holding one PDV of n data bytes, so a sender can fill the data in place
// after it and write the PDU with one call.
func PutPDataHeader(b []byte, contextID byte, command, last bool, n int) {
	b[0], b[1] = byte(TypePDataTF), 0
	binary.BigEndian.PutUint32(b[2:], uint32(n+pdvHeaderLength))
	binary.BigEndian.PutUint32(b[6:], uint32(n+2))
	b[10], b[11] = contextID, MessageControlHeader(command, last)
}

func appendItem(b []byte, typ byte, data []byte) ([]byte, error) {
	if len(data) > 0xFFFF {
		return nil, fmt.Errorf("pdu: item 0x%02x of %d bytes exceeds 65535", typ, len(data))
	}
	b = append(b, typ, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(data)))
	return append(b, data...), nil
}

func appendU16Field(b, data []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(data)))
	return append(b, data...)
}

func aeField(s string) []byte {
	b := []byte("                ")
	copy(b, s)
	return b
}

func encodeAssociate(version uint16, called, calling, appCtx string, pcs func([]byte) ([]byte, error), u *UserInformation) ([]byte, error) {
	if len(called) > aeTitleLength || len(calling) > aeTitleLength {
		return nil, fmt.Errorf("pdu: AE title longer than 16 characters")
	}
	b := make([]byte, 4, 512)
	binary.BigEndian.PutUint16(b, version)
	b = append(b, aeField(called)...)
	b = append(b, aeField(calling)...)
	b = append(b, make([]byte, 32)...)
	var err error
	if b, err = appendItem(b, ItemApplicationContext, []byte(appCtx)); err != nil {
		return nil, err
	}
	if b, err = pcs(b); err != nil {
		return nil, err
	}
	ui, err := EncodeUserInformation(u)
	if err != nil {
		return nil, err
	}
	return appendItem(b, ItemUserInformation, ui)
}

// EncodeUserInformation returns the body of a user information item.
func EncodeUserInformation(u *UserInformation) ([]byte, error) {
	var b []byte
	var err error
	b, _ = appendItem(b, ItemMaximumLength, binary.BigEndian.AppendUint32(nil, u.MaxLength))
	if u.ImplementationClassUID != "" {
		if b, err = appendItem(b, ItemImplementationClassUID, []byte(u.ImplementationClassUID)); err != nil {
			return nil, err
		}
	}
	if a := u.AsyncOperations; a != nil {
		d := binary.BigEndian.AppendUint16(nil, a.MaxOperationsInvoked)
		d = binary.BigEndian.AppendUint16(d, a.MaxOperationsPerformed)
		b, _ = appendItem(b, ItemAsynchronousOperations, d)
	}
	for _, r := range u.RoleSelections {
		d := appendU16Field(nil, []byte(r.SOPClassUID))
		d = append(d, boolByte(r.SCURole), boolByte(r.SCPRole))
		if b, err = appendItem(b, ItemRoleSelection, d); err != nil {
			return nil, err
		}
	}
	if u.ImplementationVersionName != "" {
		if b, err = appendItem(b, ItemImplementationVersionName, []byte(u.ImplementationVersionName)); err != nil {
			return nil, err
		}
	}
	for _, e := range u.ExtendedNegotiations {
		d := appendU16Field(nil, []byte(e.SOPClassUID))
		d = append(d, e.ApplicationInfo...)
		if b, err = appendItem(b, ItemExtendedNegotiation, d); err != nil {
			return nil, err
		}
	}
	for _, c := range u.CommonExtendedNegotiations {
		d := appendU16Field(nil, []byte(c.SOPClassUID))
		d = appendU16Field(d, []byte(c.ServiceClassUID))
		var rel []byte
		for _, r := range c.RelatedGeneralSOPClasses {
			rel = appendU16Field(rel, []byte(r))
		}
		d = appendU16Field(d, rel)
		if b, err = appendItem(b, ItemCommonExtendedNegotiation, d); err != nil {
			return nil, err
		}
	}
	if id := u.UserIdentity; id != nil {
		d := []byte{id.IdentityType, boolByte(id.PositiveResponseRequested)}
		d = appendU16Field(d, id.PrimaryField)
		d = appendU16Field(d, id.SecondaryField)
		if b, err = appendItem(b, ItemUserIdentityRQ, d); err != nil {
			return nil, err
		}
	}
	if r := u.UserIdentityResponse; r != nil {
		if b, err = appendItem(b, ItemUserIdentityAC, appendU16Field(nil, r.ServerResponse)); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}
