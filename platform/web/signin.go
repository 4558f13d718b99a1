package web

import "time"

// maxFailureKeys bounds the logins (and, separately, the addresses) whose
// sign-in failures are remembered.
const maxFailureKeys = 100000

// failureLog remembers recent failures per key (a login or a client
// address) within a window, in bounded memory. When it is full, only
// expired keys are evicted: wiping it would lift every lock-out at once,
// which is what a spray of logins would aim for. A new key that finds it
// full of live keys is not tracked (the per-address limit still applies).
// Callers hold Handler.mu.
type failureLog struct {
	window  time.Duration
	keep    int // failures kept per key: the limit
	maxKeys int
	m       map[string][]time.Time
	// nextPrune is when a full log may have expired keys again.
	nextPrune time.Time
}

func newFailureLog(window time.Duration, limit, maxKeys int) *failureLog {
	return &failureLog{window: window, keep: limit, maxKeys: maxKeys, m: map[string][]time.Time{}}
}

// count returns the failures of key within the window before now.
func (f *failureLog) count(key string, now time.Time) int {
	kept := f.live(f.m[key], now)
	if len(kept) == 0 {
		delete(f.m, key)
	} else {
		f.m[key] = kept
	}
	return len(kept)
}

func (f *failureLog) live(ts []time.Time, now time.Time) []time.Time {
	cut := now.Add(-f.window)
	i := 0
	for i < len(ts) && !ts[i].After(cut) {
		i++
	}
	return ts[i:]
}

// add records a failure of key at now.
func (f *failureLog) add(key string, now time.Time) {
	if _, ok := f.m[key]; !ok && len(f.m) >= f.maxKeys {
		f.prune(now)
		if len(f.m) >= f.maxKeys {
			return
		}
	}
	ts := append(f.live(f.m[key], now), now)
	if len(ts) > f.keep {
		ts = ts[len(ts)-f.keep:]
	}
	f.m[key] = ts
}

// prune evicts the keys whose failures all expired, at most once until
// one more can have expired.
func (f *failureLog) prune(now time.Time) {
	if now.Before(f.nextPrune) {
		return
	}
	var oldest time.Time
	for k, ts := range f.m {
		ts = f.live(ts, now)
		if len(ts) == 0 {
			delete(f.m, k)
			continue
		}
		f.m[k] = ts
		if last := ts[len(ts)-1]; oldest.IsZero() || last.Before(oldest) {
			oldest = last
		}
	}
	f.nextPrune = oldest.Add(f.window)
}
