package admin

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
)

// Request body limits. Every form of the UI is URL-encoded and small;
// only the routing table (up to maxRules rows of long patterns) needs
// more.
const (
	maxBodyBytes        = 64 << 10
	maxRoutingBodyBytes = 1 << 20
)

// bodyLimit is the largest body accepted on a route (a gin route
// pattern): only the rule table's forms need more than maxBodyBytes.
func bodyLimit(route string) int64 {
	switch route {
	case "/settings/routing", "/settings/routing/dry-run":
		return maxRoutingBodyBytes
	}
	return maxBodyBytes
}

// limitBody bounds every request body and refuses multipart bodies: no
// form of the UI uploads files, and parsing multipart would let an
// anonymous client (sign-in and setup check their CSRF token from the
// form) spill file parts to disk. A POST's URL-encoded form is parsed
// here, so an oversized one is answered 413 instead of being cut short
// silently by the handlers' PostForm.
func (s *Server) limitBody(c *gin.Context) {
	limit := bodyLimit(c.FullPath())
	if ct := c.GetHeader("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err == nil && mt == "multipart/form-data" {
			s.errorPage(c, http.StatusUnsupportedMediaType, "File uploads (multipart/form-data) are not accepted; send the form URL-encoded.")
			return
		}
	}
	tooLarge := fmt.Sprintf("The request is too large (at most %d KiB).", limit>>10)
	if c.Request.ContentLength > limit {
		s.errorPage(c, http.StatusRequestEntityTooLarge, tooLarge)
		return
	}
	if c.Request.Body == nil || c.Request.Body == http.NoBody {
		c.Next()
		return
	}
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, limit)
	if c.Request.Method == http.MethodPost || c.Request.Method == http.MethodPut || c.Request.Method == http.MethodPatch {
		if err := c.Request.ParseForm(); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				s.errorPage(c, http.StatusRequestEntityTooLarge, tooLarge)
				return
			}
			s.errorPage(c, http.StatusBadRequest, "The form could not be read: "+err.Error())
			return
		}
	}
	c.Next()
}

// Sign-in failure limits (OWASP Authentication Cheat Sheet: limit
// failed attempts per account and per client).
const (
	loginFailWindow  = 15 * time.Minute
	maxUserFailures  = 5
	maxIPFailures    = 20
	maxLimiterKeys   = 10000
	loginLockMessage = "Too many failed sign-ins. Wait 15 minutes and try again."
)

// failureLimiter counts failures per key in a fixed window that starts
// at a key's first failure. It holds at most max keys; only expired
// entries are evicted, so flooding it cannot reset anyone's count. When
// it is full of live entries it refuses unknown keys (fails closed).
type failureLimiter struct {
	limit  int
	window time.Duration
	max    int

	mu sync.Mutex
	m  map[string]*failureCount
}

type failureCount struct {
	first time.Time
	n     int
}

func newFailureLimiter(limit int, window time.Duration, max int) *failureLimiter {
	return &failureLimiter{limit: limit, window: window, max: max, m: map[string]*failureCount{}}
}

// blocked reports whether key may not try now.
func (l *failureLimiter) blocked(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, ok := l.m[key]
	if !ok {
		return len(l.m) >= l.max && !l.evictExpired(now)
	}
	if now.Sub(f.first) >= l.window {
		delete(l.m, key)
		return false
	}
	return f.n >= l.limit
}

// fail counts a failure of key and reports whether it reached the limit
// with it (the moment to audit a lock-out).
func (l *failureLimiter) fail(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, ok := l.m[key]
	if ok && now.Sub(f.first) >= l.window {
		ok = false
	}
	if !ok {
		if _, live := l.m[key]; !live && len(l.m) >= l.max && !l.evictExpired(now) {
			return false
		}
		f = &failureCount{first: now}
		l.m[key] = f
	}
	f.n++
	return f.n == l.limit
}

// reset forgets key's failures (after a successful sign-in).
func (l *failureLimiter) reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, key)
}

// evictExpired drops entries whose window has passed and reports
// whether there is room now. l.mu is held.
func (l *failureLimiter) evictExpired(now time.Time) bool {
	for k, f := range l.m {
		if now.Sub(f.first) >= l.window {
			delete(l.m, k)
		}
	}
	return len(l.m) < l.max
}
