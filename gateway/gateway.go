// Package gateway takes the studies that the DICOM listener spools and gets
// them to their patients: it indexes every instance durably before the
// C-STORE is acknowledged, assembles studies, waits for each study's quiet
// period, routes it (record, drop-off/pick-up, hold), and delivers it as
// durable jobs: previews rendered, every DICOM file and preview streamed as
// a SHA256Block-hashed blob, and the HealthVault medical image study thing
// written into the patient's record.
//
// Nothing is lost: an instance is acknowledged only once its spool file and
// its index row are durable; delivery jobs survive restarts (leases,
// retries with backoff, a visible failed state); a delivery interrupted at
// any point resumes without writing anything twice, because uploaded blobs
// are remembered and the study's thing is looked up by Study Instance UID
// before one is created.
package gateway

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"dicomgate/dimse/spool"
	"dicomgate/gateway/jobs"
	"dicomgate/gateway/route"
	"dicomgate/gateway/store"
	"dicomgate/mis"
	"dicomgate/platform/client"
	"dicomgate/platform/dopu"
	"dicomgate/platform/thing"
	"dicomgate/platform/wire"
	"dicomgate/previews"
)

// Platform is what delivery needs of the HealthVault platform;
// *platform/client.Client implements it.
type Platform interface {
	UploadBlob(ctx context.Context, recordID, name, contentType string, r io.Reader) (thing.Blob, error)
	PutThings(ctx context.Context, recordID string, things ...*thing.Thing) ([]thing.Key, error)
	GetThings(ctx context.Context, recordID string, groups ...wire.ThingRequestGroup) ([]wire.ThingResponseGroup, error)

	AllocatePackageID(ctx context.Context) (string, error)
	UploadPackageBlob(ctx context.Context, key *dopu.Key, name, contentType string, r io.Reader) (thing.Blob, error)
	CreateConnectPackage(ctx context.Context, p client.ConnectPackage) (string, error)
	DeletePendingConnectPackage(ctx context.Context, identityCode, externalID string) error
	UpdateExternalID(ctx context.Context, identityCode, oldExternalID, newExternalID string) error
	CreateConnectRequest(ctx context.Context, friendlyName, question, answer, externalID, callbackURL string) (string, error)
	GetAuthorizedConnectRequests(ctx context.Context, since time.Time) ([]client.ConnectRequest, error)
}

var _ Platform = (*client.Client)(nil)

// Signer signs things before they are written (SPEC §8). Nil means things
// go unsigned.
type Signer struct {
	Key  *rsa.PrivateKey
	Cert *x509.Certificate
	Hash crypto.Hash // crypto.SHA256 (default) or crypto.SHA1
}

// Config configures a Gateway. Zero values take the defaults in comments.
type Config struct {
	// QuietPeriod is how long a study must receive nothing before it is
	// delivered (60 s).
	QuietPeriod time.Duration
	// MaxAttempts bounds the tries of one delivery (8).
	MaxAttempts int
	// Workers is the number of studies delivered at once (2).
	Workers int
	// Parallel is the number of instances rendered and uploaded at once
	// within one delivery (4).
	Parallel int
	// RetryBase and RetryMax bound the backoff between attempts (10 s, 15 min).
	RetryBase, RetryMax time.Duration
	// MISVersion is the medical image study version written (mis.V2).
	MISVersion mis.Version
	// Previews configures rendering (previews.DefaultOptions()).
	Previews previews.Options
	// Signer, when set, signs every thing written into a record.
	Signer *Signer
	// NoEagerUpload turns off uploading each instance's file and thumbnail
	// while its study still arrives (when the study already routes to a
	// connected patient's record).
	NoEagerUpload bool
	// Rules and DefaultAction route studies (every study held when empty).
	Rules         []route.Rule
	DefaultAction route.Action
	// Sealer keeps pick-up answers sealed at rest (required for DOPU).
	Sealer Sealer
	// Mailer queues the code mails (none are sent when nil).
	Mailer Mailer
	// PublicURL is the platform's URL as patients reach it: the pick-up
	// link in mails and letters.
	PublicURL string
	// Institution names the hospital in mails and letters.
	Institution string
	// PackageTTL is how long a pick-up code works (4 weeks, the platform's
	// default).
	PackageTTL time.Duration
	// ConnectPoll is how often authorized Patient Connect requests are
	// fetched (30 s).
	ConnectPoll time.Duration
	// Log receives the gateway's log lines (slog.Default()).
	Log *slog.Logger
	// Now is the clock (time.Now).
	Now func() time.Time
}

// Gateway is the delivery pipeline. Create it with New, plug it into the
// DICOM server as its Handler, and Run it.
type Gateway struct {
	cfg      Config
	store    store.Store
	spool    *spool.Spool
	platform Platform
	runner   *jobs.Runner
	eager    *eager
	indexer  *indexer
	log      *slog.Logger

	mu     sync.RWMutex
	routes *route.Table
}

// Job kinds.
const jobDeliver = "deliver"

