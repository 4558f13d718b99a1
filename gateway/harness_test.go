package gateway

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"dicomgate/dimse"
	"dicomgate/dimse/dicomtest"
	"dicomgate/dimse/spool"
	"dicomgate/gateway/route"
	"dicomgate/gateway/store"
	"dicomgate/platform/client"
	"dicomgate/platform/provision"
	"dicomgate/platform/server"
	pstore "dicomgate/platform/store"
	"dicomgate/platform/store/sqlite"
)

// platformEnv is a real platform server on loopback with the gateway's
// application registered and one patient's record authorized for it.
type platformEnv struct {
	url      string
	store    pstore.Store
	srv      *server.Server
	http     *http.Server
	client   *client.Client
	personID string
	recordID string
	ln       net.Listener
	dir      string
}

func startPlatform(t *testing.T, dir string) *platformEnv {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "platform.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &platformEnv{url: "http://" + ln.Addr().String(), store: st, ln: ln, dir: dir}
	p.serve(t)
	creds, err := provision.BootstrapApp(ctx, st, filepath.Join(dir, "app"), "dicomgate test gateway")
	if err != nil {
		t.Fatal(err)
	}
	person, err := provision.CreatePerson(ctx, st, "jane", "Jane Doe", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := provision.CreateRecord(ctx, st, person.ID, "Jane Doe", provision.RelationshipSelf)
	if err != nil {
		t.Fatal(err)
	}
	if err := provision.Authorize(ctx, st, creds.AppID, rec.ID); err != nil {
		t.Fatal(err)
	}
	p.personID, p.recordID = person.ID, rec.ID
	p.client, err = client.New(client.Config{URL: p.url, Credentials: creds, Backoff: 20 * time.Millisecond, MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// serve (re)starts the platform's HTTP server on its address.
func (p *platformEnv) serve(t *testing.T) {
	t.Helper()
	if p.ln == nil {
		ln, err := net.Listen("tcp", p.url[len("http://"):])
		if err != nil {
			t.Fatal(err)
		}
		p.ln = ln
	}
	srv, err := server.New(server.Config{Store: p.store, DataDir: filepath.Join(p.dir, "platform"), PublicURL: p.url,
		ChunkSize: 64 << 10, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	p.srv = srv
	p.http = &http.Server{Handler: srv}
	ln := p.ln
	go p.http.Serve(ln)
	t.Cleanup(p.stop)
}

// stop takes the platform off the network (as an outage would).
func (p *platformEnv) stop() {
	if p.http != nil {
		p.http.Close()
		p.srv.Close()
		p.http, p.ln = nil, nil
	}
}

// gatewayEnv is a gateway with its store and spool, listening for DICOM on
// loopback.
type gatewayEnv struct {
	gw    *Gateway
	store *store.SQL
	addr  string
	stop  context.CancelFunc
	done  chan struct{}
}

func startGateway(t *testing.T, dir string, pf Platform, cfg Config) *gatewayEnv {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := store.OpenSQLite(ctx, filepath.Join(dir, "gateway.db"))
	if err != nil {
		t.Fatal(err)
	}
	sp, err := spool.Open(filepath.Join(dir, "spool"), "1.2.826.0.1.3680043.9.7433.1", "DICOMGATE_TEST")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.QuietPeriod == 0 {
		cfg.QuietPeriod = 300 * time.Millisecond
	}
	if cfg.RetryBase == 0 {
		cfg.RetryBase, cfg.RetryMax = 50*time.Millisecond, 300*time.Millisecond
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Rules == nil {
		cfg.Rules = []route.Rule{{Name: "all to records", Action: route.ActionRecord}}
	}
	gw, err := New(cfg, st, sp, pf)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dimse.Server{AETitle: "DICOMGATE", Handler: gw}
	e := &gatewayEnv{gw: gw, store: st, addr: ln.Addr().String(), stop: cancel, done: make(chan struct{})}
	go srv.Serve(ctx, ln)
	go func() { defer close(e.done); gw.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-e.done
		st.Close()
	})
	return e
}

// storescu sends files to the gateway with DCMTK.
func storescu(t *testing.T, addr string, files ...string) {
	t.Helper()
	bin := dicomtest.LookPath(t, "storescu")
	host, port, _ := net.SplitHostPort(addr)
	args := append([]string{"-aet", "MODALITY", "-aec", "DICOMGATE", host, port}, files...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "TCP_NODELAY=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("storescu: %v\n%s", err, out)
	}
}

// waitState polls until the study reaches one of the states.
func waitState(t *testing.T, st store.Store, uid string, timeout time.Duration, states ...store.StudyState) store.Study {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last store.Study
	for time.Now().Before(deadline) {
		s, err := st.Study(context.Background(), uid)
		if err == nil {
			last = s
			for _, want := range states {
				if s.State == want {
					return s
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("study %s: state %q (error %q) after %v, want %v", uid, last.State, last.Error, timeout, states)
	return last
}
