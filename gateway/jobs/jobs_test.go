package jobs

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
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

// TestLeaseRenewal runs a job longer than its lease with a second runner
// polling: the renewed lease keeps the job from running twice.
func TestLeaseRenewal(t *testing.T) {
	s := openStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var running, runs atomic.Int32
	fn := func(ctx context.Context, j store.Job) error {
		if running.Add(1) > 1 {
			t.Error("job ran twice at once")
		}
		runs.Add(1)
		time.Sleep(900 * time.Millisecond)
		running.Add(-1)
		return nil
	}
	s.EnqueueJob(ctx, "k", "study", time.Now(), 3)
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		r := &Runner{Queue: s, Lease: 300 * time.Millisecond, Poll: 10 * time.Millisecond, Funcs: map[string]Func{"k": fn}}
		wg.Add(1)
		go func() { defer wg.Done(); r.Run(ctx) }()
	}
	time.Sleep(1200 * time.Millisecond)
	cancel()
	wg.Wait()
	if runs.Load() != 1 {
		t.Fatalf("job ran %d times, want 1", runs.Load())
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
