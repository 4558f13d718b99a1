// Package mailtest is the conformance suite for implementations of
// mail.Store: every implementation runs RunStoreTests from its own tests.
package mailtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"dicomgate/gateway/mail"
)

// NewStore returns an empty store for one subtest; the suite calls it once
// per subtest, and cleanup is the caller's (t.Cleanup).
type NewStore func(t *testing.T) mail.Store

// base is the suite's clock: fixed, so results do not depend on when the
// tests run.
var base = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

func msg(n int) mail.Message {
	return mail.Message{
		To:      fmt.Sprintf("patient%d@example.org", n),
		Subject: fmt.Sprintf("subject %d", n),
		Text:    fmt.Sprintf("text %d ünïcödé", n),
		HTML:    fmt.Sprintf("<p>html %d</p>", n),
	}
}

// RunStoreTests runs the conformance suite against stores from newStore.
func RunStoreTests(t *testing.T, newStore NewStore) {
	tests := []struct {
		name string
		run  func(t *testing.T, s mail.Store)
	}{
		{"AddGet", testAddGet},
		{"AddOnce", testAddOnce},
		{"ClaimOrder", testClaimOrder},
		{"ClaimNotDue", testClaimNotDue},
		{"MarkSent", testMarkSent},
		{"RetryBackoff", testRetry},
		{"Fail", testFail},
		{"LeaseExpiry", testLeaseExpiry},
		{"StaleSettle", testStaleSettle},
		{"UnknownID", testUnknownID},
		{"List", testList},
		{"ConcurrentClaims", testConcurrentClaims},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, newStore(t))
		})
	}
}

func add(t *testing.T, s mail.Store, m mail.Message, now time.Time) int64 {
	t.Helper()
	id, err := s.Add(context.Background(), m, now)
	if err != nil {
		t.Fatalf("Add: %v", err)
	}
	return id
}

func claim(t *testing.T, s mail.Store, now time.Time, lease time.Duration) mail.Record {
	t.Helper()
	r, err := s.Claim(context.Background(), now, lease)
	if err != nil {
		t.Fatalf("Claim at %v: %v", now, err)
	}
	return r
}

func get(t *testing.T, s mail.Store, id int64) mail.Record {
	t.Helper()
	r, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get(%d): %v", id, err)
	}
	return r
}

func wantNothingDue(t *testing.T, s mail.Store, now time.Time) {
	t.Helper()
	r, err := s.Claim(context.Background(), now, time.Minute)
	if !errors.Is(err, mail.ErrNothingDue) {
		t.Fatalf("Claim at %v = %+v, %v; want ErrNothingDue", now, r, err)
	}
}

func testAddGet(t *testing.T, s mail.Store) {
	m := msg(1)
	id := add(t, s, m, base)
	r := get(t, s, id)
	if r.ID != id || r.Message != m {
		t.Errorf("Get = %+v, want id %d and message %+v", r, id, m)
	}
	if r.State != mail.StateQueued || r.Attempts != 0 || r.LastError != "" {
		t.Errorf("new message: state %q attempts %d error %q", r.State, r.Attempts, r.LastError)
	}
	if !r.Created.Equal(base) || !r.NextAttempt.Equal(base) || !r.Sent.IsZero() || !r.LeaseUntil.IsZero() {
		t.Errorf("new message times: created %v next %v sent %v lease %v", r.Created, r.NextAttempt, r.Sent, r.LeaseUntil)
	}
	id2 := add(t, s, msg(2), base)
	if id2 == id {
		t.Errorf("two messages share id %d", id)
	}
}

func testClaimOrder(t *testing.T, s mail.Store) {
	late := add(t, s, msg(1), base.Add(2*time.Second))
	early := add(t, s, msg(2), base)
	same := add(t, s, msg(3), base.Add(2*time.Second))
	now := base.Add(time.Minute)
	for _, want := range []int64{early, late, same} {
		r := claim(t, s, now, time.Minute)
		if r.ID != want {
			t.Fatalf("claimed %d, want %d (longest due first, then id)", r.ID, want)
		}
		if r.State != mail.StateSending || r.Attempts != 1 || !r.LeaseUntil.Equal(now.Add(time.Minute)) {
			t.Errorf("claimed record: state %q attempts %d lease %v", r.State, r.Attempts, r.LeaseUntil)
		}
		if r.Text == "" || r.HTML == "" || r.To == "" {
			t.Errorf("claimed record lacks its message: %+v", r)
		}
	}
	wantNothingDue(t, s, now)
}

