package mail

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"
)

// State is where a message is in the outbox.
type State string

// The states of a message: queued → sending → sent, or back to queued for
// another attempt, or failed when attempts are exhausted or the server
// refused the message for good.
const (
	StateQueued  State = "queued"
	StateSending State = "sending"
	StateSent    State = "sent"
	StateFailed  State = "failed"
)

// Errors a Store returns; check with errors.Is.
var (
	// ErrNothingDue reports that no queued message is due.
	ErrNothingDue = errors.New("mail: no message due")
	// ErrLeaseLost reports that a message is no longer held by the claim
	// that tries to settle it: its lease ran out and it was requeued or
	// claimed again.
	ErrLeaseLost = errors.New("mail: lease lost")
	// ErrNotFound reports an unknown message id.
	ErrNotFound = errors.New("mail: message not found")
)

// Record is a message in the outbox with its delivery state.
type Record struct {
	ID int64
	Message
	State State
	// Attempts counts claims: it grows by one each time a sender takes the
	// message, and a claim is identified by (ID, Attempts).
	Attempts  int
	LastError string
	// NextAttempt is when a queued message is due.
	NextAttempt time.Time
	// LeaseUntil is when a message in state sending goes back to queued if
	// its sender has not settled it.
	LeaseUntil time.Time
	Created    time.Time
	Updated    time.Time
	// Sent is when the server accepted the message; zero until then.
	Sent time.Time
}

// Store keeps the outbox durably. The gateway's database implements it;
// mailsql has implementations on SQLite and PostgreSQL and mailtest the
// conformance suite every implementation must pass.
//
// Claim, MarkSent, Retry and Fail form the delivery protocol: Claim moves
// one due message from queued to sending under a lease and returns it;
// the other three settle exactly that claim, identified by the message id
// and the attempt number Claim returned, and answer ErrLeaseLost when the
// message has moved on meanwhile.
type Store interface {
	// Add queues m, due at now, and returns its id.
	Add(ctx context.Context, m Message, now time.Time) (int64, error)
	// AddOnce queues m under key unless a message with that key exists;
	// it returns the id of the message holding the key and whether it was
	// added now.
	AddOnce(ctx context.Context, key string, m Message, now time.Time) (int64, bool, error)
	// Claim takes the queued message that has been due longest (NextAttempt
	// <= now), sets it sending with LeaseUntil = now+lease and one more
	// attempt, and returns it. With nothing due it answers ErrNothingDue.
	Claim(ctx context.Context, now time.Time, lease time.Duration) (Record, error)
	// MarkSent records that the server accepted the message.
	MarkSent(ctx context.Context, id int64, attempt int, now time.Time) error
	// Retry puts the message back to queued, due at next, with the error
	// that ended this attempt.
	Retry(ctx context.Context, id int64, attempt int, lastErr string, next time.Time) error
	// Fail gives the message up with the reason.
	Fail(ctx context.Context, id int64, attempt int, reason string, now time.Time) error
	// RequeueExpired puts every message whose lease ended before now back to
	// queued, due at once, and returns how many it moved.
	RequeueExpired(ctx context.Context, now time.Time) (int64, error)
	// Get returns one message with its state.
	Get(ctx context.Context, id int64) (Record, error)
	// List returns up to limit messages, newest first, without their
	// bodies (Text and HTML are empty).
	List(ctx context.Context, limit int) ([]Record, error)
}

// Transport delivers one message. SMTP is the implementation; an error
// wrapping ErrRejected or ErrInvalidMessage is permanent.
type Transport interface {
	Send(ctx context.Context, m Message) error
}

// Config tunes the outbox. Zero fields take the defaults below.
type Config struct {
	// MaxAttempts bounds delivery attempts; the last failed one fails the
	// message. Default 10.
	MaxAttempts int
	// BaseDelay is the wait after the first failed attempt; it doubles with
	// every further attempt up to MaxDelay, with jitter. Defaults 1 minute
	// and 4 hours; with 10 attempts a message is given up after about a
	// day of trying.
	BaseDelay time.Duration
	MaxDelay  time.Duration
	// Lease is how long a claimed message may stay in state sending before
	// another sender may take it; it must exceed an attempt's duration.
	// Default 10 minutes.
	Lease time.Duration
	// AttemptTimeout bounds one delivery attempt. Default 2 minutes; at most
	// half the lease.
	AttemptTimeout time.Duration
	// PollInterval is how often Run looks for due messages when nothing
	// wakes it. Default 15 seconds.
	PollInterval time.Duration
}

