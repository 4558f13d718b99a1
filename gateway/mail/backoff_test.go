package mail

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	const base, ceiling = time.Minute, time.Hour
	for _, tc := range []struct {
		attempt int
		r       float64
		want    time.Duration
	}{
		{1, 0, 30 * time.Second},
		{1, 0.999999, time.Minute - 30*time.Microsecond},
		{2, 0, time.Minute},
		{3, 0.5, 3 * time.Minute},
		{6, 0, 16 * time.Minute},
		{7, 0, 30 * time.Minute}, // 64 min capped at the hour
		{50, 0, 30 * time.Minute},
		{1000, 0.999999, time.Hour - 1800*time.Microsecond},
	} {
		if got := backoff(tc.attempt, base, ceiling, tc.r); got != tc.want {
			t.Errorf("backoff(%d, r=%v) = %v, want %v", tc.attempt, tc.r, got, tc.want)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{Lease: time.Minute, AttemptTimeout: time.Hour, BaseDelay: time.Hour, MaxDelay: time.Minute}.withDefaults()
	if c.AttemptTimeout != 30*time.Second {
		t.Errorf("attempt timeout %v not bounded by half the lease", c.AttemptTimeout)
	}
	if c.MaxDelay != time.Hour {
		t.Errorf("max delay %v below base delay", c.MaxDelay)
	}
	if c.MaxAttempts != DefaultMaxAttempts || c.PollInterval != DefaultPollInterval {
		t.Errorf("defaults not applied: %+v", c)
	}
}

func TestTruncate(t *testing.T) {
	long := string(make([]byte, 0)) + "é"
	for len(long) < 2*maxErrorLen {
		long += "é"
	}
	got := truncate("a\x00b" + long)
	if len(got) > maxErrorLen+3 {
		t.Errorf("truncate kept %d bytes", len(got))
	}
	for _, r := range got {
		if r == 0 {
			t.Errorf("NUL kept")
		}
	}
	if got[:2] != "ab" {
		t.Errorf("prefix %q", got[:2])
	}
}
