package dimse

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"dicomgate/dimse/dataset"
	"dicomgate/dimse/spool"
)

// Status is a DIMSE status code, (0000,0900), PS3.7 annex C.
type Status uint16

// Status codes of PS3.7 annex C and of the Storage service class, PS3.4
// table B.2-1.
const (
	StatusSuccess               Status = 0x0000
	StatusCoercionOfElements    Status = 0xB000 // warning
	StatusElementsDiscarded     Status = 0xB006 // warning
	StatusDataSetMismatchWarn   Status = 0xB007 // warning
	StatusOutOfResources        Status = 0xA700
	StatusDataSetMismatch       Status = 0xA900
	StatusCannotUnderstand      Status = 0xC000
	StatusProcessingFailure     Status = 0x0110
	StatusDuplicateSOPInstance  Status = 0x0111
	StatusNoSuchSOPClass        Status = 0x0118
	StatusSOPClassNotSupported  Status = 0x0122
	StatusNotAuthorized         Status = 0x0124
	StatusDuplicateInvocation   Status = 0x0210
	StatusUnrecognizedOperation Status = 0x0211
	StatusMistypedArgument      Status = 0x0212
)

// IsSuccess reports a success status.
func (s Status) IsSuccess() bool { return s == StatusSuccess }

// IsWarning reports a warning status (0001 and Bxxx).
func (s Status) IsWarning() bool { return s == 0x0001 || s&0xF000 == 0xB000 }

// IsFailure reports a failure status: neither success, warning, nor the
// pending (FF00, FF01) and cancel (FE00) statuses.
func (s Status) IsFailure() bool {
	return !s.IsSuccess() && !s.IsWarning() && s != 0xFF00 && s != 0xFF01 && s != 0xFE00
}

// String returns the status in hexadecimal, as PS3.7 writes it.
func (s Status) String() string { return fmt.Sprintf("%04X", uint16(s)) }

// StatusError is a DIMSE status as a Go error: a handler returns one to
// choose the response status, and the SCU returns one for a failure
// response. errors.Is matches two StatusErrors with the same Status, so
// errors.Is(err, ErrOutOfResources) works whatever the comment.
type StatusError struct {
	Status  Status
	Comment string // Error Comment (0000,0902), at most 64 characters
	Err     error
}

// Error implements error.
func (e *StatusError) Error() string {
	msg := "dimse: status " + e.Status.String()
	if e.Comment != "" {
		msg += ": " + e.Comment
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the underlying error.
func (e *StatusError) Unwrap() error { return e.Err }

// Is matches StatusErrors by status.
func (e *StatusError) Is(target error) bool {
	t, ok := target.(*StatusError)
	return ok && t.Status == e.Status
}

// Sentinel status errors, for errors.Is and for handlers to return.
var (
	ErrOutOfResources        = &StatusError{Status: StatusOutOfResources}
	ErrDataSetMismatch       = &StatusError{Status: StatusDataSetMismatch}
	ErrCannotUnderstand      = &StatusError{Status: StatusCannotUnderstand}
	ErrProcessingFailure     = &StatusError{Status: StatusProcessingFailure}
	ErrSOPClassNotSupported  = &StatusError{Status: StatusSOPClassNotSupported}
	ErrNotAuthorized         = &StatusError{Status: StatusNotAuthorized}
	ErrUnrecognizedOperation = &StatusError{Status: StatusUnrecognizedOperation}
)

// StatusOf maps an error returned by a Handler to the status and error
// comment of the C-STORE response. It is the one place where errors become
// DIMSE statuses:
//
//   - nil: 0000 success;
//   - *StatusError: its own status and comment;
//   - a full disk (ENOSPC, EDQUOT) or spool.ErrFull: A700 out of resources;
//   - spool.ErrMismatch (data set contradicts the command): A900;
//   - dataset.ErrMalformed or spool.ErrInvalid (unparseable): C000;
//   - anything else: 0110 processing failure.
func StatusOf(err error) (Status, string) {
	if err == nil {
		return StatusSuccess, ""
	}
	var se *StatusError
	switch {
	case errors.As(err, &se):
		c := se.Comment
		if c == "" && se.Err != nil {
			c = se.Err.Error()
		}
		return se.Status, comment(c)
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT), errors.Is(err, spool.ErrFull):
		return StatusOutOfResources, comment(err.Error())
	case errors.Is(err, spool.ErrMismatch):
		return StatusDataSetMismatch, comment(err.Error())
	case errors.Is(err, dataset.ErrMalformed), errors.Is(err, spool.ErrInvalid):
		return StatusCannotUnderstand, comment(err.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return StatusOutOfResources, comment("receiver shutting down")
	}
	return StatusProcessingFailure, comment(err.Error())
}

// comment trims an error text to the 64 characters of the LO VR.
func comment(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return s
}