// The defaults of Config.
const (
	DefaultMaxAttempts    = 10
	DefaultBaseDelay      = time.Minute
	DefaultMaxDelay       = 4 * time.Hour
	DefaultLease          = 10 * time.Minute
	DefaultAttemptTimeout = 2 * time.Minute
	DefaultPollInterval   = 15 * time.Second
)

func (c Config) withDefaults() Config {
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.BaseDelay <= 0 {
		c.BaseDelay = DefaultBaseDelay
	}
	if c.MaxDelay <= 0 {
		c.MaxDelay = DefaultMaxDelay
	}
	if c.MaxDelay < c.BaseDelay {
		c.MaxDelay = c.BaseDelay
	}
	if c.Lease <= 0 {
		c.Lease = DefaultLease
	}
	if c.AttemptTimeout <= 0 {
		c.AttemptTimeout = DefaultAttemptTimeout
	}
	if c.AttemptTimeout > c.Lease/2 {
		c.AttemptTimeout = c.Lease / 2
	}
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	return c
}

// maxErrorLen bounds the last error kept with a message.
const maxErrorLen = 1000

// settleTimeout bounds recording an attempt's outcome; it runs even when
// Run's context is cancelled, so an accepted message is marked sent.
const settleTimeout = 10 * time.Second

// Outbox queues messages in a Store and delivers them through a Transport.
type Outbox struct {
	store     Store
	transport Transport
	log       *slog.Logger
	cfg       Config
	wake      chan struct{}
	now       func() time.Time
}

// NewOutbox returns an outbox over store. transport is nil when no SMTP
// server is configured: messages are then queued and kept until a sender
// with a transport runs. log receives ids, states and errors, never bodies.
func NewOutbox(store Store, transport Transport, log *slog.Logger, cfg Config) *Outbox {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Outbox{
		store:     store,
		transport: transport,
		log:       log,
		cfg:       cfg.withDefaults(),
		wake:      make(chan struct{}, 1),
		now:       time.Now,
	}
}

// Enqueue validates m, stores it as queued and wakes Run. The returned id
// names the message in the outbox.
func (o *Outbox) Enqueue(ctx context.Context, m Message) (int64, error) {
	if err := m.Validate(); err != nil {
		return 0, err
	}
	id, err := o.store.Add(ctx, m, o.now())
	if err != nil {
		return 0, fmt.Errorf("mail: queue message: %w", err)
	}
	o.log.Info("mail queued", "id", id)
	select {
	case o.wake <- struct{}{}:
	default:
	}
	return id, nil
}

// EnqueueOnce is Enqueue for a message that must be queued at most once
// whatever the retries: a second call with the same key queues nothing
// and returns the first message's id.
func (o *Outbox) EnqueueOnce(ctx context.Context, key string, m Message) (int64, error) {
	if err := m.Validate(); err != nil {
		return 0, err
	}
	if key == "" {
		return 0, fmt.Errorf("%w: empty deduplication key", ErrInvalidMessage)
	}
	id, added, err := o.store.AddOnce(ctx, key, m, o.now())
	if err != nil {
		return 0, fmt.Errorf("mail: queue message: %w", err)
	}
	if added {
		o.log.Info("mail queued", "id", id)
		select {
		case o.wake <- struct{}{}:
		default:
		}
	}
	return id, nil
}

// Run delivers due messages until ctx is done, then returns nil. Without a
// transport it only waits: mail stays queued. Store errors are logged and
// retried at the next poll, so a database hiccup does not stop delivery.
func (o *Outbox) Run(ctx context.Context) error {
	if o.transport == nil {
		o.log.Warn("no SMTP server configured; mail stays in the outbox")
		<-ctx.Done()
		return nil
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-o.wake:
		}
		o.deliverDue(ctx)
		timer.Reset(o.cfg.PollInterval)
	}
}

