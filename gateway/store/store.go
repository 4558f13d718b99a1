// Package store is the gateway's durable state: every spooled instance, the
// studies they form and where each study is on its way to the patient,
// delivery jobs, pick-up registrations, Patient Connect mappings and
// settings.
//
// One interface, Store, has one SQL implementation that runs on SQLite
// (modernc.org/sqlite, the default) and on PostgreSQL (pgx/v5); the
// conformance suite in storetest runs against both. Times are stored as
// Unix nanoseconds so that both databases compare them the same way.
package store

import (
	"context"
	"errors"
	"time"
)

// Errors a Store returns; wrap-checked with errors.Is.
var (
	// ErrNotFound reports that the requested row does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict reports a uniqueness or state conflict.
	ErrConflict = errors.New("store: conflict")
	// ErrNoJob reports that no job is due.
	ErrNoJob = errors.New("store: no job due")
)

// Instance is one spooled DICOM instance.
type Instance struct {
	SOPInstanceUID string
	SOPClassUID    string
	StudyUID       string
	SeriesUID      string
	TransferSyntax string
	Path           string // the spool file, a Part 10 file
	Size           int64
	CallingAE      string
	PeerAddr       string
	ReceivedAt     time.Time
	// Facts is the header facts the MIS builder needs, serialized by the
	// gateway (JSON), so a study can be rebuilt without re-reading files.
	Facts []byte
	// Delivered is set when the instance reached its destination.
	Delivered bool
}

// NewInstance is one instance for PutInstances: the instance, its study's
// facts and the end of the study's quiet period.
type NewInstance struct {
	Instance Instance
	Facts    Study
	ReadyAt  time.Time
}

// StudyState is where a study is on its way to the patient.
type StudyState string

// The states a study moves through. A study that receives instances after
// delivery goes back to receiving and is delivered again as an update.
const (
	StateReceiving      StudyState = "receiving"       // waiting for the quiet period
	StateQueued         StudyState = "queued"          // a delivery job is pending
	StateRendering      StudyState = "rendering"       // previews being made
	StateUploading      StudyState = "uploading"       // blobs being streamed
	StateDelivered      StudyState = "delivered"       // in the record or package
	StateWaitingPatient StudyState = "waiting-patient" // record route, no Patient Connect mapping yet
	StateWaitingPickup  StudyState = "waiting-pickup"  // DOPU route, no pick-up registration yet
	StateHeld           StudyState = "held"            // staff decide
	StateFailed         StudyState = "failed"          // attempts exhausted; Error says why
	StateDiscarded      StudyState = "discarded"       // staff discarded it
)

// Study is one study as the gateway assembles it.
type Study struct {
	StudyUID           string
	PatientID          string
	IssuerOfPatientID  string
	PatientName        string
	StudyDate          string
	StudyDescription   string
	AccessionNumber    string
	ReferringPhysician string
	Modalities         []string
	CallingAE          string

	State       StudyState
	Route       string // the routing action chosen (record, dopu, hold)
	RouteReason string // which rule chose it
	Error       string // the reason of the last failure

	Instances     int // instances received
	Delivered     int // instances delivered
	BlobsDone     int
	BlobsTotal    int
	Attempts      int
	FirstReceived time.Time
	LastReceived  time.Time
	ReadyAt       time.Time // end of the quiet period
	DeliveredAt   time.Time
	UpdatedAt     time.Time
	ThingID       string // the MIS thing in the record, once written
	VersionStamp  string
	PersonID      string
	RecordID      string
	PackageCode   string // the DOPU identity code, once created
	PickupID      int64  // the pick-up registration the study was bound to
}

// StudyFilter selects studies for listings. Zero fields select everything.
type StudyFilter struct {
	States    []StudyState
	PatientID string
	Limit     int // 0 means 200
}

