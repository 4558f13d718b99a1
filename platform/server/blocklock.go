package server

import (
	"context"
	"sync"
)

// blockLocks serialises the requests that write the same block of the same
// blob. Without it two chunks carrying other bytes for one new block could
// both pass the "not received before" check: the store keeps one hash and
// refuses the other, but the file could keep the refused bytes, and a
// complete blob would then be served with bytes its hash does not cover.
// Chunks of other blocks, the usual case of parallel uploads, do not wait.
type blockLocks struct {
	mu   sync.Mutex
	held map[blockKey]chan struct{} // closed when released
}

type blockKey struct {
	blob  string
	index int64
}

// lock takes blocks first..last of blob, in ascending order (so two
// overlapping chunks cannot deadlock), and returns the function releasing
// them. It gives up when ctx is done.
func (l *blockLocks) lock(ctx context.Context, blob string, first, last int64) (func(), error) {
	var taken []blockKey
	release := func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, k := range taken {
			close(l.held[k])
			delete(l.held, k)
		}
	}
	for i := first; i <= last; i++ {
		k := blockKey{blob, i}
		for {
			l.mu.Lock()
			if l.held == nil {
				l.held = map[blockKey]chan struct{}{}
			}
			busy, ok := l.held[k]
			if !ok {
				l.held[k] = make(chan struct{})
				l.mu.Unlock()
				taken = append(taken, k)
				break
			}
			l.mu.Unlock()
			select {
			case <-busy:
			case <-ctx.Done():
				release()
				return nil, ctx.Err()
			}
		}
	}
	return release, nil
}