// deliverDue requeues expired leases, then delivers due messages one by one
// until none is due or ctx is done.
func (o *Outbox) deliverDue(ctx context.Context) {
	n, err := o.store.RequeueExpired(ctx, o.now())
	if err != nil {
		o.log.Error("mail outbox: requeue expired leases", "err", err)
	} else if n > 0 {
		o.log.Warn("mail outbox: requeued messages whose sender stopped", "count", n)
	}
	for ctx.Err() == nil {
		rec, err := o.store.Claim(ctx, o.now(), o.cfg.Lease)
		if errors.Is(err, ErrNothingDue) {
			return
		}
		if err != nil {
			if ctx.Err() == nil {
				o.log.Error("mail outbox: claim", "err", err)
			}
			return
		}
		o.deliver(ctx, rec)
	}
}

// deliver makes one attempt at rec and records its outcome.
func (o *Outbox) deliver(ctx context.Context, rec Record) {
	var sendErr error
	if rec.Attempts > o.cfg.MaxAttempts {
		// Only leases that ran out (senders that died mid-attempt) get a
		// message here: stop a message that kills its sender from looping.
		sendErr = fmt.Errorf("mail: %d attempts without an outcome; last: %s", rec.Attempts-1, rec.LastError)
	} else {
		attemptCtx, cancel := context.WithTimeout(ctx, o.cfg.AttemptTimeout)
		sendErr = o.transport.Send(attemptCtx, rec.Message)
		cancel()
	}

	// Settle even when ctx was cancelled meanwhile: above all an accepted
	// message must be marked sent now, not resent after the lease.
	settleCtx, cancelSettle := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancelSettle()
	now := o.now()
	log := o.log.With("id", rec.ID, "attempt", rec.Attempts)
	var err error
	switch {
	case sendErr == nil:
		err = o.store.MarkSent(settleCtx, rec.ID, rec.Attempts, now)
		if err == nil {
			log.Info("mail sent")
		}
	case errors.Is(sendErr, ErrRejected) || errors.Is(sendErr, ErrInvalidMessage):
		err = o.store.Fail(settleCtx, rec.ID, rec.Attempts, truncate(sendErr.Error()), now)
		if err == nil {
			log.Error("mail failed: refused", "err", sendErr)
		}
	case rec.Attempts >= o.cfg.MaxAttempts:
		err = o.store.Fail(settleCtx, rec.ID, rec.Attempts, truncate(sendErr.Error()), now)
		if err == nil {
			log.Error("mail failed: attempts exhausted", "err", sendErr)
		}
	default:
		next := now.Add(backoff(rec.Attempts, o.cfg.BaseDelay, o.cfg.MaxDelay, rand.Float64()))
		err = o.store.Retry(settleCtx, rec.ID, rec.Attempts, truncate(sendErr.Error()), next)
		if err == nil {
			log.Warn("mail attempt failed; will retry", "err", sendErr, "next", next)
		}
	}
	if err != nil {
		// The message stays sending and returns to queued after its lease.
		log.Error("mail outbox: record attempt outcome", "err", err, "delivered", sendErr == nil)
	}
}

// backoff is the wait after failed attempt number attempt (1-based):
// base·2^(attempt-1) capped at ceiling, of which a random half is dropped
// (r in [0,1)) so that messages failing together do not retry together.
func backoff(attempt int, base, ceiling time.Duration, r float64) time.Duration {
	d := base
	for i := 1; i < attempt && d < ceiling; i++ {
		d *= 2
	}
	d = min(d, ceiling)
	return d/2 + time.Duration(r*float64(d/2))
}

// truncate bounds an error kept with a message and makes it valid UTF-8
// without NUL bytes, which PostgreSQL's text type refuses; server replies
// may contain anything.
func truncate(s string) string {
	if len(s) > maxErrorLen {
		s = s[:maxErrorLen]
	}
	return strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD")
}
