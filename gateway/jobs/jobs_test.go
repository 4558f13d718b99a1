package jobs

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"dicomgate/gateway/store"
)

func openStore(t *testing.T) *store.SQL {
	s, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "gw.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// drain steps the runner until no job is due within wait.
func drain(t *testing.T, r *Runner, wait time.Duration) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		ran, err := r.RunOne(context.Background(), []string{"k"})
		if err != nil {
			t.Fatal(err)
		}
		if !ran {
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func TestRetryThenSucceed(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	calls := 0
	r := &Runner{Queue: s, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond, Funcs: map[string]Func{
		"k": func(ctx context.Context, j store.Job) error {
			calls++
			if calls < 3 {
				return fmt.Errorf("platform down (attempt %d)", j.Attempts)
			}
			return nil
		}}}
	s.EnqueueJob(ctx, "k", "study", time.Now(), 5)
	drain(t, r, 300*time.Millisecond)
	jobs, _ := s.Jobs(ctx, "study")
	if calls != 3 || jobs[0].State != store.JobDone || jobs[0].Attempts != 3 {
		t.Fatalf("calls %d, job %+v", calls, jobs[0])
	}
}

func TestAttemptsRunOut(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	var failedWith error
	r := &Runner{Queue: s, BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond,
		Funcs:    map[string]Func{"k": func(context.Context, store.Job) error { return errors.New("still down") }},
		OnFailed: func(_ context.Context, _ store.Job, err error) { failedWith = err }}
	s.EnqueueJob(ctx, "k", "study", time.Now(), 3)
	drain(t, r, 300*time.Millisecond)
	jobs, _ := s.Jobs(ctx, "study")
	if jobs[0].State != store.JobFailed || jobs[0].Attempts != 3 || jobs[0].LastError != "still down" || failedWith == nil {
		t.Fatalf("job %+v, OnFailed %v", jobs[0], failedWith)
	}
}

func TestPermanent(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	calls := 0
	r := &Runner{Queue: s, Funcs: map[string]Func{"k": func(context.Context, store.Job) error {
		calls++
		return fmt.Errorf("%w: study discarded", ErrPermanent)
	}}}
	s.EnqueueJob(ctx, "k", "study", time.Now(), 10)
	drain(t, r, 100*time.Millisecond)
	jobs, _ := s.Jobs(ctx, "study")
	if calls != 1 || jobs[0].State != store.JobFailed {
		t.Fatalf("calls %d, job %+v", calls, jobs[0])
	}
}

func TestBackoffBounds(t *testing.T) {
	r := &Runner{BaseDelay: time.Second, MaxDelay: 8 * time.Second}
	for attempt, max := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 10: 8 * time.Second} {
		for i := 0; i < 50; i++ {
			if d := r.backoff(attempt); d < 0 || d > max {
				t.Fatalf("backoff(%d) = %v, want within [0, %v]", attempt, d, max)
			}
		}
	}
}

// claimCounter counts the claims a runner makes on the real store.
type claimCounter struct {
	Queue
	claims atomic.Int32
}

func (c *claimCounter) ClaimJob(ctx context.Context, kinds []string, now time.Time, lease time.Duration) (store.Job, error) {
	c.claims.Add(1)
	return c.Queue.ClaimJob(ctx, kinds, now, lease)
}

// TestLeaseRenewal runs a job for several of its leases while a second
// runner keeps polling: the renewed lease keeps the job from running
// twice. The job ends only after the poller has looked for work well past
// the first lease, so the test does not depend on timing luck.
func TestLeaseRenewal(t *testing.T) {
	s := openStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const lease = 600 * time.Millisecond
	poller := &claimCounter{Queue: s}
	var running, runs atomic.Int32
	fn := func(ctx context.Context, j store.Job) error {
		if running.Add(1) > 1 {
			t.Error("job ran twice at once")
		}
		runs.Add(1)
		start := time.Now()
		before := poller.claims.Load()
		for time.Since(start) < 3*lease || poller.claims.Load() < before+20 {
			time.Sleep(20 * time.Millisecond)
		}
		running.Add(-1)
		return nil
	}
	s.EnqueueJob(ctx, "k", "study", time.Now(), 3)
	first := &Runner{Queue: s, Lease: lease, Funcs: map[string]Func{"k": fn}}
	done := make(chan error, 1)
	go func() {
		ran, err := first.RunOne(ctx, []string{"k"})
		if !ran && err == nil {
			err = errors.New("no job ran")
		}
		done <- err
	}()
	// The poller starts once the job runs, so it can only find it by
	// stealing an expired lease.
	for runs.Load() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	second := &Runner{Queue: poller, Lease: lease, Poll: 10 * time.Millisecond, Funcs: map[string]Func{"k": fn}}
	go second.Run(ctx)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	cancel()
	if runs.Load() != 1 || poller.claims.Load() < 20 {
		t.Fatalf("job ran %d times (want 1); the poller looked %d times", runs.Load(), poller.claims.Load())
	}
}

// TestWorkerDies stops a runner mid-job (as a crash would): after the lease
// lapses another runner finishes the job.
func TestWorkerDies(t *testing.T) {
	s := openStore(t)
	s.EnqueueJob(context.Background(), "k", "study", time.Now(), 3)
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	dying := &Runner{Queue: s, Lease: 100 * time.Millisecond, Funcs: map[string]Func{"k": func(ctx context.Context, j store.Job) error {
		close(started)
		<-ctx.Done()
		return ctx.Err()
	}}}
	go func() { <-started; cancel() }()
	dying.RunOne(ctx, []string{"k"})
	done := 0
	healthy := &Runner{Queue: s, Funcs: map[string]Func{"k": func(context.Context, store.Job) error { done++; return nil }}}
	drain(t, healthy, 300*time.Millisecond)
	jobs, _ := s.Jobs(context.Background(), "study")
	if done != 1 || jobs[0].State != store.JobDone || jobs[0].Attempts != 2 {
		t.Fatalf("done %d, job %+v", done, jobs[0])
	}
}