func testClaimNotDue(t *testing.T, s mail.Store) {
	wantNothingDue(t, s, base)
	add(t, s, msg(1), base)
	wantNothingDue(t, s, base.Add(-time.Nanosecond))
	claim(t, s, base, time.Minute)
}

func testMarkSent(t *testing.T, s mail.Store) {
	ctx := context.Background()
	id := add(t, s, msg(1), base)
	r := claim(t, s, base, time.Minute)
	sentAt := base.Add(3 * time.Second)
	if err := s.MarkSent(ctx, id, r.Attempts, sentAt); err != nil {
		t.Fatalf("MarkSent: %v", err)
	}
	got := get(t, s, id)
	if got.State != mail.StateSent || !got.Sent.Equal(sentAt) || got.Attempts != 1 {
		t.Errorf("after MarkSent: %+v", got)
	}
	wantNothingDue(t, s, base.Add(time.Hour))
	if n, err := s.RequeueExpired(ctx, base.Add(time.Hour)); err != nil || n != 0 {
		t.Errorf("RequeueExpired after sent = %d, %v; want 0", n, err)
	}
	if err := s.MarkSent(ctx, id, r.Attempts, sentAt); !errors.Is(err, mail.ErrLeaseLost) {
		t.Errorf("second MarkSent = %v, want ErrLeaseLost", err)
	}
}

func testRetry(t *testing.T, s mail.Store) {
	ctx := context.Background()
	id := add(t, s, msg(1), base)
	r := claim(t, s, base, time.Minute)
	next := base.Add(5 * time.Minute)
	if err := s.Retry(ctx, id, r.Attempts, "421 try later", next); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	got := get(t, s, id)
	if got.State != mail.StateQueued || got.LastError != "421 try later" || !got.NextAttempt.Equal(next) || got.Attempts != 1 {
		t.Errorf("after Retry: %+v", got)
	}
	wantNothingDue(t, s, next.Add(-time.Second))
	r2 := claim(t, s, next, time.Minute)
	if r2.ID != id || r2.Attempts != 2 {
		t.Errorf("second claim: id %d attempts %d, want %d and 2", r2.ID, r2.Attempts, id)
	}
}

func testFail(t *testing.T, s mail.Store) {
	ctx := context.Background()
	id := add(t, s, msg(1), base)
	r := claim(t, s, base, time.Minute)
	if err := s.Fail(ctx, id, r.Attempts, "550 no such user", base); err != nil {
		t.Fatalf("Fail: %v", err)
	}
	got := get(t, s, id)
	if got.State != mail.StateFailed || got.LastError != "550 no such user" {
		t.Errorf("after Fail: %+v", got)
	}
	wantNothingDue(t, s, base.Add(24*time.Hour))
	if n, err := s.RequeueExpired(ctx, base.Add(24*time.Hour)); err != nil || n != 0 {
		t.Errorf("RequeueExpired after failed = %d, %v; want 0", n, err)
	}
}

func testLeaseExpiry(t *testing.T, s mail.Store) {
	ctx := context.Background()
	id := add(t, s, msg(1), base)
	claim(t, s, base, time.Minute)
	// Within the lease the message stays with its sender.
	if n, err := s.RequeueExpired(ctx, base.Add(59*time.Second)); err != nil || n != 0 {
		t.Fatalf("RequeueExpired within lease = %d, %v; want 0", n, err)
	}
	wantNothingDue(t, s, base.Add(59*time.Second))
	later := base.Add(2 * time.Minute)
	n, err := s.RequeueExpired(ctx, later)
	if err != nil || n != 1 {
		t.Fatalf("RequeueExpired after lease = %d, %v; want 1", n, err)
	}
	got := get(t, s, id)
	if got.State != mail.StateQueued || got.LastError == "" || got.Attempts != 1 {
		t.Errorf("requeued: %+v", got)
	}
	r := claim(t, s, later, time.Minute)
	if r.ID != id || r.Attempts != 2 {
		t.Errorf("reclaimed id %d attempt %d, want %d and 2", r.ID, r.Attempts, id)
	}
}

