package server_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"dicomgate/platform/appcert"
	"dicomgate/platform/client"
	"dicomgate/platform/provision"
	"dicomgate/platform/server"
	"dicomgate/platform/store"
	"dicomgate/platform/store/sqlite"
)

// clock is a settable clock shared by server and client.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// exchange is one XML API request and its response, as sent.
type exchange struct {
	req, resp []byte
}

// recorder keeps every XML API exchange for schema validation.
type recorder struct {
	mu  sync.Mutex
	all []exchange
}

func (r *recorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != server.PathXMLAPI {
			h.ServeHTTP(w, req)
			return
		}
		body, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
		rw := httptest.NewRecorder()
		h.ServeHTTP(rw, req)
		r.mu.Lock()
		r.all = append(r.all, exchange{req: body, resp: rw.Body.Bytes()})
		r.mu.Unlock()
		for k, v := range rw.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rw.Code)
		w.Write(rw.Body.Bytes())
	})
}

func (r *recorder) exchanges() []exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]exchange(nil), r.all...)
}

type env struct {
	t      testing.TB
	clock  *clock
	store  store.Store
	srv    *server.Server
	http   *httptest.Server
	creds  *appcert.Credentials
	client *client.Client
	record string
	rec    *recorder
	cfg    server.Config
}

const testChunk = 64

// newEnv starts a platform on SQLite, provisions an app and a record
// authorized for it, and returns a client of that app.
func newEnv(t testing.TB, mutate ...func(*server.Config)) *env {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "platform.db"))
	if err != nil {
		t.Fatal(err)
	}
	return newEnvOn(t, st, mutate...)
}

// newEnvOn is newEnv on a given store (which it closes at the end).
func newEnvOn(t testing.TB, st store.Store, mutate ...func(*server.Config)) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	var err error
	t.Cleanup(func() { st.Close() })
	e := &env{t: t, clock: &clock{t: time.Now().UTC().Truncate(time.Second)}, store: st, rec: &recorder{}}
	e.http = httptest.NewUnstartedServer(nil)
	e.cfg = server.Config{
		Store:       st,
		DataDir:     dir,
		PublicURL:   "http://" + e.http.Listener.Addr().String(),
		Now:         e.clock.Now,
		ChunkSize:   testChunk,
		MaxBlobSize: 100 * testChunk,
		GCInterval:  -1,
	}
	for _, m := range mutate {
		m(&e.cfg)
	}
	e.srv, err = server.New(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.srv.Close() })
	e.http.Config.Handler = e.rec.wrap(e.srv)
	e.http.Start()
	t.Cleanup(e.http.Close)

	e.creds, err = provision.BootstrapApp(ctx, st, filepath.Join(dir, "app"), "test gateway")
	if err != nil {
		t.Fatal(err)
	}
	e.record = e.newRecord("alice", true)
	e.client = e.newClient(e.creds)
	return e
}

// newRecord creates a person with a self record, optionally authorizing
// the env's app.
func (e *env) newRecord(login string, authorize bool) string {
	e.t.Helper()
	ctx := context.Background()
	p, err := provision.CreatePerson(ctx, e.store, login, "Person "+login, "correct horse battery")
	if err != nil {
		e.t.Fatal(err)
	}
	r, err := provision.CreateRecord(ctx, e.store, p.ID, p.Name, provision.RelationshipSelf)
	if err != nil {
		e.t.Fatal(err)
	}
	if authorize {
		if err := provision.Authorize(ctx, e.store, e.creds.AppID, r.ID); err != nil {
			e.t.Fatal(err)
		}
	}
	return r.ID
}

func (e *env) newClient(creds *appcert.Credentials) *client.Client {
	e.t.Helper()
	c, err := client.New(client.Config{URL: e.http.URL, Credentials: creds, Now: e.clock.Now, Backoff: time.Millisecond})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}
