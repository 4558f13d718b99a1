package admin_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"dicomgate/dimse/dicomtest"
	"dicomgate/gateway"
	"dicomgate/gateway/admin"
	"dicomgate/gateway/keyfile"
	"dicomgate/gateway/mail"
	"dicomgate/gateway/mail/mailsql"
	"dicomgate/gateway/route"
	"dicomgate/gateway/store"
	pstore "dicomgate/platform/store"
)

// syncBuffer collects log output of concurrent goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// dopuSetup is what withDOPU starts: the bundled platform, the mail
// outbox (no SMTP transport, so mails stay queued) and the logs of the
// gateway and the UI.
type dopuSetup struct {
	p     *platformEnv
	mails *mailsql.Store
	logs  *syncBuffer
}

const institution = "St. Test Hospital"

// withDOPU gives the env a running gateway that can make DOPU packages
// and Patient Connect requests on a real platform, routing studies with
// def when no rule matches.
func withDOPU(t *testing.T, d *dopuSetup, def route.Action) envOption {
	return func(e *env, g *gatewayConfig, c *admin.Config) {
		ctx := context.Background()
		d.p = startPlatform(t)
		var err error
		if d.mails, err = mailsql.OpenSQLite(ctx, filepath.Join(e.dir, "mail.db")); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.mails.Close() })
		key, err := keyfile.LoadOrCreate(filepath.Join(e.dir, "gateway.key"))
		if err != nil {
			t.Fatal(err)
		}
		d.logs = &syncBuffer{}
		log := slog.New(slog.NewTextHandler(d.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		g.Sealer, g.Mailer = key, mail.NewOutbox(d.mails, nil, log, mail.Config{})
		g.PublicURL, g.Institution, g.DefaultAction = d.p.url, institution, def
		g.RetryBase, g.RetryMax, g.Log = 50*time.Millisecond, 500*time.Millisecond, log
		c.Log, c.Outbox = log, d.mails
		if e.gw, err = gateway.New(*g, e.db, e.sp, d.p.client); err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { e.gw.Run(rctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
	}
}

// outbox lists the queued mails.
func (d *dopuSetup) outbox(t *testing.T) []mail.Record {
	t.Helper()
	rs, err := d.mails.List(context.Background(), 100)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func (e *env) pickups() []store.Pickup {
	e.t.Helper()
	ps, err := e.db.Pickups(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return ps
}

// waitPickup waits for a registration to reach state.
func waitPickup(t *testing.T, e *env, id int64, state string) store.Pickup {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		p, err := e.db.Pickup(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if p.State == state {
			return p
		}
		if time.Now().After(deadline) {
			s, _ := e.db.Study(context.Background(), p.StudyUID)
			t.Fatalf("pick-up %d is %s after 20 s, want %s (study %s %q)", id, p.State, state, s.State, s.Error)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var codeRE = regexp.MustCompile(`[A-Z]{4}(-[A-Z]{4}){4}`)

// noSecrets checks that neither the audit log nor the logs hold the
// answer or a whole identity code.
func noSecrets(t *testing.T, e *env, d *dopuSetup, secrets ...string) {
	t.Helper()
	es, err := e.db.Audit(context.Background(), store.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	for _, a := range es {
		all.WriteString(a.Action + " " + a.Detail + "\n")
	}
	all.WriteString(d.logs.String())
	for _, s := range secrets {
		if s != "" && strings.Contains(all.String(), s) {
			t.Fatalf("audit log or logs hold the secret %q:\n%s", s, all.String())
		}
	}
	if m := codeRE.FindString(all.String()); m != "" {
		t.Fatalf("audit log or logs hold the identity code %s", m)
	}
}

// edited returns a copy of form with the key/value pairs kv set.
func edited(form url.Values, kv ...string) url.Values {
	f := url.Values{}
	for k, v := range form {
		f[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		f.Set(kv[i], kv[i+1])
	}
	return f
}

// TestStudyPickup creates a DOPU package from a held study's page and
// drives its actions: the package is really built on the platform, the
// code mail queued, resent, the letter printed and the package deleted.
func TestStudyPickup(t *testing.T) {
	ct := dicomtest.PydicomFile(t, "CT_small.dcm")
	var d dopuSetup
	e := newEnv(t, withDOPU(t, &d, route.ActionHold))
	e.user("frontdesk", store.RoleStaff)
	e.user("boss", store.RoleAdmin)
	e.ingest(ct)
	st := e.studyOf("1CT1")
	path := "/studies/" + st.StudyUID
	staff := e.signIn("frontdesk")
	staff.get(path)
	if r := staff.post(path+"/deliver-now", nil); r.code != http.StatusSeeOther {
		t.Fatalf("deliver now: %d", r.code)
	}
	mustContain(t, staff.get(path), `id="pickup-form"`, "held")

	const answer = "Fluffy the cat"
	good := url.Values{"email": {"jane@example.org"}, "friendly_name": {"Jane Doe, CT"}, "question": {"Name of your first pet?"},
		"answer": {answer}, "answer2": {answer}}
	with := func(kv ...string) url.Values { return edited(good, kv...) }
	refusals := []struct {
		name  string
		form  url.Values
		code  int
		field string
	}{
		{"no CSRF token", with("csrf", ""), http.StatusForbidden, ""},
		{"answers differ", with("answer2", "Fluffy the dog"), http.StatusUnprocessableEntity, "err-pickup-answer2"},
		{"answer too short", with("answer", "Rex", "answer2", "Rex"), http.StatusUnprocessableEntity, "err-pickup-answer"},
		{"not an email", with("email", "jane at example"), http.StatusUnprocessableEntity, "err-pickup-email"},
		{"no question", with("question", " "), http.StatusUnprocessableEntity, "err-pickup-question"},
		{"no name", with("friendly_name", ""), http.StatusUnprocessableEntity, "err-pickup-friendly_name"},
	}
	for _, rf := range refusals {
		r := staff.post(path+"/pickup", rf.form)
		if r.code != rf.code {
			t.Fatalf("%s: %d, want %d\n%s", rf.name, r.code, rf.code, r.body)
		}
		if rf.field != "" {
			mustContain(t, r, `id="`+rf.field+`"`, `id="pickup-form"`)
			if strings.Contains(r.body, "Fluffy") || strings.Contains(r.body, "Rex") {
				t.Fatalf("%s: the page echoes the answer", rf.name)
			}
		}
		if ps := e.pickups(); len(ps) != 0 {
			t.Fatalf("%s: registered %+v", rf.name, ps)
		}
	}
	// The form keeps what was typed, except the answers.
	mustContain(t, staff.post(path+"/pickup", with("answer2", "x")), `value="jane@example.org"`, `value="Name of your first pet?"`)

	r := staff.post(path+"/pickup", good)
	if r.code != http.StatusSeeOther || r.header.Get("Location") != path {
		t.Fatalf("create pick-up: %d %s\n%s", r.code, r.header.Get("Location"), r.body)
	}
	ps := e.pickups()
	if len(ps) != 1 || ps[0].PatientID != "1CT1" || ps[0].Email != "jane@example.org" || !codeRE.MatchString(ps[0].IdentityCode) {
		t.Fatalf("registrations %+v", ps)
	}
	p := waitPickup(t, e, ps[0].ID, gateway.PickupMailed)
	waitState(t, e, st.StudyUID, store.StateDelivered)
	if s, _ := e.db.Study(context.Background(), st.StudyUID); s.PickupID != p.ID || s.PackageCode != p.IdentityCode {
		t.Fatalf("study after packaging: pickup %d code %q", s.PickupID, s.PackageCode)
	}
	pkg, err := d.p.store.GetPackage(context.Background(), p.IdentityCode)
	if err != nil || pkg.FriendlyName != "Jane Doe, CT" {
		t.Fatalf("platform package %+v, %v", pkg, err)
	}
	if !e.audited("create-pickup", st.StudyUID) {
		t.Fatal("create-pickup not audited")
	}
	r = staff.get(path)
	mustContain(t, r, `id="pickup-code">`+p.IdentityCode, `id="pickup-state">mailed`, `id="resend-code"`, `id="print-letter"`, "Name of your first pet?")
	if strings.Contains(r.body, `id="delete-pickup"`) || strings.Contains(r.body, `id="pickup-form"`) {
		t.Fatal("staff are offered delete, or a second package")
	}
	// The mail is queued: no SMTP server is configured.
	mails := d.outbox(t)
	if len(mails) != 1 || mails[0].To != "jane@example.org" || mails[0].State != mail.StateQueued || !strings.Contains(mails[0].Subject, "ready to pick up") {
		t.Fatalf("outbox %+v", mails)
	}
	mustContain(t, staff.get("/outbox"), "jane@example.org", "ready to pick up", `data-state="queued"`)

	// A second package for the same study is refused.
	if r := staff.post(path+"/pickup", good); r.code != http.StatusConflict {
		t.Fatalf("second package: %d", r.code)
	}

	// Resend the code mail, back to the study page.
	pk := "/pickups/" + itoa(p.ID)
	if r := staff.post(pk+"/resend", url.Values{"csrf": {""}}); r.code != http.StatusForbidden {
		t.Fatalf("resend without CSRF: %d", r.code)
	}
	r = staff.post(pk+"/resend", url.Values{"back": {path}})
	if r.code != http.StatusSeeOther || r.header.Get("Location") != path {
		t.Fatalf("resend: %d %s", r.code, r.header.Get("Location"))
	}
	if n := len(d.outbox(t)); n != 2 {
		t.Fatalf("%d mails after resend, want 2", n)
	}
	if !e.audited("resend-code", st.StudyUID) {
		t.Fatal("resend not audited")
	}
	// An outside "back" is not followed.
	if r := staff.post(pk+"/resend", url.Values{"back": {"https://evil.example/"}}); r.header.Get("Location") != "/patients" {
		t.Fatalf("resend back to %q", r.header.Get("Location"))
	}

	// The printable letter.
	r = staff.get(pk + "/letter")
	if r.code != http.StatusOK || !strings.Contains(r.header.Get("Content-Security-Policy"), "'unsafe-hashes'") {
		t.Fatalf("letter: %d, CSP %q", r.code, r.header.Get("Content-Security-Policy"))
	}
	mustContain(t, r, p.IdentityCode, "Jane Doe, CT", institution, "target=PICKUP")
	if strings.Contains(r.body, answer) || strings.Contains(r.body, "first pet") {
		t.Fatal("the letter shows the question or answer")
	}
	if !e.audited("print-pickup-letter", st.StudyUID) {
		t.Fatal("letter not audited")
	}

	// Only an admin deletes the package.
	r = staff.post(pk+"/delete", url.Values{"back": {path}})
	if r.code != http.StatusForbidden || !strings.Contains(r.body, "needs the admin role") {
		t.Fatalf("staff delete: %d", r.code)
	}
	if p, _ := e.db.Pickup(context.Background(), p.ID); p.State != gateway.PickupMailed {
		t.Fatalf("after refused delete: %s", p.State)
	}
	boss := e.signIn("boss")
	mustContain(t, boss.get(path), `id="delete-pickup"`)
	if r := boss.post(pk+"/delete", url.Values{"csrf": {""}}); r.code != http.StatusForbidden {
		t.Fatalf("delete without CSRF: %d", r.code)
	}
	r = boss.post(pk+"/delete", url.Values{"back": {path}})
	if r.code != http.StatusSeeOther || r.header.Get("Location") != path {
		t.Fatalf("delete: %d %s", r.code, r.body)
	}
	if p, _ := e.db.Pickup(context.Background(), p.ID); p.State != gateway.PickupDeleted {
		t.Fatalf("after delete: %s", p.State)
	}
	if _, err := d.p.store.GetPackage(context.Background(), p.IdentityCode); !errors.Is(err, pstore.ErrNotFound) {
		t.Fatalf("platform package after delete: %v", err)
	}
	if !e.audited("delete-pickup", st.StudyUID) {
		t.Fatal("delete not audited")
	}
	// A deleted registration has no letter, no mail and no second delete.
	if r := staff.get(pk + "/letter"); r.code != http.StatusConflict {
		t.Fatalf("letter after delete: %d", r.code)
	}
	if r := staff.post(pk+"/resend", nil); r.code != http.StatusConflict {
		t.Fatalf("resend after delete: %d", r.code)
	}
	if r := boss.post(pk+"/delete", nil); r.code != http.StatusConflict {
		t.Fatalf("second delete: %d", r.code)
	}
	if !e.audited("resend-code-refused", st.StudyUID) || !e.audited("delete-pickup-refused", st.StudyUID) {
		t.Fatal("refusals not audited")
	}
	if r := staff.post("/pickups/999/resend", nil); r.code != http.StatusNotFound {
		t.Fatalf("resend of a missing registration: %d", r.code)
	}
	if r := staff.get("/pickups/x/letter"); r.code != http.StatusNotFound {
		t.Fatalf("letter of a bad id: %d", r.code)
	}
	noSecrets(t, e, &d, answer)
}

// TestPatientsPickupAndInvite registers a pick-up before its study
// arrives and makes a Patient Connect invitation from the patients page.
func TestPatientsPickupAndInvite(t *testing.T) {
	ct := dicomtest.PydicomFile(t, "CT_small.dcm")
	var d dopuSetup
	e := newEnv(t, withDOPU(t, &d, route.ActionDOPU))
	e.user("frontdesk", store.RoleStaff)
	e.user("boss", store.RoleAdmin)
	b := e.signIn("frontdesk")
	mustContain(t, b.get("/patients"), `id="register-pickup-form"`, `id="invite-form"`)

	const answer = "Blue Whale 42"
	good := url.Values{"patient_id": {"1CT1"}, "email": {"jane@example.org"}, "friendly_name": {"Jane Doe"},
		"question": {"Favourite animal?"}, "answer": {answer}, "answer2": {answer}}
	with := func(kv ...string) url.Values { return edited(good, kv...) }
	for _, form := range []string{"pickup", "invite"} {
		action := map[string]string{"pickup": "/patients/pickups", "invite": "/patients/invite"}[form]
		for _, rf := range []struct {
			name  string
			form  url.Values
			code  int
			field string
		}{
			{"no CSRF token", with("csrf", ""), http.StatusForbidden, ""},
			{"answers differ", with("answer2", "Blue Whale 43"), http.StatusUnprocessableEntity, "answer2"},
			{"no patient ID", with("patient_id", ""), http.StatusUnprocessableEntity, "patient_id"},
			{"not an email", with("email", "jane@"), http.StatusUnprocessableEntity, "email"},
			{"answer too short", with("answer", "abc", "answer2", "abc"), http.StatusUnprocessableEntity, "answer"},
		} {
			r := b.post(action, rf.form)
			if r.code != rf.code {
				t.Fatalf("%s %s: %d, want %d\n%s", form, rf.name, r.code, rf.code, r.body)
			}
			if rf.field != "" {
				mustContain(t, r, `id="err-`+form+`-`+rf.field+`"`)
				if strings.Contains(r.body, "Blue Whale") || strings.Contains(r.body, `value="abc"`) {
					t.Fatalf("%s %s: the page echoes the answer", form, rf.name)
				}
			}
		}
	}
	if ps := e.pickups(); len(ps) != 0 {
		t.Fatalf("refused forms registered %+v", ps)
	}

	// A registration before the study arrives.
	r := b.post("/patients/pickups", good)
	if r.code != http.StatusSeeOther {
		t.Fatalf("register: %d %s", r.code, r.body)
	}
	ps := e.pickups()
	if len(ps) != 1 || ps[0].State != gateway.PickupRegistered || ps[0].StudyUID != "" {
		t.Fatalf("registrations %+v", ps)
	}
	p := ps[0]
	r = b.get("/patients")
	mustContain(t, r, "Pick-up registered for Jane Doe; its code is in the list below", "<code>"+p.IdentityCode+"</code>", `data-state="registered"`, "/pickups/"+itoa(p.ID)+"/letter")
	if strings.Contains(r.body, `class="resend"`) || strings.Contains(r.body, `class="danger delete"`) {
		t.Fatal("a registration without a package offers resend, or staff are offered delete")
	}
	if !e.audited("register-pickup", "") {
		t.Fatal("registration not audited")
	}
	// The study arrives; the registration takes it, the package is built
	// and the code mailed.
	e.ingest(ct)
	st := e.studyOf("1CT1")
	b.get("/studies/" + st.StudyUID)
	if r := b.post("/studies/"+st.StudyUID+"/deliver-now", nil); r.code != http.StatusSeeOther {
		t.Fatalf("deliver now: %d", r.code)
	}
	p = waitPickup(t, e, p.ID, gateway.PickupMailed)
	if p.StudyUID != st.StudyUID {
		t.Fatalf("registration bound to %q", p.StudyUID)
	}
	r = b.get("/patients")
	mustContain(t, r, `data-state="mailed"`, `class="resend"`)
	if r := b.post("/pickups/"+itoa(p.ID)+"/resend", url.Values{"back": {"/patients"}}); r.code != http.StatusSeeOther || r.header.Get("Location") != "/patients" {
		t.Fatalf("resend: %d %s", r.code, r.header.Get("Location"))
	}
	if n := len(d.outbox(t)); n != 2 {
		t.Fatalf("%d mails, want the code mail and its resend", n)
	}

	// A Patient Connect invitation: the code is shown once and mailed.
	r = b.post("/patients/invite", with("patient_id", "P-77", "issuer", "HOSP"))
	if r.code != http.StatusOK {
		t.Fatalf("invite: %d %s", r.code, r.body)
	}
	m := regexp.MustCompile(`id="invite-code">([A-Z-]+)<`).FindStringSubmatch(r.body)
	if m == nil || !codeRE.MatchString(m[1]) {
		t.Fatalf("no code on the invitation page:\n%s", r.body)
	}
	code := m[1]
	mustContain(t, r, "The code was mailed to jane@example.org", `id="print-connect-letter"`)
	req, err := d.p.store.GetConnectRequest(context.Background(), code)
	if err != nil || req.ExternalID != gateway.ExternalID("P-77", "HOSP") || req.FriendlyName != "Jane Doe" {
		t.Fatalf("platform connect request %+v, %v", req, err)
	}
	mails := d.outbox(t)
	if len(mails) != 3 || !strings.Contains(mails[0].Subject+mails[1].Subject+mails[2].Subject, "invites you to connect") {
		t.Fatalf("outbox after the invitation: %+v", mails)
	}
	if !e.audited("invite-patient", "") {
		t.Fatal("invitation not audited")
	}
	// Its printable letter.
	letter := url.Values{"code": {code}, "friendly_name": {"Jane Doe"}, "patient_id": {"P-77"}}
	r = b.post("/patients/invite/letter", letter)
	if r.code != http.StatusOK {
		t.Fatalf("connect letter: %d %s", r.code, r.body)
	}
	mustContain(t, r, `id="letter-code">`+code, institution, "target=CONNECT", "/static/print.js")
	if strings.Contains(r.body, "<nav") {
		t.Fatal("the letter has the UI's layout")
	}
	if r := b.post("/patients/invite/letter", with("csrf", "")); r.code != http.StatusForbidden {
		t.Fatalf("letter without CSRF: %d", r.code)
	}
	if r := b.post("/patients/invite/letter", url.Values{"code": {"<script>"}, "friendly_name": {"Jane"}}); r.code != http.StatusUnprocessableEntity {
		t.Fatalf("letter of a bad code: %d", r.code)
	}
	if !e.audited("print-connect-letter", "") {
		t.Fatal("connect letter not audited")
	}

	// The admin deletes the registration from the patients page; its
	// package goes from the platform.
	boss := e.signIn("boss")
	mustContain(t, boss.get("/patients"), `class="danger delete"`)
	if r := b.post("/pickups/"+itoa(p.ID)+"/delete", url.Values{"back": {"/patients"}}); r.code != http.StatusForbidden {
		t.Fatalf("staff delete: %d", r.code)
	}
	if r := boss.post("/pickups/"+itoa(p.ID)+"/delete", url.Values{"back": {"/patients"}}); r.code != http.StatusSeeOther || r.header.Get("Location") != "/patients" {
		t.Fatalf("delete: %d %s", r.code, r.header.Get("Location"))
	}
	if _, err := d.p.store.GetPackage(context.Background(), p.IdentityCode); !errors.Is(err, pstore.ErrNotFound) {
		t.Fatalf("platform package after delete: %v", err)
	}
	mustContain(t, boss.get("/patients"), `data-state="deleted"`)
	noSecrets(t, e, &d, answer)
}