// testStaleSettle checks fencing: a sender whose lease ran out and whose
// message was claimed again cannot settle it.
func testStaleSettle(t *testing.T, s mail.Store) {
	ctx := context.Background()
	id := add(t, s, msg(1), base)
	first := claim(t, s, base, time.Minute)
	later := base.Add(2 * time.Minute)
	if _, err := s.RequeueExpired(ctx, later); err != nil {
		t.Fatal(err)
	}
	second := claim(t, s, later, time.Minute)
	for name, err := range map[string]error{
		"MarkSent": s.MarkSent(ctx, id, first.Attempts, later),
		"Retry":    s.Retry(ctx, id, first.Attempts, "x", later),
		"Fail":     s.Fail(ctx, id, first.Attempts, "x", later),
	} {
		if !errors.Is(err, mail.ErrLeaseLost) {
			t.Errorf("stale %s = %v, want ErrLeaseLost", name, err)
		}
	}
	if err := s.MarkSent(ctx, id, second.Attempts, later); err != nil {
		t.Errorf("current MarkSent: %v", err)
	}
}

func testUnknownID(t *testing.T, s mail.Store) {
	ctx := context.Background()
	if _, err := s.Get(ctx, 424242); !errors.Is(err, mail.ErrNotFound) {
		t.Errorf("Get unknown = %v, want ErrNotFound", err)
	}
	if err := s.MarkSent(ctx, 424242, 1, base); !errors.Is(err, mail.ErrNotFound) {
		t.Errorf("MarkSent unknown = %v, want ErrNotFound", err)
	}
}

func testList(t *testing.T, s mail.Store) {
	ctx := context.Background()
	if l, err := s.List(ctx, 10); err != nil || len(l) != 0 {
		t.Fatalf("List empty = %v, %v", l, err)
	}
	var ids []int64
	for i := range 3 {
		ids = append(ids, add(t, s, msg(i), base.Add(time.Duration(i)*time.Second)))
	}
	r := claim(t, s, base.Add(time.Hour), time.Minute)
	if err := s.Fail(ctx, r.ID, r.Attempts, "550 refused", base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	l, err := s.List(ctx, 2)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(l) != 2 || l[0].ID != ids[2] || l[1].ID != ids[1] {
		t.Fatalf("List(2) ids = %v, want newest first %d, %d", recordIDs(l), ids[2], ids[1])
	}
	all, err := s.List(ctx, 100)
	if err != nil || len(all) != 3 {
		t.Fatalf("List(100) = %d records, %v", len(all), err)
	}
	for _, r := range all {
		if r.Text != "" || r.HTML != "" {
			t.Errorf("List returned a body for %d", r.ID)
		}
		if r.To == "" || r.Subject == "" || r.Created.IsZero() {
			t.Errorf("List record incomplete: %+v", r)
		}
	}
	if all[2].State != mail.StateFailed || all[2].LastError != "550 refused" || all[2].Attempts != 1 {
		t.Errorf("failed message in list: %+v", all[2])
	}
}

func recordIDs(rs []mail.Record) []int64 {
	ids := make([]int64, len(rs))
	for i, r := range rs {
		ids[i] = r.ID
	}
	return ids
}

// testConcurrentClaims checks that concurrent senders never get the same
// message.
func testConcurrentClaims(t *testing.T, s mail.Store) {
	const n = 20
	for i := range n {
		add(t, s, msg(i), base)
	}
	var (
		mu   sync.Mutex
		seen = make(map[int64]int)
		wg   sync.WaitGroup
		errs = make(chan error, 4)
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				r, err := s.Claim(context.Background(), base, time.Minute)
				if errors.Is(err, mail.ErrNothingDue) {
					return
				}
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				seen[r.ID]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Claim: %v", err)
	}
	if len(seen) != n {
		t.Errorf("claimed %d distinct messages, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Errorf("message %d claimed %d times", id, c)
		}
	}
}

// testAddOnce: a key queues its message once; other keys and keyless
// messages are independent.
func testAddOnce(t *testing.T, s mail.Store) {
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	m := mail.Message{To: "a@example.org", Subject: "s", Text: "t"}
	id1, added, err := s.AddOnce(ctx, "pickup:1", m, now)
	if err != nil || !added {
		t.Fatalf("first AddOnce = %d, %v, %v", id1, added, err)
	}
	id2, added, err := s.AddOnce(ctx, "pickup:1", m, now)
	if err != nil || added || id2 != id1 {
		t.Fatalf("second AddOnce = %d, %v, %v; want %d, false", id2, added, err, id1)
	}
	id3, added, err := s.AddOnce(ctx, "pickup:2", m, now)
	if err != nil || !added || id3 == id1 {
		t.Fatalf("other key = %d, %v, %v", id3, added, err)
	}
	add(t, s, m, now)
	add(t, s, m, now)
	list, err := s.List(ctx, 10)
	if err != nil || len(list) != 4 {
		t.Fatalf("List = %d messages, %v; want 4", len(list), err)
	}
}
