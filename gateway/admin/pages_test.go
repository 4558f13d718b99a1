package admin_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"dicomgate/dimse/dicomtest"
	"dicomgate/gateway/admin"
	"dicomgate/gateway/mail"
	"dicomgate/gateway/mail/mailsql"
	"dicomgate/gateway/store"
)

func TestOutboxPage(t *testing.T) {
	var outbox *mailsql.Store
	e := newEnv(t, func(e *env, _ *gatewayConfig, c *admin.Config) {
		var err error
		// The outbox lives in the gateway's database, as in serve.
		outbox, err = mailsql.OpenSQLite(context.Background(), filepath.Join(e.dir, "gateway.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { outbox.Close() })
		c.Outbox = outbox
	})
	e.user("alice", store.RoleStaff)
	ob := mail.NewOutbox(outbox, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), mail.Config{})
	m, err := mail.TestMail("patient@example.org", mail.TestMailData{Institution: "St Example", Server: "smtp.example:587", Sent: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ob.Enqueue(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	b := e.signIn("alice")
	r := b.get("/outbox")
	mustContain(t, r, "patient@example.org", `data-state="queued"`, m.Subject)
	if !e.audited("view-outbox", "") {
		t.Fatal("outbox view not audited")
	}
}

func TestOutboxPageWithoutOutbox(t *testing.T) {
	e := newEnv(t)
	e.user("alice", store.RoleStaff)
	b := e.signIn("alice")
	mustContain(t, b.get("/outbox"), "not connected")
}

func TestPatientsPage(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.user("alice", store.RoleStaff)
	if err := e.gw.LinkPatient(ctx, store.PatientLink{ExternalID: "4MR1^^^HOSP", PersonID: "person-9", RecordID: "record-9", AuthorizedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.CreatePickup(ctx, store.Pickup{PatientID: "1CT1", AccessionNumber: "ACC7", Email: "jane@example.org", FriendlyName: "Jane's CT",
		Question: "First pet?", AnswerSealed: []byte{1, 2, 3}, State: "registered", ExpiresAt: time.Now().Add(24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	b := e.signIn("alice")
	r := b.get("/patients")
	mustContain(t, r, "4MR1^^^HOSP", "record-9", "ACC7", "jane@example.org", "Jane&#39;s CT", "registered")
	if strings.Contains(r.body, "First pet?") {
		t.Fatal("the patients page shows a secret question")
	}
	if !e.audited("view-patients", "") {
		t.Fatal("patients view not audited")
	}
}

func TestAuditPage(t *testing.T) {
	e := newEnv(t)
	e.user("root", store.RoleAdmin)
	b := e.signIn("root")
	b.get("/patients")
	r := b.get("/audit?user=root")
	mustContain(t, r, "view-patients", "login")
	if r := b.get("/audit?study=" + strings.Repeat("9", 70)); r.code != http.StatusBadRequest {
		t.Fatalf("overlong filter: %d", r.code)
	}
}

func TestHealthMetrics(t *testing.T) {
	ct := dicomtest.PydicomFile(t, "CT_small.dcm")
	e := newEnv(t)
	e.ingest(ct)
	b := e.browser()
	if r := b.get("/healthz"); r.code != http.StatusOK {
		t.Fatalf("healthz: %d", r.code)
	}
	if r := b.get("/readyz"); r.code != http.StatusOK {
		t.Fatalf("readyz: %d", r.code)
	}
	b.get("/login")
	r := b.get("/metrics")
	mustContain(t, r, `dicomgate_studies{state="receiving"} 1`, `dicomgate_studies{state="failed"} 0`,
		`dicomgate_admin_http_requests_total{code="200",method="GET",route="/login"} 1`, "dicomgate_store_up 1", "go_goroutines")
	if strings.Contains(r.body, "CompressedSamples") || strings.Contains(r.body, "1CT1") {
		t.Fatal("metrics carry patient data")
	}
	// The store gone: not ready, and the pages say so instead of hanging.
	e.db.Close()
	if r := b.get("/readyz"); r.code != http.StatusServiceUnavailable {
		t.Fatalf("readyz with the store closed: %d", r.code)
	}
	if r := b.get("/healthz"); r.code != http.StatusOK {
		t.Fatalf("healthz with the store closed: %d", r.code)
	}
	mustContain(t, b.get("/metrics"), "dicomgate_store_up 0")
}

func TestNotFoundAndMethod(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	if r := b.get("/nope"); r.code != http.StatusNotFound {
		t.Fatalf("unknown path: %d", r.code)
	}
	if r := b.post("/healthz", nil); r.code != http.StatusMethodNotAllowed {
		t.Fatalf("POST /healthz: %d", r.code)
	}
	if r := b.get("/static/htmx.min.js"); r.code != http.StatusOK || !strings.Contains(r.body, "htmx") {
		t.Fatalf("embedded htmx: %d", r.code)
	}
}