// Job is a durable unit of work: delivering one study, say. Jobs are
// claimed with a lease; a job whose lease lapsed (its worker died) is
// claimed again.
type Job struct {
	ID          int64
	Kind        string
	Key         string // e.g. the Study Instance UID; one live job per kind+key
	State       JobState
	Attempts    int
	MaxAttempts int
	RunAt       time.Time
	LeaseUntil  time.Time
	LastError   string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// JobState is the life of a job.
type JobState string

// Job states.
const (
	JobAvailable JobState = "available"
	JobRunning   JobState = "running"
	JobDone      JobState = "done"
	JobFailed    JobState = "failed"
)

// Pickup is a drop-off/pick-up registration made by the front desk before
// or after the study arrives.
type Pickup struct {
	ID                int64
	PatientID         string
	IssuerOfPatientID string
	AccessionNumber   string // optional: binds to one study
	Email             string
	FriendlyName      string
	Question          string
	// AnswerSealed is the secret answer encrypted with the gateway's key;
	// it is erased once the package is built.
	AnswerSealed []byte
	IdentityCode string // from AllocatePackageId
	StudyUID     string // set when bound to a study
	State        string // registered, packaged, erased …
	CreatedAt    time.Time
	ExpiresAt    time.Time
}

// PatientLink maps an external patient id (DICOM Patient ID and issuer) to
// the HealthVault person and record that Patient Connect authorized.
type PatientLink struct {
	ExternalID   string
	PersonID     string
	RecordID     string
	AuthorizedAt time.Time
}

// UploadedBlob remembers a blob that reached the platform, so that a
// delivery resumed after a crash does not upload it again.
type UploadedBlob struct {
	StudyUID      string
	Name          string
	ContentType   string
	RefURL        string
	Hash          string // base64 SHA256Block
	BlockSize     int64
	ContentLength int64
}

// Event is one line of a study's delivery history.
type Event struct {
	StudyUID string
	At       time.Time
	Kind     string
	Detail   string
}

// Store is everything the gateway keeps.
type Store interface {
	Admin
	// PutInstances records spooled instances in one transaction and folds
	// each into its study (created with the instance's facts when new),
	// whose quiet period then ends at the instance's ReadyAt. created[i]
	// reports whether batch[i] was new: an instance whose SOP Instance UID
	// is already known changes nothing.
	PutInstances(ctx context.Context, batch []NewInstance) (created []bool, err error)
	// Instance returns one instance by SOP Instance UID.
	Instance(ctx context.Context, sopInstanceUID string) (Instance, error)
	// StudyInstances lists a study's instances in receiving order.
	StudyInstances(ctx context.Context, studyUID string) ([]Instance, error)
	// MarkDelivered flags instances as delivered.
	MarkDelivered(ctx context.Context, sopInstanceUIDs []string) error

	// Study returns one study.
	Study(ctx context.Context, studyUID string) (Study, error)
	// Studies lists studies, most recently received first.
	Studies(ctx context.Context, f StudyFilter) ([]Study, error)
	// UpdateStudy reads a study, lets fn change it and writes it back in
	// one transaction. An error from fn aborts the update and is returned.
	// fn must not call the store: the transaction holds the database (on
	// SQLite, its only connection).
	UpdateStudy(ctx context.Context, studyUID string, fn func(*Study) error) (Study, error)
	// DueStudies lists studies in state receiving whose quiet period ended
	// by now.
	DueStudies(ctx context.Context, now time.Time) ([]Study, error)
	// NextReadyAt returns the earliest end of a quiet period among the
	// studies in state receiving, or the zero time when none is receiving:
	// when the scheduler next has work.
	NextReadyAt(ctx context.Context) (time.Time, error)

	// EnqueueJob adds a job, or when a live (available or running) job of
	// the same kind and key exists, moves that job's RunAt earlier if
	// runAt is earlier, and returns it.
	EnqueueJob(ctx context.Context, kind, key string, runAt time.Time, maxAttempts int) (Job, error)
	// ClaimJob takes the earliest due job of one of the kinds, leases it
	// until now+lease and counts the attempt; ErrNoJob when none is due.
	ClaimJob(ctx context.Context, kinds []string, now time.Time, lease time.Duration) (Job, error)
	// ExtendLease pushes a running job's lease to until, so a long job is
	// not claimed again while its worker is alive.
	ExtendLease(ctx context.Context, id int64, until time.Time) error
	// FinishJob marks a claimed job done.
	FinishJob(ctx context.Context, id int64) error
	// RetryJob records a failed attempt and makes the job due again at
	// runAt, or failed for good when it has no attempts left. It reports
	// whether the job failed for good.
	RetryJob(ctx context.Context, id int64, reason string, runAt time.Time) (bool, error)
	// ReleaseRunning makes every running job available again at once. A
	// gateway calls it when it starts, before its workers: the leases it
	// finds belong to a process that died (one gateway owns a store).
	ReleaseRunning(ctx context.Context) (int64, error)
	// FailJob marks a job failed for good with its reason.
	FailJob(ctx context.Context, id int64, reason string) error
	// Jobs lists the jobs for a key, newest first.
	Jobs(ctx context.Context, key string) ([]Job, error)

	// AddEvent appends to a study's delivery history.
	AddEvent(ctx context.Context, e Event) error
	// Events returns a study's history, oldest first.
	Events(ctx context.Context, studyUID string) ([]Event, error)

	// RecordBlobs remembers uploaded blobs in one transaction, each
	// replacing a blob of the same study and name.
	RecordBlobs(ctx context.Context, bs []UploadedBlob) error
	// Blobs lists the blobs uploaded for a study.
	Blobs(ctx context.Context, studyUID string) ([]UploadedBlob, error)
	// ForgetBlobs drops a study's blob records (before a fresh delivery).
	ForgetBlobs(ctx context.Context, studyUID string) error

	// CreatePickup stores a registration and returns it with its ID.
	CreatePickup(ctx context.Context, p Pickup) (Pickup, error)
	// Pickup returns one registration.
	Pickup(ctx context.Context, id int64) (Pickup, error)
	// Pickups lists registrations, newest first.
	Pickups(ctx context.Context) ([]Pickup, error)
	// FindPickup returns the oldest registration in state "registered" not
	// yet bound to a study, for the patient (and, when the registration
	// names one, the accession number).
	FindPickup(ctx context.Context, patientID, issuer, accession string) (Pickup, error)
	// UpdatePickup writes a registration back.
	UpdatePickup(ctx context.Context, p Pickup) error

	// PutLink stores or replaces a Patient Connect mapping.
	PutLink(ctx context.Context, l PatientLink) error
	// Link returns the mapping for an external id.
	Link(ctx context.Context, externalID string) (PatientLink, error)
	// Links lists every mapping.
	Links(ctx context.Context) ([]PatientLink, error)

	// Setting returns a stored setting's value; ErrNotFound when unset.
	Setting(ctx context.Context, key string) ([]byte, error)
	// PutSetting stores a setting.
	PutSetting(ctx context.Context, key string, value []byte) error

	// Close releases the database.
	Close() error
}