// New returns a Gateway over its store, spool and platform.
func New(cfg Config, st store.Store, sp *spool.Spool, pf Platform) (*Gateway, error) {
	if cfg.QuietPeriod <= 0 {
		cfg.QuietPeriod = 60 * time.Second
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 8
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 4
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = 10 * time.Second
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 15 * time.Minute
	}
	if cfg.MISVersion == 0 {
		cfg.MISVersion = mis.V2
	}
	if _, err := cfg.MISVersion.TypeID(); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	if cfg.Previews.PreviewSize <= 0 {
		cfg.Previews.PreviewSize = previews.DefaultPreviewSize
	}
	if cfg.Previews.ThumbnailSize <= 0 {
		cfg.Previews.ThumbnailSize = previews.DefaultThumbnailSize
	}
	if cfg.PackageTTL <= 0 {
		cfg.PackageTTL = 28 * 24 * time.Hour
	}
	if cfg.ConnectPoll <= 0 {
		cfg.ConnectPoll = 30 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	g := &Gateway{cfg: cfg, store: st, spool: sp, platform: pf, log: cfg.Log}
	if err := g.SetRules(cfg.Rules, cfg.DefaultAction); err != nil {
		return nil, err
	}
	g.indexer = newIndexer(g)
	if !cfg.NoEagerUpload {
		g.eager = newEager(g)
	}
	g.runner = &jobs.Runner{
		Queue: st, Workers: cfg.Workers, BaseDelay: cfg.RetryBase, MaxDelay: cfg.RetryMax, Log: cfg.Log,
		Funcs:    map[string]jobs.Func{jobDeliver: g.deliverJob},
		OnFailed: g.deliveryFailed,
	}
	return g, nil
}

// SetRules replaces the routing rules; studies already routed keep their
// decision.
func (g *Gateway) SetRules(rules []route.Rule, def route.Action) error {
	t, err := route.Compile(rules, def)
	if err != nil {
		return err
	}
	g.mu.Lock()
	g.routes = t
	g.mu.Unlock()
	return nil
}

// Run indexes what the spool holds but the store does not (instances
// stored just before a crash), then routes studies whose quiet period is
// over and runs delivery jobs until ctx is done.
func (g *Gateway) Run(ctx context.Context) error {
	if err := g.Recover(ctx); err != nil {
		return err
	}
	if n, err := g.store.ReleaseRunning(ctx); err != nil {
		return fmt.Errorf("gateway: releasing the jobs of a previous run: %w", err)
	} else if n > 0 {
		g.log.Info("resuming deliveries interrupted by a restart", "jobs", n)
	}
	// A study marked for delivery whose job was not yet queued when the
	// process died gets its job now (one live job per study: no doubles).
	pending, err := g.store.Studies(ctx, store.StudyFilter{Limit: 100000,
		States: []store.StudyState{store.StateQueued, store.StateRendering, store.StateUploading}})
	if err != nil {
		return fmt.Errorf("gateway: studies in delivery: %w", err)
	}
	for _, st := range pending {
		if err := g.enqueue(ctx, st.StudyUID); err != nil {
			return fmt.Errorf("gateway: resuming %s: %w", st.StudyUID, err)
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- g.runner.Run(ctx) }()
	if g.eager != nil {
		go g.eager.run(ctx, g.cfg.Parallel)
	}
	// Studies are checked often, and exactly when the next quiet period
	// ends, so a study is routed as soon as it is due; both queries are
	// index range scans. A quiet period only ever moves later, and a new
	// one ends no sooner than the quiet period from now, so sleeping until
	// the earliest known end misses nothing; the 250 ms cap picks up what
	// the admin UI changes.
	const checkEvery = 250 * time.Millisecond
	t := time.NewTimer(checkEvery)
	defer t.Stop()
	var lastPoll time.Time
	for {
		if err := g.Schedule(ctx); err != nil && ctx.Err() == nil {
			g.log.Error("scheduling studies", "err", err)
		}
		t.Reset(g.nextCheck(ctx, checkEvery))
		if time.Since(lastPoll) >= g.cfg.ConnectPoll {
			lastPoll = time.Now()
			if err := g.PollConnect(ctx); err != nil && ctx.Err() == nil {
				g.log.Warn("polling Patient Connect", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			<-errc
			return ctx.Err()
		case <-t.C:
		}
	}
}

// nextCheck is how long the scheduler may sleep: until the earliest
// quiet period ends when that is sooner than limit, else limit (also when the
// earliest is past: a study whose routing failed is retried at the normal
// pace, not in a busy loop).
func (g *Gateway) nextCheck(ctx context.Context, limit time.Duration) time.Duration {
	next, err := g.store.NextReadyAt(ctx)
	if err != nil || next.IsZero() {
		return limit
	}
	if d := next.Sub(g.cfg.Now()); d > 0 && d < limit {
		return d + time.Millisecond
	}
	return limit
}

// DB returns the gateway's store, for the admin UI.
func (g *Gateway) DB() store.Store { return g.store }

// event appends to a study's history; a failure to log history must not
// fail the delivery, so it is only logged.
func (g *Gateway) event(ctx context.Context, studyUID, kind, format string, args ...any) {
	e := store.Event{StudyUID: studyUID, At: g.cfg.Now(), Kind: kind, Detail: fmt.Sprintf(format, args...)}
	if err := g.store.AddEvent(ctx, e); err != nil {
		g.log.Warn("study history", "study", studyUID, "err", err)
	}
}

// facts decodes the header facts kept with each instance.
func facts(ins []store.Instance) ([]mis.Instance, error) {
	out := make([]mis.Instance, 0, len(ins))
	for _, in := range ins {
		var f mis.Instance
		if err := json.Unmarshal(in.Facts, &f); err != nil {
			return nil, fmt.Errorf("instance %s: stored facts: %w", in.SOPInstanceUID, err)
		}
		out = append(out, f)
	}
	return out, nil
}

// ExternalID is the patient's id as the hospital knows it, the key of
// Patient Connect: the DICOM Patient ID, qualified by its issuer when the
// study names one ("ID^^^ISSUER", as in an HL7 CX).
func ExternalID(patientID, issuer string) string {
	if issuer == "" {
		return patientID
	}
	return patientID + "^^^" + issuer
}

// ErrNotDeliverable reports a study the gateway cannot deliver as asked.
var ErrNotDeliverable = errors.New("gateway: study cannot be delivered")
