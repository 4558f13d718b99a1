// Package pdu encodes and decodes the protocol data units of the DICOM upper
// layer protocol for TCP/IP, DICOM PS3.8 section 9.3: A-ASSOCIATE-RQ/AC/RJ,
// P-DATA-TF, A-RELEASE-RQ/RP and A-ABORT, with every item and sub-item of the
// association PDUs (application context, presentation contexts, abstract and
// transfer syntaxes, and the user information sub-items of PS3.7 annex D and
// PS3.8 annex D: maximum length, implementation class UID and version name,
// asynchronous operations window, SCP/SCU role selection, SOP class extended
// and common extended negotiation, user identity).
//
// Every length read from the network is checked against the bytes actually
// present and against the limits of a Reader, so a hostile peer can make a
// decoder fail but never make it allocate more than the configured limits or
// panic.
package pdu

import (
	"errors"
	"fmt"
	"strings"
)

// Type is the PDU-type field, the first byte of every PDU (PS3.8 table 9-11).
type Type byte

// PDU types of PS3.8 section 9.3.
const (
	TypeAssociateRQ Type = 0x01
	TypeAssociateAC Type = 0x02
	TypeAssociateRJ Type = 0x03
	TypePDataTF     Type = 0x04
	TypeReleaseRQ   Type = 0x05
	TypeReleaseRP   Type = 0x06
	TypeAbort       Type = 0x07
)

// String returns the PDU's name in PS3.8.
func (t Type) String() string {
	switch t {
	case TypeAssociateRQ:
		return "A-ASSOCIATE-RQ"
	case TypeAssociateAC:
		return "A-ASSOCIATE-AC"
	case TypeAssociateRJ:
		return "A-ASSOCIATE-RJ"
	case TypePDataTF:
		return "P-DATA-TF"
	case TypeReleaseRQ:
		return "A-RELEASE-RQ"
	case TypeReleaseRP:
		return "A-RELEASE-RP"
	case TypeAbort:
		return "A-ABORT"
	}
	return fmt.Sprintf("PDU(0x%02x)", byte(t))
}

// Item types of the variable part of A-ASSOCIATE-RQ/AC (PS3.8 9.3.2, 9.3.3,
// annex D) and of the user information sub-items (PS3.7 annex D.3.3).
const (
	ItemApplicationContext        byte = 0x10
	ItemPresentationContextRQ     byte = 0x20
	ItemPresentationContextAC     byte = 0x21
	ItemAbstractSyntax            byte = 0x30
	ItemTransferSyntax            byte = 0x40
	ItemUserInformation           byte = 0x50
	ItemMaximumLength             byte = 0x51
	ItemImplementationClassUID    byte = 0x52
	ItemAsynchronousOperations    byte = 0x53
	ItemRoleSelection             byte = 0x54
	ItemImplementationVersionName byte = 0x55
	ItemExtendedNegotiation       byte = 0x56
	ItemCommonExtendedNegotiation byte = 0x57
	ItemUserIdentityRQ            byte = 0x58
	ItemUserIdentityAC            byte = 0x59
	maxPresentationContexts            = 128
	maxSubItems                        = 1024
	maxUIDLength                       = 64
	aeTitleLength                      = 16
	associateFixedLength               = 68
	pduHeaderLength                    = 6
	pdvHeaderLength                    = 6
	releaseAbortBodyLength             = 4
	rejectBodyLength                   = 4
)

// ApplicationContextName is the only DICOM application context name
// (PS3.7 annex A.2.1).
const ApplicationContextName = "1.2.840.10008.3.1.1.1"

// Sentinel errors of the decoder. Decoding errors wrap one of them.
var (
	// ErrMalformed reports a PDU or item whose structure is invalid.
	ErrMalformed = errors.New("pdu: malformed")
	// ErrUnknownType reports an unrecognised PDU type (PS3.8 9.3.1).
	ErrUnknownType = errors.New("pdu: unknown PDU type")
	// ErrTooLong reports a PDU longer than the reader accepts.
	ErrTooLong = errors.New("pdu: PDU exceeds maximum length")
)

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// PDU is one decoded protocol data unit.
type PDU interface {
	// Type returns the PDU-type field.
	Type() Type
}

// AssociateRQ is the A-ASSOCIATE-RQ PDU (PS3.8 9.3.2).
type AssociateRQ struct {
	ProtocolVersion      uint16
	CalledAETitle        string
	CallingAETitle       string
	ApplicationContext   string
	PresentationContexts []PresentationContextRQ
	UserInformation      UserInformation
}

