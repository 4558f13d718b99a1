package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"
)

// ErrPendingExists means the application already has a pending connect
// request for the external id (DUPLICATE_CONNECT_REQUEST_FOUND).
var ErrPendingExists = errors.New("store: a pending connect request exists for this external id")

// ErrNotPending means a package or connect request is not (or no longer) in
// the state the operation needs: already picked up, claimed by a concurrent
// pick-up, allocated but without data, or locked.
var ErrNotPending = errors.New("store: not pending")

// ErrPackageBlobUnavailable means a package names a blob that is unknown,
// incomplete, another application's or already in a package. It is an
// ErrNotPending too.
var ErrPackageBlobUnavailable = fmt.Errorf("store: package blob unavailable: %w", ErrNotPending)

// ErrNoTriesLeft means a package or connect request has used up its tries
// at the answer: no try can be taken any more.
var ErrNoTriesLeft = errors.New("store: no tries left")

// Package states.
const (
	// PackageAllocated: AllocatePackageId reserved the code; no data yet.
	PackageAllocated = "allocated"
	// PackagePending: created, waiting for the patient.
	PackagePending = "pending"
	// PackageClaimed: a pick-up is writing the contents into a record.
	PackageClaimed = "claimed"
	// PackagePickedUp: picked up (once; never again).
	PackagePickedUp = "picked-up"
)

// ConnectPackage is a DOPU package. Only ciphertext is kept: DataXML is the
// Password Protected Package data-xml (algorithm, salt, iterations) and
// Ciphertext its encrypted inline blob; the answer is never known here.
type ConnectPackage struct {
	IdentityCode string
	AppID        string
	ExternalID   string
	FriendlyName string
	Question     string
	State        string
	DataXML      []byte
	Ciphertext   []byte
	// BlobIDs are the package's streamed blobs (PackageBlob ids), in the
	// order of streamed-package-blobs.
	BlobIDs      []string
	WrongAnswers int
	Created      time.Time
	Expires      time.Time
	// ClaimedUntil bounds a claim: a pick-up that died leaves the package
	// claimable again after it.
	ClaimedUntil time.Time
	PickedUp     time.Time
	RecordID     string
}

// PackageBlob is a streamed blob of a package (BeginPutConnectPackageBlob):
// the encrypted bytes live in a file; blocks are the encrypted chunks.
type PackageBlob struct {
	ID    string
	AppID string
	State string // BlobUploading or BlobComplete
	// PreChunkSize and PostChunkSize are the plaintext and encrypted chunk
	// sizes; blocks are PostChunkSize long but for the last.
	PreChunkSize  int64
	PostChunkSize int64
	MaxSize       int64
	Total         int64 // announced encrypted length, -1 while unknown
	Size          int64 // encrypted length once complete
	// IdentityCode is the package referencing the blob, "" until one does.
	IdentityCode string
	Created      time.Time
	Completed    time.Time
}

// Connect request states.
const (
	ConnectPending   = "pending"
	ConnectValidated = "validated"
)

// ConnectRequest is a Patient Connect request. AnswerHash is an argon2id
// hash of the normalized answer; the answer itself is never stored.
type ConnectRequest struct {
	IdentityCode string
	AppID        string
	ExternalID   string
	FriendlyName string
	Question     string
	AnswerHash   string
	CallbackURL  string
	State        string
	WrongAnswers int
	Created      time.Time
	Expires      time.Time
	PersonID     string
	RecordID     string
	// Authorized is when the request was last validated; unique per
	// application, so that it can serve as a resume key.
	Authorized time.Time
}

// AuthorizedQuery pages through an application's validated connect
// requests with Authorized >= Since (and after NotBefore, the retention
// cut-off), oldest first.
type AuthorizedQuery struct {
	AppID     string
	Since     time.Time
	NotBefore time.Time
	Limit     int
}

// AuditEvent records a patient-side action: a pick-up, a connect
// authorization, a view or a download. Detail never holds codes or answers.
type AuditEvent struct {
	At       time.Time
	Action   string
	PersonID string
	RecordID string
	AppID    string
	Subject  string // e.g. a thing id
	Detail   string
}

// WebSession is a signed-in patient's browser session. TokenHash is SHA-256
// of the cookie value; CSRF is the token every form of the session carries.
type WebSession struct {
	TokenHash [sha256.Size]byte
	PersonID  string
	CSRF      string
	Created   time.Time
	Expires   time.Time
}

