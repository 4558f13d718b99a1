package pdu

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Limits of a Reader. The defaults bound what one PDU can make the reader
// allocate.
const (
	// DefaultMaxAssociatePDU bounds A-ASSOCIATE-RQ/AC PDUs: 128 presentation
	// contexts with many transfer syntaxes fit comfortably.
	DefaultMaxAssociatePDU = 1 << 20
	// DefaultMaxPDataPDU bounds P-DATA-TF PDUs when no maximum was
	// negotiated.
	DefaultMaxPDataPDU = 1 << 20
)

// Reader decodes PDUs from a byte stream. It reuses one buffer: the PDV data
// of a decoded PDataTF is valid only until the next call to Read.
type Reader struct {
	r   io.Reader
	buf []byte
	hdr [pduHeaderLength]byte
	// MaxPDataLength is the largest P-DATA-TF PDU length field accepted;
	// it is the maximum length this side announced (plus nothing: PS3.8
	// D.1 makes it a hard limit).
	MaxPDataLength uint32
	// MaxAssociateLength bounds every other PDU's length field.
	MaxAssociateLength uint32
	pdv                []PDV
}

// NewReader returns a Reader with the default limits.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: r, MaxPDataLength: DefaultMaxPDataPDU, MaxAssociateLength: DefaultMaxAssociatePDU}
}

// Read reads and decodes the next PDU. It returns io.EOF when the stream
// ends cleanly before the first byte. An unknown PDU type yields an error
// wrapping ErrUnknownType, a length over the limits one wrapping ErrTooLong;
// in both cases the body is not read and the stream is unusable.
func (rd *Reader) Read() (PDU, error) {
	if _, err := io.ReadFull(rd.r, rd.hdr[:]); err != nil {
		return nil, err
	}
	t, n := Type(rd.hdr[0]), binary.BigEndian.Uint32(rd.hdr[2:])
	var limit uint32
	switch t {
	case TypePDataTF:
		limit = rd.MaxPDataLength
	case TypeAssociateRQ, TypeAssociateAC, TypeAssociateRJ, TypeReleaseRQ, TypeReleaseRP, TypeAbort:
		limit = rd.MaxAssociateLength
	default:
		return nil, fmt.Errorf("%w: 0x%02x", ErrUnknownType, byte(t))
	}
	if n > limit {
		return nil, fmt.Errorf("%w: %s of %d bytes (limit %d)", ErrTooLong, t, n, limit)
	}
	if uint32(cap(rd.buf)) < n {
		rd.buf = make([]byte, n)
	}
	body := rd.buf[:n]
	if _, err := io.ReadFull(rd.r, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if t == TypePDataTF {
		pdvs, err := parsePDVs(body, rd.pdv[:0])
		if err != nil {
			return nil, err
		}
		rd.pdv = pdvs
		return &PDataTF{PDVs: pdvs}, nil
	}
	return Decode(t, body)
}

// Decode decodes the body (the bytes after the 6-byte header) of a PDU of
// type t. PDV data of a P-DATA-TF aliases body.
func Decode(t Type, body []byte) (PDU, error) {
	switch t {
	case TypeAssociateRQ:
		return decodeAssociateRQ(body)
	case TypeAssociateAC:
		return decodeAssociateAC(body)
	case TypeAssociateRJ:
		if len(body) != rejectBodyLength {
			return nil, malformed("A-ASSOCIATE-RJ length %d", len(body))
		}
		return &AssociateRJ{Result: RejectResult(body[1]), Source: RejectSource(body[2]), Reason: body[3]}, nil
	case TypePDataTF:
		pdvs, err := parsePDVs(body, nil)
		if err != nil {
			return nil, err
		}
		return &PDataTF{PDVs: pdvs}, nil
	case TypeReleaseRQ:
		if len(body) != releaseAbortBodyLength {
			return nil, malformed("A-RELEASE-RQ length %d", len(body))
		}
		return &ReleaseRQ{}, nil
	case TypeReleaseRP:
		if len(body) != releaseAbortBodyLength {
			return nil, malformed("A-RELEASE-RP length %d", len(body))
		}
		return &ReleaseRP{}, nil
	case TypeAbort:
		if len(body) != releaseAbortBodyLength {
			return nil, malformed("A-ABORT length %d", len(body))
		}
		return &Abort{Source: AbortSource(body[2]), Reason: AbortReason(body[3])}, nil
	}
	return nil, fmt.Errorf("%w: 0x%02x", ErrUnknownType, byte(t))
}

func parsePDVs(b []byte, pdvs []PDV) ([]PDV, error) {
	if len(b) == 0 {
		return nil, malformed("P-DATA-TF without PDV items")
	}
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, malformed("truncated PDV item header")
		}
		n := binary.BigEndian.Uint32(b)
		if n < 2 || uint64(n) > uint64(len(b)-4) {
			return nil, malformed("PDV item length %d with %d bytes left", n, len(b)-4)
		}
		item := b[4 : 4+n]
		id, mch := item[0], item[1]
		if id == 0 || id%2 == 0 {
			return nil, malformed("PDV presentation context ID %d", id)
		}
		pdvs = append(pdvs, PDV{ContextID: id, Command: mch&1 != 0, Last: mch&2 != 0, Data: item[2:]})
		b = b[4+n:]
	}
	return pdvs, nil
}

