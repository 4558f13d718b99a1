package admin_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"dicomgate/dimse"
	"dicomgate/dimse/dataset"
	"dicomgate/dimse/spool"
	"dicomgate/gateway"
	"dicomgate/gateway/admin"
	"dicomgate/gateway/store"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	os.Exit(m.Run())
}

// testArgon2 keeps tests fast; hashes still verify with their own params.
var testArgon2 = admin.Argon2Params{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// clock is a settable clock for sessions and tokens.
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

// env is an admin UI over a real SQLite store, spool and gateway.
type env struct {
	t     testing.TB
	dir   string
	db    *store.SQL
	sp    *spool.Spool
	gw    *gateway.Gateway
	srv   *admin.Server
	http  *httptest.Server
	clock *clock
	cfg   admin.Config
}

type envOption func(*env, *gatewayConfig, *admin.Config)

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, dir: t.TempDir(), clock: &clock{t: time.Now().UTC().Truncate(time.Second)}}
	var err error
	e.db, err = store.OpenSQLite(ctx, filepath.Join(e.dir, "gateway.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.db.Close() })
	e.sp, err = spool.Open(filepath.Join(e.dir, "spool"), dimse.ImplementationClassUID, dimse.ImplementationVersionName)
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	gcfg := gateway.Config{QuietPeriod: time.Hour, Log: quiet}
	e.cfg = admin.Config{Argon2: testArgon2, Now: e.clock.Now, Log: quiet}
	for _, o := range opts {
		o(e, &gcfg, &e.cfg)
	}
	if e.gw == nil {
		e.gw, err = gateway.New(gcfg, e.db, e.sp, nil)
		if err != nil {
			t.Fatal(err)
		}
	}
	e.cfg.Gateway = e.gw
	e.srv, err = admin.New(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.http = httptest.NewServer(e.srv.Handler())
	t.Cleanup(e.http.Close)
	return e
}

// user creates a user with password "correct horse battery".
func (e *env) user(name string, role store.AdminRole) store.AdminUser {
	e.t.Helper()
	u, err := admin.CreateUser(context.Background(), e.db, name, role, "correct horse battery", testArgon2, e.clock.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so tests see them.
type browser struct {
	e    *env
	c    *http.Client
	csrf string
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type response struct {
	code   int
	body   string
	header http.Header
}

func (b *browser) do(req *http.Request) response {
	b.e.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	r := response{code: resp.StatusCode, body: string(body), header: resp.Header}
	if m := csrfRE.FindStringSubmatch(r.body); m != nil {
		b.csrf = m[1]
	}
	return r
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) get(path string, hdr ...string) response {
	b.e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.e.http.URL+path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return b.do(req)
}

// post sends a form; the page's CSRF token is added unless form has a
// "csrf" key already (set it to "" to send none).
func (b *browser) post(path string, form url.Values) response {
	b.e.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", b.csrf)
	} else if form.Get("csrf") == "" {
		form.Del("csrf")
	}
	req, _ := http.NewRequest(http.MethodPost, b.e.http.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// signIn is a new browser signed in as user.
func (e *env) signIn(user string) *browser {
	e.t.Helper()
	b := e.browser()
	b.login(user)
	return b
}

// login signs in and checks that it worked.
func (b *browser) login(user string) {
	b.e.t.Helper()
	b.get("/login")
	r := b.post("/login", url.Values{"username": {user}, "password": {"correct horse battery"}})
	if r.code != http.StatusSeeOther {
		b.e.t.Fatalf("login %s: %d %s", user, r.code, r.body)
	}
	if r := b.get("/"); r.code != http.StatusOK {
		b.e.t.Fatalf("dashboard after login: %d", r.code)
	}
}

// ingest sends a DICOM file through the gateway's ingest path (the
// dimse.Handler the listener calls), as calling AE CT1.
func (e *env) ingest(path string) {
	e.t.Helper()
	f, err := os.Open(path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	meta, _, err := dataset.ReadFileMeta(br)
	if err != nil {
		e.t.Fatal(err)
	}
	req := &dimse.StoreRequest{
		Association: dimse.AssociationInfo{CallingAETitle: "CT1", CalledAETitle: "DICOMGATE",
			RemoteAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}},
		SOPClassUID: meta.MediaStorageSOPClassUID, SOPInstanceUID: meta.MediaStorageSOPInstanceUID,
		TransferSyntaxUID: meta.TransferSyntaxUID,
	}
	if err := e.gw.Store(context.Background(), req, br); err != nil {
		e.t.Fatalf("ingest %s: %v", path, err)
	}
	// The index row is written just after the acknowledgement.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, err := e.db.Instance(context.Background(), meta.MediaStorageSOPInstanceUID); err == nil {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("ingest %s: not indexed", path)
		}
	}
}

// studyOf returns the only study of patient id.
func (e *env) studyOf(patientID string) store.Study {
	e.t.Helper()
	l, err := e.db.Studies(context.Background(), store.StudyFilter{PatientID: patientID})
	if err != nil || len(l) != 1 {
		e.t.Fatalf("studies of %s: %v, %v", patientID, l, err)
	}
	return l[0]
}

// audited reports whether the audit log has an entry with action (and,
// when set, study).
func (e *env) audited(action, studyUID string) bool {
	e.t.Helper()
	es, err := e.db.Audit(context.Background(), store.AuditFilter{StudyUID: studyUID, Limit: 1000})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, a := range es {
		if a.Action == action {
			return true
		}
	}
	return false
}

func (e *env) auditCount(action string) int {
	e.t.Helper()
	es, err := e.db.Audit(context.Background(), store.AuditFilter{Limit: 1000})
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for _, a := range es {
		if a.Action == action {
			n++
		}
	}
	return n
}

func mustContain(t *testing.T, r response, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(r.body, s) {
			t.Fatalf("response (%d) lacks %q:\n%s", r.code, s, r.body)
		}
	}
}

// gatewayConfig lets options change the gateway's configuration.
type gatewayConfig = gateway.Config

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
