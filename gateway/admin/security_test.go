package admin_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"dicomgate/dimse/dicomtest"
	"dicomgate/gateway/admin"
	"dicomgate/gateway/store"
)

func TestRequestBodyLimits(t *testing.T) {
	e := newEnv(t)
	e.user("alice", store.RoleAdmin)
	b := e.browser()
	b.get("/login")

	big := url.Values{"username": {"alice"}, "password": {"correct horse battery"}, "pad": {strings.Repeat("x", 70<<10)}}
	// Declared length over the limit, and the same body streamed without
	// a length (chunked): both are refused with 413 and a message.
	for _, chunked := range []bool{false, true} {
		big.Set("csrf", b.csrf)
		var body io.Reader = strings.NewReader(big.Encode())
		if chunked {
			body = io.MultiReader(body) // hides the length from net/http
		}
		req, _ := http.NewRequest(http.MethodPost, e.http.URL+"/login", body)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r := b.do(req)
		if r.code != http.StatusRequestEntityTooLarge {
			t.Fatalf("oversized login (chunked %v): %d", chunked, r.code)
		}
		mustContain(t, r, "too large")
	}

	// Multipart is refused on every route, signed in or not.
	for _, path := range []string{"/login", "/setup", "/settings/dicom"} {
		var mb bytes.Buffer
		w := multipart.NewWriter(&mb)
		w.WriteField("csrf", b.csrf)
		w.WriteField("username", "alice")
		w.WriteField("password", "correct horse battery")
		fw, _ := w.CreateFormFile("file", "x.bin")
		fw.Write(bytes.Repeat([]byte{1}, 1000))
		w.Close()
		req, _ := http.NewRequest(http.MethodPost, e.http.URL+path, &mb)
		req.Header.Set("Content-Type", w.FormDataContentType())
		r := b.do(req)
		if r.code != http.StatusUnsupportedMediaType {
			t.Fatalf("multipart POST %s: %d", path, r.code)
		}
		mustContain(t, r, "multipart/form-data")
	}
	if n := e.auditCount("login"); n != 0 {
		t.Fatalf("a refused body signed in (%d login rows)", n)
	}

	// A normal sign-in still works, and the routing form may be larger
	// than 64 KiB.
	b.login("alice")
	form := url.Values{"default_action": {"hold"}}
	for i := 0; i < 60; i++ {
		form.Add("rule_name", fmt.Sprintf("rule %d", i))
		form.Add("rule_calling_ae", "CT1")
		form.Add("rule_patient_id", "")
		form.Add("rule_issuer", "")
		form.Add("rule_modality", "")
		form.Add("rule_description", "^"+strings.Repeat("a", 1000)+"$")
		form.Add("rule_referring", "")
		form.Add("rule_action", "record")
	}
	if r := b.post("/settings/routing", form); r.code != http.StatusSeeOther {
		t.Fatalf("routing form of %d bytes: %d %s", len(form.Encode()), r.code, r.body)
	}
	pad := url.Values{"ae_title": {"GW"}, "allowed_callers": {strings.Repeat("\n", 70<<10)}}
	if r := b.post("/settings/dicom", pad); r.code != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized DICOM settings form: %d", r.code)
	}
}

func TestLoginOneHashPerAttempt(t *testing.T) {
	e := newEnv(t)
	e.user("alice", store.RoleStaff)
	n := admin.CountPasswordChecks(e.srv)
	b := e.browser()
	b.get("/login")
	for _, tt := range []struct {
		user, pw string
		code     int
	}{
		{"alice", "wrong password!", http.StatusUnauthorized},
		{"nobody", "wrong password!", http.StatusUnauthorized},
		{"alice", "correct horse battery", http.StatusSeeOther},
	} {
		before := n.Load()
		if r := b.post("/login", url.Values{"username": {tt.user}, "password": {tt.pw}}); r.code != tt.code {
			t.Fatalf("login %s: %d, want %d", tt.user, r.code, tt.code)
		}
		if got := n.Load() - before; got != 1 {
			t.Fatalf("login %s: %d password verifications, want 1", tt.user, got)
		}
		b.get("/login")
	}
}

