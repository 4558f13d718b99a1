// Package jobs runs the gateway's durable jobs: workers claim due jobs from
// the store with a lease, renew the lease while they work, and on failure
// reschedule the job with exponential backoff and full jitter until its
// attempts run out, when it stays failed with its reason. A process killed
// mid-job loses nothing: the lease lapses and another worker takes the job.
package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"dicomgate/gateway/store"
)

// Func does one job. Returning nil finishes it; an error schedules a retry,
// unless it wraps ErrPermanent.
type Func func(ctx context.Context, j store.Job) error

// ErrPermanent marks an error that retrying cannot fix: the job fails at
// once. Wrap it: fmt.Errorf("%w: no such study", jobs.ErrPermanent).
var ErrPermanent = errors.New("permanent failure")

// Queue is what the runner needs of the store.
type Queue interface {
	ClaimJob(ctx context.Context, kinds []string, now time.Time, lease time.Duration) (store.Job, error)
	ExtendLease(ctx context.Context, id int64, until time.Time) error
	FinishJob(ctx context.Context, id int64) error
	RetryJob(ctx context.Context, id int64, reason string, runAt time.Time) (bool, error)
	FailJob(ctx context.Context, id int64, reason string) error
}

// Runner runs jobs. Set the fields before Run; Funcs maps a job kind to
// the function that does it.
type Runner struct {
	Queue   Queue
	Funcs   map[string]Func
	Workers int           // concurrent jobs; 0 means 2
	Lease   time.Duration // 0 means 2 minutes; renewed at a third of it
	Poll    time.Duration // how often idle workers look for work; 0 means 1s
	// BaseDelay and MaxDelay bound the backoff: attempt n waits a random
	// time in [0, min(MaxDelay, BaseDelay·2^(n-1))]. 0 means 5s and 10min.
	BaseDelay, MaxDelay time.Duration
	// OnFailed, when set, is called after a job failed for good.
	OnFailed func(ctx context.Context, j store.Job, err error)
	Log      *slog.Logger

	wake chan struct{}
	once sync.Once
}

func (r *Runner) init() {
	r.once.Do(func() { r.wake = make(chan struct{}, 1) })
}

// Wake tells an idle worker to look for work now (after enqueueing).
func (r *Runner) Wake() {
	r.init()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run works until ctx is cancelled.
func (r *Runner) Run(ctx context.Context) error {
	r.init()
	n := r.Workers
	if n <= 0 {
		n = 2
	}
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.work(ctx)
		}()
	}
	wg.Wait()
	return ctx.Err()
}

func (r *Runner) kinds() []string {
	out := make([]string, 0, len(r.Funcs))
	for k := range r.Funcs {
		out = append(out, k)
	}
	return out
}

func (r *Runner) log() *slog.Logger {
	if r.Log != nil {
		return r.Log
	}
	return slog.Default()
}

func (r *Runner) work(ctx context.Context) {
	poll := r.Poll
	if poll <= 0 {
		poll = time.Second
	}
	kinds := r.kinds()
	for ctx.Err() == nil {
		ran, err := r.RunOne(ctx, kinds)
		if err != nil && ctx.Err() == nil {
			r.log().Error("job queue", "err", err)
		}
		if ran {
			continue
		}
		select {
		case <-ctx.Done():
		case <-r.wake:
		case <-time.After(poll):
		}
	}
}

// RunOne claims and runs one due job of the given kinds, reporting whether
// there was one. Tests use it to step the queue.
func (r *Runner) RunOne(ctx context.Context, kinds []string) (bool, error) {
	lease := r.Lease
	if lease <= 0 {
		lease = 2 * time.Minute
	}
	j, err := r.Queue.ClaimJob(ctx, kinds, time.Now(), lease)
	if errors.Is(err, store.ErrNoJob) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	fn := r.Funcs[j.Kind]
	jobCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		// Renew the lease while the job runs; losing it means another
		// worker may take the job, so stop this one.
		t := time.NewTicker(lease / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if err := r.Queue.ExtendLease(ctx, j.ID, time.Now().Add(lease)); err != nil {
					r.log().Warn("job lease lost", "job", j.ID, "kind", j.Kind, "err", err)
					cancel()
					return
				}
			}
		}
	}()
	var runErr error
	if fn == nil {
		runErr = fmt.Errorf("%w: no function for job kind %q", ErrPermanent, j.Kind)
	} else {
		runErr = fn(jobCtx, j)
	}
	close(done)
	<-renewed
	cancel()
	if ctx.Err() != nil {
		// Shutting down: leave the job leased; it is retried after the
		// lease, which is what happens after a crash too.
		return true, ctx.Err()
	}
	if runErr == nil {
		return true, r.Queue.FinishJob(ctx, j.ID)
	}
	var failed bool
	if errors.Is(runErr, ErrPermanent) {
		failed = true
		err = r.Queue.FailJob(ctx, j.ID, runErr.Error())
	} else {
		failed, err = r.Queue.RetryJob(ctx, j.ID, runErr.Error(), time.Now().Add(r.backoff(j.Attempts)))
	}
	if err != nil {
		return true, err
	}
	if failed {
		r.log().Error("job failed for good", "job", j.ID, "kind", j.Kind, "key", j.Key, "attempts", j.Attempts, "err", runErr)
		if r.OnFailed != nil {
			r.OnFailed(ctx, j, runErr)
		}
	} else {
		r.log().Warn("job will be retried", "job", j.ID, "kind", j.Kind, "key", j.Key, "attempt", j.Attempts, "err", runErr)
	}
	return true, nil
}

// backoff is exponential with full jitter.
func (r *Runner) backoff(attempt int) time.Duration {
	base, max := r.BaseDelay, r.MaxDelay
	if base <= 0 {
		base = 5 * time.Second
	}
	if max <= 0 {
		max = 10 * time.Minute
	}
	d := base
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return time.Duration(rand.Int64N(int64(d) + 1))
}
