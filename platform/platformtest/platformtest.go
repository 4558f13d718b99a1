// Package platformtest starts dicomgate's real platform server (SQLite
// store, blob files in a temporary directory) on a loopback port for tests
// of packages that talk to it, such as the gateway: one call gives a
// running platform, a registered application with its credentials, a
// person with a record the application is authorized for, and a client.
package platformtest

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"dicomgate/platform/appcert"
	"dicomgate/platform/client"
	"dicomgate/platform/provision"
	"dicomgate/platform/server"
	"dicomgate/platform/store"
	"dicomgate/platform/store/sqlite"
)

// Platform is a running platform with one authorized application.
type Platform struct {
	// URL is the platform's base URL (http://127.0.0.1:PORT).
	URL    string
	Server *server.Server
	Store  store.Store
	// Credentials are the application's (AppID, key, certificate).
	Credentials *appcert.Credentials
	// RecordID is a self record of a person, authorized for the application.
	RecordID string
	// Client is a platform/client for the application.
	Client *client.Client
	// DataDir holds the database and blob files.
	DataDir string
}

// Options adjust the platform; the zero value uses the server defaults but
// a 64 KiB chunk size, so tests of chunking stay fast.
type Options struct {
	ChunkSize   int64
	MaxBlobSize int64
	// Configure, when set, may change the server configuration further.
	Configure func(*server.Config)
}

// Start starts a platform that stops when the test ends.
func Start(t testing.TB, o Options) *Platform {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "platform.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	hs := httptest.NewUnstartedServer(nil)
	if o.ChunkSize == 0 {
		o.ChunkSize = 64 << 10
	}
	cfg := server.Config{
		Store:       st,
		DataDir:     dir,
		PublicURL:   "http://" + hs.Listener.Addr().String(),
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		ChunkSize:   o.ChunkSize,
		MaxBlobSize: o.MaxBlobSize,
	}
	if o.Configure != nil {
		o.Configure(&cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	hs.Config.Handler = srv
	hs.Start()
	t.Cleanup(hs.Close)

	p := &Platform{URL: hs.URL, Server: srv, Store: st, DataDir: dir}
	p.Credentials, err = provision.BootstrapApp(ctx, st, filepath.Join(dir, "app"), "platformtest")
	if err != nil {
		t.Fatal(err)
	}
	p.RecordID = p.NewRecord(t, "patient", true)
	p.Client, err = client.New(client.Config{URL: p.URL, Credentials: p.Credentials, Backoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// NewRecord creates a person with a login and a self record, authorized for
// the platform's application when authorize is set, and returns the record id.
func (p *Platform) NewRecord(t testing.TB, login string, authorize bool) string {
	t.Helper()
	ctx := context.Background()
	person, err := provision.CreatePerson(ctx, p.Store, login, "Person "+login, "platformtest password")
	if err != nil {
		t.Fatal(err)
	}
	r, err := provision.CreateRecord(ctx, p.Store, person.ID, person.Name, provision.RelationshipSelf)
	if err != nil {
		t.Fatal(err)
	}
	if authorize {
		if err := provision.Authorize(ctx, p.Store, p.Credentials.AppID, r.ID); err != nil {
			t.Fatal(err)
		}
	}
	return r.ID
}