func TestLoginRateLimit(t *testing.T) {
	e := newEnv(t)
	e.user("alice", store.RoleStaff)
	e.user("bob", store.RoleStaff)
	b := e.browser()
	b.get("/login")
	try := func(user, pw string) response {
		t.Helper()
		return b.post("/login", url.Values{"username": {user}, "password": {pw}})
	}

	// Per user name: 5 failures lock it, even for the right password and
	// whatever the case of the name.
	for i := 0; i < 5; i++ {
		if r := try("alice", "wrong password!"); r.code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i+1, r.code)
		}
	}
	for _, name := range []string{"alice", "ALICE"} {
		r := try(name, "correct horse battery")
		if r.code != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
			t.Fatalf("locked user %s: %d, Retry-After %q", name, r.code, r.header.Get("Retry-After"))
		}
		mustContain(t, r, "Too many failed sign-ins")
	}
	if n := e.auditCount("login-locked"); n != 1 {
		t.Fatalf("%d login-locked audit rows, want 1", n)
	}
	// Other users are not locked by alice's failures.
	b.login("bob")
	// The lock ends with the window.
	e.clock.Advance(16 * time.Minute)
	b.get("/login")
	if r := try("alice", "correct horse battery"); r.code != http.StatusSeeOther {
		t.Fatalf("after the window: %d", r.code)
	}

	// Per client: 20 failures over any names lock the address.
	b.get("/login")
	for i := 0; i < 20; i++ {
		if r := try(fmt.Sprintf("guess%d", i), "wrong password!"); r.code != http.StatusUnauthorized {
			t.Fatalf("client failure %d: %d", i+1, r.code)
		}
	}
	if r := try("bob", "correct horse battery"); r.code != http.StatusTooManyRequests {
		t.Fatalf("locked client: %d", r.code)
	}
	if n := e.auditCount("login-locked"); n != 2 {
		t.Fatalf("%d login-locked audit rows, want 2", n)
	}
	e.clock.Advance(16 * time.Minute)
	b.login("bob")
}

func TestThumbnailAudited(t *testing.T) {
	ct := dicomtest.PydicomFile(t, "CT_small.dcm")
	e := newEnv(t)
	e.user("alice", store.RoleStaff)
	e.ingest(ct)
	st := e.studyOf("1CT1")
	ins, err := e.db.StudyInstances(context.Background(), st.StudyUID)
	if err != nil {
		t.Fatal(err)
	}
	b := e.signIn("alice")
	path := "/studies/" + st.StudyUID + "/series/" + ins[0].SeriesUID + "/thumbnail.jpg"
	rows := func() []store.AuditEntry {
		t.Helper()
		es, err := e.db.Audit(context.Background(), store.AuditFilter{StudyUID: st.StudyUID, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		var out []store.AuditEntry
		for _, a := range es {
			if a.Action == "view-thumbnail" {
				out = append(out, a)
			}
		}
		return out
	}
	for i := 0; i < 3; i++ {
		if r := b.get(path); r.code != http.StatusOK {
			t.Fatalf("thumbnail: %d", r.code)
		}
	}
	got := rows()
	if len(got) != 1 || got[0].Username != "alice" || got[0].PatientID != "1CT1" {
		t.Fatalf("view-thumbnail rows after 3 views = %+v, want 1 by alice for patient 1CT1", got)
	}
	// Another session, or the same one after the period, is audited again.
	other := e.signIn("alice")
	other.get(path)
	e.clock.Advance(6 * time.Minute)
	b.get(path)
	if n := len(rows()); n != 3 {
		t.Fatalf("%d view-thumbnail rows, want 3", n)
	}
}
