// Package store defines the persistence interface of dicomgate's bundled
// HealthVault-compatible platform: applications and their certificates,
// authenticated sessions, persons, records and application authorizations,
// things (HealthVault thing2, latest version with its version stamp) and
// streamed blobs (metadata and SHA256Block block hashes; the bytes live in
// files under the data directory, never in the database).
//
// Backends: store/sqlite (modernc.org/sqlite) and store/postgres (pgx/v5),
// both built on store/sqlstore; store/storetest is the conformance suite
// every backend passes.
package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"time"
)

// Sentinel errors every backend returns (wrapped or not).
var (
	// ErrNotFound means the addressed entity does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrExists means an entity with the same identity exists already.
	ErrExists = errors.New("store: already exists")
	// ErrVersionMismatch means an update named a version stamp that is not
	// the thing's current one.
	ErrVersionMismatch = errors.New("store: version stamp mismatch")
	// ErrConflict means a blob block was sent again with different bytes.
	ErrConflict = errors.New("store: conflicting blob block")
)

// App is a registered application.
type App struct {
	ID      string
	Name    string
	Created time.Time
}

// AppCert is a certificate registered for an app. Thumbprint is the
// uppercase hex SHA-1 of the DER bytes, as HealthVault names certificates.
type AppCert struct {
	AppID      string
	Thumbprint string
	DER        []byte
	Added      time.Time
}

// Session is an authenticated session. TokenHash is SHA-256 of the token
// (the token itself is never stored); SharedSecret keys request HMACs.
type Session struct {
	TokenHash    [sha256.Size]byte
	AppID        string
	SharedSecret []byte
	Created      time.Time
	Expires      time.Time
}

// Person is a HealthVault user. PasswordHash is an argon2id encoding.
type Person struct {
	ID           string
	Login        string
	Name         string
	PasswordHash string
	Created      time.Time
}

// Record is a health record owned by a person (self, a child, …).
type Record struct {
	ID           string
	PersonID     string
	Name         string
	Relationship string
	Created      time.Time
}

// Authorization grants an application access to a record.
type Authorization struct {
	AppID    string
	RecordID string
	Granted  time.Time
}

// ThingBlob is one blob of a stored thing. Streamed and inline blobs alike
// are files referenced by BlobID.
type ThingBlob struct {
	Name          string
	ContentType   string
	BlobID        string
	ContentLength int64
	// HashInfo is the serialized hash-info element as the thing carries it,
	// or empty.
	HashInfo []byte
}

// Thing is the current version of a thing.
type Thing struct {
	RecordID     string
	ID           string
	VersionStamp string
	TypeID       string
	State        string
	Flags        uint32
	EffDate      time.Time
	Created      time.Time
	CreatedApp   string
	Updated      time.Time
	UpdatedApp   string
	// DataXML holds the serialized data-xml elements, as received.
	DataXML []byte
	// SignatureInfo is the serialized signature-info element, or empty.
	SignatureInfo []byte
	Tags          string
	Blobs         []ThingBlob
	// Keys are the indexed leaf values of the type's root element: for a
	// root child <study-instance-uid>1.2</…> of <medical-image-study>, the
	// key "medical-image-study/study-instance-uid" with value "1.2".
	Keys map[string]string
}

// ThingWrite is one thing of an atomic PutThings: a new thing when
// PrevVersion is empty, otherwise an update that succeeds only if the
// thing's current version stamp is PrevVersion.
type ThingWrite struct {
	Thing       Thing
	PrevVersion string
}

// ThingQuery selects things of one record; all set fields must match
// (type ids and states are sets). Results are ordered by eff-date descending,
// then id, and start after After (an opaque thing id) when set.
type ThingQuery struct {
	RecordID string
	IDs      []string
	TypeIDs  []string
	States   []string
	// KeyPath/KeyValue select things whose indexed key equals the value.
	KeyPath  string
	KeyValue string
	Limit    int
}

// Blob states.
const (
	BlobUploading = "uploading"
	BlobComplete  = "complete"
)

// Blob is a streamed (or inline) blob's metadata.
type Blob struct {
	ID        string
	RecordID  string
	AppID     string
	State     string
	BlockSize int64
	MaxSize   int64
	// Total is the announced total length, or -1 while unknown.
	Total     int64
	Size      int64
	Hash      []byte
	Created   time.Time
	Completed time.Time
}

// BlobCompletion is what completing a blob records: its size, its
// SHA256Block root hash and when it was completed.
type BlobCompletion struct {
	Size int64
	Hash []byte
	At   time.Time
}

// Block is one received SHA256Block block of a blob.
type Block struct {
	Index  int64
	Length int64
	Hash   [sha256.Size]byte
}

// Store is everything the platform persists. Methods are safe for
// concurrent use.
type Store interface {
	Connect

	CreateApp(ctx context.Context, a App) error
	GetApp(ctx context.Context, id string) (App, error)
	AddAppCert(ctx context.Context, c AppCert) error
	AppCert(ctx context.Context, appID, thumbprint string) (AppCert, error)

	CreateSession(ctx context.Context, s Session) error
	Session(ctx context.Context, tokenHash [sha256.Size]byte) (Session, error)
	DeleteExpiredSessions(ctx context.Context, now time.Time) error

	CreatePerson(ctx context.Context, p Person) error
	GetPerson(ctx context.Context, id string) (Person, error)
	PersonByLogin(ctx context.Context, login string) (Person, error)
	CreateRecord(ctx context.Context, r Record) error
	GetRecord(ctx context.Context, id string) (Record, error)
	RecordsOfPerson(ctx context.Context, personID string) ([]Record, error)

	// Authorize grants appID access to recordID; granting twice is no error.
	Authorize(ctx context.Context, a Authorization) error
	Deauthorize(ctx context.Context, appID, recordID string) error
	IsAuthorized(ctx context.Context, appID, recordID string) (bool, error)

	// PutThings writes all things or none.
	PutThings(ctx context.Context, ws []ThingWrite) error
	// PickUpThings writes the things of a package into its record and
	// marks the package picked up, all or nothing, so that a crash cannot
	// leave things written for a package a later pick-up takes again. The
	// package must still be claimed with the claim that ended at
	// claimedUntil (ClaimPackage's until), else ErrNotPending: a pick-up
	// whose claim went stale and was taken over writes nothing.
	PickUpThings(ctx context.Context, code string, claimedUntil time.Time, recordID string, at time.Time, ws []ThingWrite) error
	// QueryThings returns things matching q (with blobs and keys).
	QueryThings(ctx context.Context, q ThingQuery) ([]Thing, error)

	CreateBlob(ctx context.Context, b Blob) error
	GetBlob(ctx context.Context, id string) (Blob, error)
	// PutBlock records a received block. Sending a block again with the same
	// length and hash is no error; with different ones it is ErrConflict.
	PutBlock(ctx context.Context, blobID string, b Block) error
	// SetBlobTotal records the announced total length once; a different
	// later announcement is ErrConflict.
	SetBlobTotal(ctx context.Context, blobID string, total int64) error
	// Blocks lists the received blocks with from <= index < to, in index
	// order; to < 0 means no upper bound.
	Blocks(ctx context.Context, blobID string, from, to int64) ([]Block, error)
	// CompleteBlob marks an uploading blob complete with its size and root hash.
	CompleteBlob(ctx context.Context, blobID string, size int64, hash []byte, at time.Time) error
	// UnreferencedBlobs lists blobs created before cutoff that no thing references.
	UnreferencedBlobs(ctx context.Context, cutoff time.Time) ([]Blob, error)
	DeleteBlob(ctx context.Context, id string) error

	Close() error
}
