// Package wire implements HealthVault's XML method API envelope (SPEC §2):
// the wc-request:request document with its auth, header and info parts, the
// info-hash and HMAC that authenticate it, the response document, and the
// status codes of healthvault/docs/xml-api-status-codes.md as typed errors.
package wire

import (
	"errors"
	"fmt"
)

// Code is a HealthVault status code.
type Code int

// Status codes dicomgate uses, with HealthVault's names and numbers.
const (
	OK                               Code = 0
	Failed                           Code = 1
	BadHTTP                          Code = 2
	InvalidXML                       Code = 3
	BadSig                           Code = 4
	BadMethod                        Code = 5
	InvalidApp                       Code = 6
	CredentialTokenExpired           Code = 7
	InvalidToken                     Code = 8
	InvalidPerson                    Code = 9
	InvalidRecord                    Code = 10
	AccessDenied                     Code = 11
	NYI                              Code = 12
	InvalidThing                     Code = 13
	InvalidFilter                    Code = 15
	InvalidFormat                    Code = 16
	InvalidThingType                 Code = 19
	RequestTooLong                   Code = 39
	RequestTimedOut                  Code = 49
	TooManyGroupsInQuery             Code = 53
	VersionStampMissing              Code = 60
	VersionStampMismatch             Code = 61
	AuthenticatedSessionTokenExpired Code = 65
	InvalidDatetime                  Code = 69
	BadCert                          Code = 70
	ResponseTooLong                  Code = 71
	InvalidVerificationQuestion      Code = 72
	InvalidVerificationAnswer        Code = 73
	InvalidIdentityCode              Code = 74
	RetryLimitExceeded               Code = 75
	DuplicateConnectRequestFound     Code = 79
	InvalidBlobRefURL                Code = 88
	BlobSizeTooLargeForInline        Code = 99
	BlobTokenCommitted               Code = 101
	BlobTokenNotCompleted            Code = 102
	InvalidSignatureAlgorithm        Code = 105
	InvalidBlobHashAlgorithm         Code = 106
	BlobHashAlgorithmMismatch        Code = 108
	BlobHashBlockSizeMismatch        Code = 109
	UnsupportedSignatureMethod       Code = 110
	InvalidBlobHash                  Code = 111
	InvalidThingState                Code = 123
	TooManyThingsSpecified           Code = 124
)

var codeNames = map[Code]string{
	OK: "OK", Failed: "FAILED", BadHTTP: "BAD_HTTP", InvalidXML: "INVALID_XML", BadSig: "BAD_SIG",
	BadMethod: "BAD_METHOD", InvalidApp: "INVALID_APP", CredentialTokenExpired: "CREDENTIAL_TOKEN_EXPIRED",
	InvalidToken: "INVALID_TOKEN", InvalidPerson: "INVALID_PERSON", InvalidRecord: "INVALID_RECORD",
	AccessDenied: "ACCESS_DENIED", NYI: "NYI", InvalidThing: "INVALID_THING", InvalidFilter: "INVALID_FILTER",
	InvalidFormat: "INVALID_FORMAT", InvalidThingType: "INVALID_THING_TYPE", RequestTooLong: "REQUEST_TOO_LONG",
	RequestTimedOut: "REQUEST_TIMED_OUT", TooManyGroupsInQuery: "TOO_MANY_GROUPS_IN_QUERY",
	VersionStampMissing: "VERSION_STAMP_MISSING", VersionStampMismatch: "VERSION_STAMP_MISMATCH",
	AuthenticatedSessionTokenExpired: "AUTHENTICATED_SESSION_TOKEN_EXPIRED", InvalidDatetime: "INVALID_DATETIME",
	BadCert: "BAD_CERT", ResponseTooLong: "RESPONSE_TOO_LONG",
	InvalidVerificationQuestion: "INVALID_VERIFICATION_QUESTION", InvalidVerificationAnswer: "INVALID_VERIFICATION_ANSWER",
	InvalidIdentityCode: "INVALID_IDENTITY_CODE", RetryLimitExceeded: "RETRY_LIMIT_EXCEEDED",
	DuplicateConnectRequestFound: "DUPLICATE_CONNECT_REQUEST_FOUND", InvalidBlobRefURL: "INVALID_BLOB_REF_URL",
	BlobSizeTooLargeForInline: "BLOB_SIZE_TOO_LARGE_FOR_INLINE", BlobTokenCommitted: "BLOB_TOKEN_COMMITTED", BlobTokenNotCompleted: "BLOB_TOKEN_NOT_COMPLETED",
	InvalidSignatureAlgorithm: "INVALID_SIGNATURE_ALGORITHM", InvalidBlobHashAlgorithm: "INVALID_BLOB_HASH_ALGORITHM",
	BlobHashAlgorithmMismatch: "BLOB_HASH_ALGORITHM_MISMATCH", BlobHashBlockSizeMismatch: "BLOB_HASH_BLOCK_SIZE_MISMATCH",
	UnsupportedSignatureMethod: "UNSUPPORTED_SIGNATURE_METHOD", InvalidBlobHash: "INVALID_BLOB_HASH",
	InvalidThingState: "INVALID_THING_STATE", TooManyThingsSpecified: "TOO_MANY_THINGS_SPECIFIED",
}

// String returns HealthVault's name for the code.
func (c Code) String() string {
	if n, ok := codeNames[c]; ok {
		return n
	}
	return fmt.Sprintf("STATUS_%d", int(c))
}

// Error is a failed method call: a status code and a message saying what was
// wrong. The server answers it as <status><code>…</code><error><message>…;
// the client returns it for a non-zero status.
type Error struct {
	Code    Code
	Message string
}

// Errorf returns an *Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s (%d): %s", e.Code, int(e.Code), e.Message)
}

// Is reports whether target is an *Error with the same code, so that
// errors.Is(err, &wire.Error{Code: wire.AccessDenied}) works.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// CodeOf returns the status code carried by err, or Failed when err carries
// none (nil gives OK).
func CodeOf(err error) Code {
	if err == nil {
		return OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Failed
}
