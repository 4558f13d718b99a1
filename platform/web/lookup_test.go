package web_test

import (
	"context"
	"crypto/sha256"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"dicomgate/platform/platformtest"
	"dicomgate/platform/server"
	"dicomgate/platform/store"
	"dicomgate/platform/web"
)

// lookupCounter counts the store queries that find who is signed in.
type lookupCounter struct {
	store.Store
	sessions, persons atomic.Int64
}

func (c *lookupCounter) WebSession(ctx context.Context, h [sha256.Size]byte) (store.WebSession, error) {
	c.sessions.Add(1)
	return c.Store.WebSession(ctx, h)
}

func (c *lookupCounter) GetPerson(ctx context.Context, id string) (store.Person, error) {
	c.persons.Add(1)
	return c.Store.GetPerson(ctx, id)
}

// TestSignedInLookedUpOncePerRequest: a record page needs the session (for
// the handler, the CSRF token and the layout) and the person (handler and
// layout), and finds each with one store query.
func TestSignedInLookedUpOncePerRequest(t *testing.T) {
	var lc *lookupCounter
	p := platformtest.Start(t, platformtest.Options{Configure: func(c *server.Config) {
		lc = &lookupCounter{Store: c.Store}
		c.Store = lc
	}})
	h, err := web.New(web.Config{Server: p.Server, PublicURL: p.URL})
	if err != nil {
		t.Fatal(err)
	}
	h.Mount(p.Server)
	ctx := context.Background()
	rec, err := p.Store.GetRecord(ctx, p.RecordID)
	if err != nil {
		t.Fatal(err)
	}
	const tok = "a-session-cookie"
	now := time.Now()
	if err := p.Store.CreateWebSession(ctx, store.WebSession{TokenHash: sha256.Sum256([]byte(tok)), PersonID: rec.PersonID,
		CSRF: "csrf", Created: now, Expires: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodGet, p.URL+"/records/"+p.RecordID, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.AddCookie(&http.Cookie{Name: "dg_session", Value: tok})
	lc.sessions.Store(0)
	lc.persons.Store(0)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("record page: HTTP %d", resp.StatusCode)
	}
	if s, n := lc.sessions.Load(), lc.persons.Load(); s != 1 || n != 1 {
		t.Fatalf("%d session and %d person queries for one page, want 1 and 1", s, n)
	}
}