// item is one raw item of the variable part of an association PDU.
type item struct {
	typ  byte
	data []byte
}

// splitItems splits b into items with 2-byte lengths (PS3.8 9.3.2.x).
func splitItems(b []byte, max int) ([]item, error) {
	var items []item
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, malformed("truncated item header")
		}
		n := int(binary.BigEndian.Uint16(b[2:]))
		if n > len(b)-4 {
			return nil, malformed("item 0x%02x length %d with %d bytes left", b[0], n, len(b)-4)
		}
		if len(items) >= max {
			return nil, malformed("more than %d items", max)
		}
		items = append(items, item{typ: b[0], data: b[4 : 4+n]})
		b = b[4+n:]
	}
	return items, nil
}

func parseUID(b []byte, what string) (string, error) {
	s := trimUID(b)
	if len(s) == 0 || len(s) > maxUIDLength {
		return "", malformed("%s UID of %d bytes", what, len(s))
	}
	return s, nil
}

type associateCommon struct {
	version  uint16
	called   string
	calling  string
	appCtx   string
	userInfo UserInformation
	pcItems  []item
}

func decodeAssociateCommon(body []byte, pcType byte) (*associateCommon, error) {
	if len(body) < associateFixedLength {
		return nil, malformed("association PDU of %d bytes", len(body))
	}
	c := &associateCommon{
		version: binary.BigEndian.Uint16(body[0:]),
		called:  trimAE(body[4:20]),
		calling: trimAE(body[20:36]),
	}
	items, err := splitItems(body[associateFixedLength:], maxPresentationContexts+16)
	if err != nil {
		return nil, err
	}
	var sawApp, sawUser bool
	for _, it := range items {
		switch it.typ {
		case ItemApplicationContext:
			if sawApp {
				return nil, malformed("two application context items")
			}
			sawApp = true
			if c.appCtx, err = parseUID(it.data, "application context"); err != nil {
				return nil, err
			}
		case pcType:
			c.pcItems = append(c.pcItems, it)
		case ItemUserInformation:
			if sawUser {
				return nil, malformed("two user information items")
			}
			sawUser = true
			if c.userInfo, err = ParseUserInformation(it.data); err != nil {
				return nil, err
			}
		default:
			// PS3.8 9.3.1: items of unknown type are ignored, so later
			// revisions of the standard stay compatible.
		}
	}
	if !sawApp {
		return nil, malformed("no application context item")
	}
	if len(c.pcItems) == 0 {
		return nil, malformed("no presentation context item")
	}
	if len(c.pcItems) > maxPresentationContexts {
		return nil, malformed("%d presentation contexts (max %d)", len(c.pcItems), maxPresentationContexts)
	}
	if !sawUser {
		return nil, malformed("no user information item")
	}
	return c, nil
}

func decodeAssociateRQ(body []byte) (*AssociateRQ, error) {
	c, err := decodeAssociateCommon(body, ItemPresentationContextRQ)
	if err != nil {
		return nil, err
	}
	pcs, err := parseEach(c.pcItems, ParsePresentationContextRQ)
	if err != nil {
		return nil, err
	}
	return &AssociateRQ{ProtocolVersion: c.version, CalledAETitle: c.called, CallingAETitle: c.calling,
		ApplicationContext: c.appCtx, PresentationContexts: pcs, UserInformation: c.userInfo}, nil
}