// Connect is what DOPU, Patient Connect and the patient pages persist.
type Connect interface {
	// ReserveIdentityCode records code as used (by packages and connect
	// requests alike); a code in use is ErrExists.
	ReserveIdentityCode(ctx context.Context, code string, at time.Time) error

	// CreatePackage stores a new package (allocated or pending) whose code
	// was reserved. Its BlobIDs must be complete blobs of the same app not
	// referenced by another package (else ErrPackageBlobUnavailable).
	CreatePackage(ctx context.Context, p ConnectPackage) error
	// FillPackage turns the app's allocated package into a pending one
	// with p's fields (ErrNotFound, ErrNotPending when not allocated,
	// ErrPackageBlobUnavailable as for CreatePackage).
	FillPackage(ctx context.Context, p ConnectPackage) error
	GetPackage(ctx context.Context, code string) (ConnectPackage, error)
	// TakePackageTry takes one of the max tries at the answer of a
	// pending package, atomically, before the answer is checked: the
	// wrong-answer count goes up by one and is returned, unless it reached
	// max (ErrNoTriesLeft). Taking first means that concurrent answers
	// cannot all be checked against a count that has not moved yet.
	TakePackageTry(ctx context.Context, code string, max int) (int, error)
	// ReturnPackageTry gives back a try whose answer was right (or could
	// not be checked).
	ReturnPackageTry(ctx context.Context, code string) error
	// ClaimPackage moves a pending (or stale-claimed) package to claimed
	// until the given time; anything else is ErrNotPending.
	ClaimPackage(ctx context.Context, code string, now, until time.Time) error
	// ReleasePackage returns a claimed package to pending.
	ReleasePackage(ctx context.Context, code string) error
	// CompletePickUp marks a claimed package picked up into recordID and
	// drops its ciphertext.
	CompletePickUp(ctx context.Context, code, recordID string, at time.Time) error
	// DeletePendingPackages deletes the app's allocated or pending packages
	// with the code (or, when code is "", the external id) and returns the
	// ids of their streamed blobs.
	DeletePendingPackages(ctx context.Context, appID, code, externalID string) (int, []string, error)
	// ExpiredPackages lists packages not picked up whose expiry is at or
	// before now.
	ExpiredPackages(ctx context.Context, now time.Time) ([]ConnectPackage, error)

	CreatePackageBlob(ctx context.Context, b PackageBlob) error
	GetPackageBlob(ctx context.Context, id string) (PackageBlob, error)
	// PutPackageBlock records a received encrypted chunk (same rules as PutBlock).
	PutPackageBlock(ctx context.Context, blobID string, b Block) error
	SetPackageBlobTotal(ctx context.Context, blobID string, total int64) error
	PackageBlocks(ctx context.Context, blobID string, from, to int64) ([]Block, error)
	CompletePackageBlob(ctx context.Context, blobID string, size int64, at time.Time) error
	// UnreferencedPackageBlobs lists package blobs created before cutoff
	// that no package references.
	UnreferencedPackageBlobs(ctx context.Context, cutoff time.Time) ([]PackageBlob, error)
	DeletePackageBlob(ctx context.Context, id string) error

	// CreateConnectRequest stores a pending request whose code was
	// reserved; ErrPendingExists when the app has a pending one for the
	// external id.
	CreateConnectRequest(ctx context.Context, r ConnectRequest) error
	GetConnectRequest(ctx context.Context, code string) (ConnectRequest, error)
	// TakeConnectTry and ReturnConnectTry are TakePackageTry and
	// ReturnPackageTry for a connect request (pending or validated).
	TakeConnectTry(ctx context.Context, code string, max int) (int, error)
	ReturnConnectTry(ctx context.Context, code string) error
	// ValidateConnectRequest records that the patient answered and chose a
	// record; Authorized becomes at, or just after the app's latest.
	ValidateConnectRequest(ctx context.Context, code, personID, recordID string, at time.Time) (ConnectRequest, error)
	AuthorizedConnectRequests(ctx context.Context, q AuthorizedQuery) ([]ConnectRequest, error)
	// DeletePendingConnectRequest deletes the app's pending request for
	// the external id (ErrNotFound when there is none).
	DeletePendingConnectRequest(ctx context.Context, appID, externalID string) error
	// DeleteConnectRequestsBefore removes validated requests authorized
	// before cutoff.
	DeleteConnectRequestsBefore(ctx context.Context, cutoff time.Time) error

	// UpdateExternalID replaces the external id of the app's package or
	// connect request with the code, or (code "") of those with oldID; it
	// returns how many were changed.
	UpdateExternalID(ctx context.Context, appID, code, oldID, newID string) (int, error)

	// SetAppSuccessMessage sets the message patients see after a pick-up or
	// authorization for the app ("Patient Connect Success message").
	SetAppSuccessMessage(ctx context.Context, appID, msg string) error
	AppSuccessMessage(ctx context.Context, appID string) (string, error)

	AddAudit(ctx context.Context, e AuditEvent) error
	// Audits lists the events of a person, newest first.
	Audits(ctx context.Context, personID string, limit int) ([]AuditEvent, error)

	CreateWebSession(ctx context.Context, s WebSession) error
	WebSession(ctx context.Context, tokenHash [sha256.Size]byte) (WebSession, error)
	DeleteWebSession(ctx context.Context, tokenHash [sha256.Size]byte) error
	DeleteExpiredWebSessions(ctx context.Context, now time.Time) error
}