// AssociateAC is the A-ASSOCIATE-AC PDU (PS3.8 9.3.3). The AE title fields
// echo the request; PS3.8 says they shall not be tested by the requestor.
type AssociateAC struct {
	ProtocolVersion      uint16
	CalledAETitle        string
	CallingAETitle       string
	ApplicationContext   string
	PresentationContexts []PresentationContextAC
	UserInformation      UserInformation
}

// AssociateRJ is the A-ASSOCIATE-RJ PDU (PS3.8 9.3.4).
type AssociateRJ struct {
	Result RejectResult
	Source RejectSource
	Reason byte
}

// RejectResult is the Result field of A-ASSOCIATE-RJ.
type RejectResult byte

// Result values of A-ASSOCIATE-RJ.
const (
	RejectedPermanent RejectResult = 1
	RejectedTransient RejectResult = 2
)

// RejectSource is the Source field of A-ASSOCIATE-RJ.
type RejectSource byte

// Source values of A-ASSOCIATE-RJ.
const (
	SourceServiceUser                 RejectSource = 1
	SourceServiceProviderACSE         RejectSource = 2
	SourceServiceProviderPresentation RejectSource = 3
)

// Reason values of A-ASSOCIATE-RJ, by source (PS3.8 table 9-21).
const (
	ReasonNoReasonGiven                  byte = 1 // source 1
	ReasonApplicationContextNotSupported byte = 2 // source 1
	ReasonCallingAETitleNotRecognized    byte = 3 // source 1
	ReasonCalledAETitleNotRecognized     byte = 7 // source 1
	ReasonProtocolVersionNotSupported    byte = 2 // source 2
	ReasonTemporaryCongestion            byte = 1 // source 3
	ReasonLocalLimitExceeded             byte = 2 // source 3
	ReasonProviderNoReasonGiven          byte = 1 // source 2
)

// String describes the rejection.
func (rj *AssociateRJ) String() string {
	return fmt.Sprintf("A-ASSOCIATE-RJ result=%d source=%d reason=%d", rj.Result, rj.Source, rj.Reason)
}

// PDataTF is the P-DATA-TF PDU (PS3.8 9.3.5). When decoded by a Reader the
// PDV data slices alias the reader's buffer and are valid until its next Read.
type PDataTF struct {
	PDVs []PDV
}

// PDV is one presentation data value item (PS3.8 9.3.5.1 and annex E).
type PDV struct {
	ContextID byte
	// Command is bit 0 of the message control header: the fragment is part
	// of a command set rather than a data set.
	Command bool
	// Last is bit 1: the fragment is the last one of its command or data set.
	Last bool
	Data []byte
}

// ReleaseRQ is the A-RELEASE-RQ PDU (PS3.8 9.3.6).
type ReleaseRQ struct{}

// ReleaseRP is the A-RELEASE-RP PDU (PS3.8 9.3.7).
type ReleaseRP struct{}

// Abort is the A-ABORT PDU (PS3.8 9.3.8).
type Abort struct {
	Source AbortSource
	Reason AbortReason
}

// AbortSource is the Source field of A-ABORT.
type AbortSource byte

// Source values of A-ABORT.
const (
	AbortServiceUser     AbortSource = 0
	AbortServiceProvider AbortSource = 2
)

// AbortReason is the Reason/Diag field of A-ABORT (meaningful when the source
// is the service provider).
type AbortReason byte

// Reason values of A-ABORT (PS3.8 table 9-26).
const (
	AbortReasonNotSpecified       AbortReason = 0
	AbortUnrecognizedPDU          AbortReason = 1
	AbortUnexpectedPDU            AbortReason = 2
	AbortUnrecognizedPDUParameter AbortReason = 4
	AbortUnexpectedPDUParameter   AbortReason = 5
	AbortInvalidPDUParameterValue AbortReason = 6
)

// String describes the abort.
func (a *Abort) String() string {
	return fmt.Sprintf("A-ABORT source=%d reason=%d", a.Source, a.Reason)
}

// Type implements PDU.
func (*AssociateRQ) Type() Type { return TypeAssociateRQ }

// Type implements PDU.
func (*AssociateAC) Type() Type { return TypeAssociateAC }