func decodeAssociateAC(body []byte) (*AssociateAC, error) {
	c, err := decodeAssociateCommon(body, ItemPresentationContextAC)
	if err != nil {
		return nil, err
	}
	pcs, err := parseEach(c.pcItems, ParsePresentationContextAC)
	if err != nil {
		return nil, err
	}
	return &AssociateAC{ProtocolVersion: c.version, CalledAETitle: c.called, CallingAETitle: c.calling,
		ApplicationContext: c.appCtx, PresentationContexts: pcs, UserInformation: c.userInfo}, nil
}

// parseEach parses the body of every item with parse.
func parseEach[T any](items []item, parse func([]byte) (T, error)) ([]T, error) {
	out := make([]T, 0, len(items))
	for _, it := range items {
		v, err := parse(it.data)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// ParsePresentationContextRQ parses the body of a presentation context item
// (type 0x20) of A-ASSOCIATE-RQ.
func ParsePresentationContextRQ(b []byte) (PresentationContextRQ, error) {
	var pc PresentationContextRQ
	if len(b) < 4 {
		return pc, malformed("presentation context item of %d bytes", len(b))
	}
	pc.ID = b[0]
	if pc.ID%2 == 0 {
		return pc, malformed("presentation context ID %d is not odd", pc.ID)
	}
	subs, err := splitItems(b[4:], maxSubItems)
	if err != nil {
		return pc, err
	}
	for _, s := range subs {
		switch s.typ {
		case ItemAbstractSyntax:
			if pc.AbstractSyntax != "" {
				return pc, malformed("two abstract syntaxes in context %d", pc.ID)
			}
			if pc.AbstractSyntax, err = parseUID(s.data, "abstract syntax"); err != nil {
				return pc, err
			}
		case ItemTransferSyntax:
			ts, err := parseUID(s.data, "transfer syntax")
			if err != nil {
				return pc, err
			}
			pc.TransferSyntaxes = append(pc.TransferSyntaxes, ts)
		default:
			return pc, malformed("sub-item 0x%02x in presentation context", s.typ)
		}
	}
	if pc.AbstractSyntax == "" || len(pc.TransferSyntaxes) == 0 {
		return pc, malformed("presentation context %d lacks abstract or transfer syntax", pc.ID)
	}
	return pc, nil
}

// ParsePresentationContextAC parses the body of a presentation context item
// (type 0x21) of A-ASSOCIATE-AC.
func ParsePresentationContextAC(b []byte) (PresentationContextAC, error) {
	var pc PresentationContextAC
	if len(b) < 4 {
		return pc, malformed("presentation context item of %d bytes", len(b))
	}
	pc.ID, pc.Result = b[0], ContextResult(b[2])
	subs, err := splitItems(b[4:], maxSubItems)
	if err != nil {
		return pc, err
	}
	for _, s := range subs {
		if s.typ != ItemTransferSyntax {
			return pc, malformed("sub-item 0x%02x in accepted presentation context", s.typ)
		}
		if pc.Result != ContextAcceptance {
			// PS3.8 9.3.3.2: the transfer syntax of a rejected context
			// is not significant; some implementations leave it empty.
			continue
		}
		if pc.TransferSyntax, err = parseUID(s.data, "transfer syntax"); err != nil {
			return pc, err
		}
	}
	if pc.Result == ContextAcceptance && pc.TransferSyntax == "" {
		return pc, malformed("accepted presentation context %d without transfer syntax", pc.ID)
	}
	return pc, nil
}

func u16Field(b []byte, what string) ([]byte, []byte, error) {
	if len(b) < 2 {
		return nil, nil, malformed("truncated %s length", what)
	}
	n := int(binary.BigEndian.Uint16(b))
	if n > len(b)-2 {
		return nil, nil, malformed("%s length %d with %d bytes left", what, n, len(b)-2)
	}
	return b[2 : 2+n], b[2+n:], nil
}

// ParseUserInformation parses the body of a user information item (0x50).
// Unknown sub-items are ignored (PS3.7 D.3.3).
func ParseUserInformation(b []byte) (UserInformation, error) {
	var u UserInformation
	subs, err := splitItems(b, maxSubItems)
	if err != nil {
		return u, err
	}
	for _, s := range subs {
		d := s.data
		switch s.typ {
		case ItemMaximumLength:
			if len(d) != 4 {
				return u, malformed("maximum length sub-item of %d bytes", len(d))
			}
			u.MaxLength = binary.BigEndian.Uint32(d)
		case ItemImplementationClassUID:
			if u.ImplementationClassUID, err = parseUID(d, "implementation class"); err != nil {
				return u, err
			}
		case ItemImplementationVersionName:
			if len(d) > 16 {
				return u, malformed("implementation version name of %d bytes", len(d))
			}
			u.ImplementationVersionName = trimAE(d)
		case ItemAsynchronousOperations:
			if len(d) != 4 {
				return u, malformed("asynchronous operations window of %d bytes", len(d))
			}
			u.AsyncOperations = &AsyncOperationsWindow{
				MaxOperationsInvoked:   binary.BigEndian.Uint16(d),
				MaxOperationsPerformed: binary.BigEndian.Uint16(d[2:]),
			}
		case ItemRoleSelection:
			uid, rest, err := u16Field(d, "role selection UID")
			if err != nil {
				return u, err
			}
			if len(rest) != 2 {
				return u, malformed("role selection sub-item trailer of %d bytes", len(rest))
			}
			cls, err := parseUID(uid, "role selection SOP class")
			if err != nil {
				return u, err
			}
			u.RoleSelections = append(u.RoleSelections, RoleSelection{SOPClassUID: cls, SCURole: rest[0] == 1, SCPRole: rest[1] == 1})
		case ItemExtendedNegotiation:
			uid, rest, err := u16Field(d, "extended negotiation UID")
			if err != nil {
				return u, err
			}
			cls, err := parseUID(uid, "extended negotiation SOP class")
			if err != nil {
				return u, err
			}
			u.ExtendedNegotiations = append(u.ExtendedNegotiations, ExtendedNegotiation{SOPClassUID: cls, ApplicationInfo: append([]byte(nil), rest...)})
		case ItemCommonExtendedNegotiation:
			ce, err := parseCommonExtended(d)
			if err != nil {
				return u, err
			}
			u.CommonExtendedNegotiations = append(u.CommonExtendedNegotiations, ce)
		case ItemUserIdentityRQ:
			if len(d) < 2 {
				return u, malformed("user identity sub-item of %d bytes", len(d))
			}
			id := &UserIdentity{IdentityType: d[0], PositiveResponseRequested: d[1] == 1}
			p, rest, err := u16Field(d[2:], "user identity primary field")
			if err != nil {
				return u, err
			}
			s2, rest, err := u16Field(rest, "user identity secondary field")
			if err != nil {
				return u, err
			}
			if len(rest) != 0 {
				return u, malformed("%d trailing bytes in user identity", len(rest))
			}
			id.PrimaryField, id.SecondaryField = append([]byte(nil), p...), append([]byte(nil), s2...)
			u.UserIdentity = id
		case ItemUserIdentityAC:
			resp, rest, err := u16Field(d, "user identity server response")
			if err != nil {
				return u, err
			}
			if len(rest) != 0 {
				return u, malformed("%d trailing bytes in user identity response", len(rest))
			}
			u.UserIdentityResponse = &UserIdentityResponse{ServerResponse: append([]byte(nil), resp...)}
		}
	}
	return u, nil
}

func parseCommonExtended(d []byte) (CommonExtendedNegotiation, error) {
	var ce CommonExtendedNegotiation
	uid, rest, err := u16Field(d, "common extended SOP class")
	if err != nil {
		return ce, err
	}
	if ce.SOPClassUID, err = parseUID(uid, "common extended SOP class"); err != nil {
		return ce, err
	}
	uid, rest, err = u16Field(rest, "common extended service class")
	if err != nil {
		return ce, err
	}
	if ce.ServiceClassUID, err = parseUID(uid, "common extended service class"); err != nil {
		return ce, err
	}
	related, rest, err := u16Field(rest, "related general SOP classes")
	if err != nil {
		return ce, err
	}
	if len(rest) != 0 {
		return ce, malformed("%d trailing bytes in common extended negotiation", len(rest))
	}
	for len(related) > 0 {
		var r []byte
		if r, related, err = u16Field(related, "related general SOP class"); err != nil {
			return ce, err
		}
		cls, err := parseUID(r, "related general SOP class")
		if err != nil {
			return ce, err
		}
		if len(ce.RelatedGeneralSOPClasses) >= maxSubItems {
			return ce, malformed("too many related general SOP classes")
		}
		ce.RelatedGeneralSOPClasses = append(ce.RelatedGeneralSOPClasses, cls)
	}
	return ce, nil
}
