package web

import (
	"fmt"
	"testing"
	"time"
)

// TestFailureLogKeepsLockouts fills the log to its bound: a locked-out key
// must stay locked (the old code wiped the whole map), expired keys make
// room, and live ones are never evicted.
func TestFailureLogKeepsLockouts(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := newFailureLog(15*time.Minute, 5, 100)
	for range 5 {
		f.add("victim", t0)
	}
	if n := f.count("victim", t0); n != 5 {
		t.Fatalf("victim has %d failures, want 5", n)
	}
	now := t0.Add(time.Minute)
	for i := range 500 {
		f.add(fmt.Sprintf("spray-%d", i), now)
	}
	if len(f.m) > 100 {
		t.Fatalf("log holds %d keys, bound 100", len(f.m))
	}
	if n := f.count("victim", now); n != 5 {
		t.Fatalf("after a spray of logins the victim has %d failures, want 5 (still locked)", n)
	}
	// Once the window passed, the expired keys make room.
	later := t0.Add(20 * time.Minute)
	f.add("new", later)
	if n := f.count("new", later); n != 1 {
		t.Fatalf("new key after expiry: %d failures, want 1", n)
	}
	if n := f.count("victim", later); n != 0 {
		t.Fatalf("victim after the window: %d failures, want 0", n)
	}
	// Failures per key are bounded by the limit.
	for range 50 {
		f.add("new", later)
	}
	if n := len(f.m["new"]); n != 5 {
		t.Fatalf("kept %d failures of one key, want 5", n)
	}
}