// Type implements PDU.
func (*AssociateRJ) Type() Type { return TypeAssociateRJ }

// Type implements PDU.
func (*PDataTF) Type() Type { return TypePDataTF }

// Type implements PDU.
func (*ReleaseRQ) Type() Type { return TypeReleaseRQ }

// Type implements PDU.
func (*ReleaseRP) Type() Type { return TypeReleaseRP }

// Type implements PDU.
func (*Abort) Type() Type { return TypeAbort }

var (
	_ PDU = (*AssociateRQ)(nil)
	_ PDU = (*AssociateAC)(nil)
	_ PDU = (*AssociateRJ)(nil)
	_ PDU = (*PDataTF)(nil)
	_ PDU = (*ReleaseRQ)(nil)
	_ PDU = (*ReleaseRP)(nil)
	_ PDU = (*Abort)(nil)
)

// PresentationContextRQ is a presentation context item of A-ASSOCIATE-RQ
// (item type 0x20) with its abstract syntax and transfer syntax sub-items.
type PresentationContextRQ struct {
	ID               byte
	AbstractSyntax   string
	TransferSyntaxes []string
}

// PresentationContextAC is a presentation context item of A-ASSOCIATE-AC
// (item type 0x21).
type PresentationContextAC struct {
	ID     byte
	Result ContextResult
	// TransferSyntax is meaningful only when Result is Acceptance.
	TransferSyntax string
}

// ContextResult is the Result/Reason field of a presentation context item of
// A-ASSOCIATE-AC (PS3.8 table 9-18).
type ContextResult byte

// Presentation context results.
const (
	ContextAcceptance                   ContextResult = 0
	ContextUserRejection                ContextResult = 1
	ContextNoReason                     ContextResult = 2
	ContextAbstractSyntaxNotSupported   ContextResult = 3
	ContextTransferSyntaxesNotSupported ContextResult = 4
)

// UserInformation is the user information item (0x50) and its sub-items.
type UserInformation struct {
	// MaxLength is the maximum length of the variable field of the P-DATA-TF
	// PDUs the sender can receive; zero means unlimited (PS3.8 D.1).
	MaxLength                 uint32
	ImplementationClassUID    string
	ImplementationVersionName string
	// AsyncOperations is present when the sub-item 0x53 was sent.
	AsyncOperations            *AsyncOperationsWindow
	RoleSelections             []RoleSelection
	ExtendedNegotiations       []ExtendedNegotiation
	CommonExtendedNegotiations []CommonExtendedNegotiation
	UserIdentity               *UserIdentity
	UserIdentityResponse       *UserIdentityResponse
}

// AsyncOperationsWindow is sub-item 0x53 (PS3.7 D.3.3.3).
type AsyncOperationsWindow struct {
	MaxOperationsInvoked   uint16
	MaxOperationsPerformed uint16
}

// RoleSelection is sub-item 0x54 (PS3.7 D.3.3.4).
type RoleSelection struct {
	SOPClassUID string
	SCURole     bool
	SCPRole     bool
}

// ExtendedNegotiation is sub-item 0x56 (PS3.7 D.3.3.5).
type ExtendedNegotiation struct {
	SOPClassUID     string
	ApplicationInfo []byte
}

// CommonExtendedNegotiation is sub-item 0x57 (PS3.7 D.3.3.6).
type CommonExtendedNegotiation struct {
	SOPClassUID              string
	ServiceClassUID          string
	RelatedGeneralSOPClasses []string
}

// UserIdentity is sub-item 0x58 of A-ASSOCIATE-RQ (PS3.7 D.3.3.7).
type UserIdentity struct {
	// IdentityType is 1 username, 2 username and passcode, 3 Kerberos,
	// 4 SAML, 5 JWT.
	IdentityType              byte
	PositiveResponseRequested bool
	PrimaryField              []byte
	SecondaryField            []byte
}

// UserIdentityResponse is sub-item 0x59 of A-ASSOCIATE-AC.
type UserIdentityResponse struct {
	ServerResponse []byte
}

// trimAE removes the space padding of an AE title field; leading and
// trailing spaces are not significant (PS3.5 table 6.2-1, AE).
func trimAE(b []byte) string {
	return strings.Trim(string(b), " \x00")
}

// trimUID removes the NUL (or, tolerated, space) padding of a UID field.
func trimUID(b []byte) string {
	return strings.TrimRight(string(b), "\x00 ")
}
