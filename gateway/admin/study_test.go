package admin_test

import (
	"bytes"
	"context"
	"image/jpeg"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"dicomgate/dimse/dicomtest"
	"dicomgate/gateway"
	"dicomgate/gateway/admin"
	"dicomgate/gateway/store"
	"dicomgate/platform/appcert"
	"dicomgate/platform/client"
)

// fixedAssociations reports a fixed set of live associations, so the
// dashboard's rendering of every column is checked exactly (the real
// listener's are in TestDashboardLiveAssociations).
type fixedAssociations []admin.AssociationSnapshot

func (f fixedAssociations) Associations() []admin.AssociationSnapshot { return f }

func TestDashboard(t *testing.T) {
	ctFile, mrFile := dicomtest.PydicomFile(t, "CT_small.dcm"), dicomtest.PydicomFile(t, "MR_small.dcm")
	e := newEnv(t, func(_ *env, _ *gatewayConfig, c *admin.Config) {
		c.Associations = fixedAssociations{{Peer: "10.1.2.3:51234", CallingAE: "MODALITY_CT", CalledAE: "DICOMGATE", Instances: 17, Since: time.Now()}}
	})
	e.user("alice", store.RoleStaff)
	e.ingest(ctFile)
	e.ingest(mrFile)
	b := e.signIn("alice")

	r := b.get("/")
	mustContain(t, r, "CompressedSamples^CT1", "CompressedSamples^MR1", "waiting for the quiet period",
		"MODALITY_CT", "10.1.2.3:51234", `<td class="num">17</td>`, `hx-get="/fragments/dashboard"`, `hx-trigger="every 2s"`)

	// A failed study shows its reason; an uploading one its progress.
	ct := e.studyOf("1CT1")
	e.db.UpdateStudy(context.Background(), ct.StudyUID, func(s *store.Study) error {
		s.State, s.BlobsDone, s.BlobsTotal = store.StateUploading, 3, 8
		return nil
	})
	mr := e.studyOf("4MR1")
	e.db.UpdateStudy(context.Background(), mr.StudyUID, func(s *store.Study) error {
		s.State, s.Error = store.StateFailed, "platform refused the blob: quota exceeded"
		return nil
	})
	r = b.get("/fragments/dashboard", "HX-Request", "true")
	if strings.Contains(r.body, "<html") {
		t.Fatal("the fragment is a whole page")
	}
	mustContain(t, r, `<progress max="8" value="3">`, "3 of 8 blobs", "platform refused the blob: quota exceeded", "failed <b>1</b>")
	// Filtering by state.
	r = b.get("/?state=failed")
	if strings.Contains(r.body, "CompressedSamples^CT1") || !strings.Contains(r.body, "CompressedSamples^MR1") {
		t.Fatal("state filter did not filter")
	}
	// Polls are audited once per session and period, not every 2 s.
	for i := 0; i < 5; i++ {
		b.get("/fragments/dashboard", "HX-Request", "true")
	}
	if n := e.auditCount("view-dashboard"); n != 4 {
		t.Fatalf("%d view-dashboard audit rows, want 4 (3 page loads, 1 for the 6 polls)", n)
	}
}

func TestStudyPage(t *testing.T) {
	ct, srFile := dicomtest.PydicomFile(t, "CT_small.dcm"), dicomtest.PydicomFile(t, "test-SR.dcm")
	e := newEnv(t)
	e.user("alice", store.RoleAdmin)
	e.ingest(ct)
	e.ingest(srFile)
	st := e.studyOf("1CT1")
	b := e.signIn("alice")
	r := b.get("/studies/" + st.StudyUID)
	if r.code != http.StatusOK {
		t.Fatalf("study page: %d", r.code)
	}
	mustContain(t, r, "CompressedSamples^CT1", "1CT1", "CT1", "waiting for the quiet period", `id="deliver-now"`, `id="discard"`,
		"/series/", "thumbnail.jpg", "hold (default: no rule matched)")
	if !e.audited("view-study", st.StudyUID) {
		t.Fatal("study view not audited")
	}
	ins, _ := e.db.StudyInstances(context.Background(), st.StudyUID)
	r = b.get("/studies/" + st.StudyUID + "/series/" + ins[0].SeriesUID + "/thumbnail.jpg")
	if r.code != http.StatusOK || r.header.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("thumbnail: %d %s", r.code, r.header.Get("Content-Type"))
	}
	img, err := jpeg.Decode(strings.NewReader(r.body))
	if err != nil {
		t.Fatalf("thumbnail is not a JPEG: %v", err)
	}
	if b := img.Bounds(); b.Dx() > 256 || b.Dy() > 256 || b.Dx() < 32 {
		t.Fatalf("thumbnail %v, want at most the thumbnail size", b)
	}
	// Cached: the same bytes again.
	if r2 := b.get("/studies/" + st.StudyUID + "/series/" + ins[0].SeriesUID + "/thumbnail.jpg"); !bytes.Equal([]byte(r2.body), []byte(r.body)) {
		t.Fatal("second thumbnail differs")
	}
	// A series without pixel data has no thumbnail.
	sr, err := e.db.Study(context.Background(), "1.2.276.0.7230010.3.1.4.2139363186.7819.982086466.2") // test-SR.dcm
	if err != nil {
		t.Fatal(err)
	}
	srIns, _ := e.db.StudyInstances(context.Background(), sr.StudyUID)
	if r := b.get("/studies/" + sr.StudyUID + "/series/" + srIns[0].SeriesUID + "/thumbnail.jpg"); r.code != http.StatusNotFound {
		t.Fatalf("SR thumbnail: %d", r.code)
	}
	mustContain(t, b.get("/studies/"+sr.StudyUID), "no image")
	if r := b.get("/studies/1.2.3.4.5"); r.code != http.StatusNotFound {
		t.Fatalf("missing study: %d", r.code)
	}
	if r := b.get("/studies/" + strings.Repeat("1", 65)); r.code != http.StatusNotFound {
		t.Fatalf("overlong UID: %d", r.code)
	}
}

func TestStudyActions(t *testing.T) {
	ct := dicomtest.PydicomFile(t, "CT_small.dcm")
	e := newEnv(t)
	e.user("alice", store.RoleStaff)
	e.ingest(ct)
	st := e.studyOf("1CT1")
	path := "/studies/" + st.StudyUID
	ctx := context.Background()
	if err := e.db.PutLink(ctx, store.PatientLink{ExternalID: "P-CONNECTED", PersonID: "person-1", RecordID: "record-1", AuthorizedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	b := e.signIn("alice")
	b.get(path)

	state := func() store.StudyState {
		s, err := e.db.Study(ctx, st.StudyUID)
		if err != nil {
			t.Fatal(err)
		}
		return s.State
	}
	steps := []struct {
		name    string
		action  string
		form    url.Values
		code    int
		want    store.StudyState
		body    []string
		audited string
	}{
		{"retry refused while receiving", "/retry", nil, http.StatusConflict, store.StateReceiving,
			[]string{`id="action-error"`, "not failed"}, "retry-refused"},
		{"deliver now", "/deliver-now", nil, http.StatusSeeOther, store.StateHeld, nil, "deliver-now"},
		{"deliver now refused when held", "/deliver-now", nil, http.StatusConflict, store.StateHeld,
			[]string{"study is held, not receiving"}, "deliver-now-refused"},
		{"release: invalid action", "/release", url.Values{"action": {"fax"}}, http.StatusUnprocessableEntity, store.StateHeld,
			[]string{`id="err-action"`}, ""},
		{"release to record without mapping", "/release", url.Values{"action": {"record"}}, http.StatusSeeOther, store.StateWaitingPatient, nil, "release"},
		{"deliver to patient: none chosen, not confirmed", "/deliver-to-patient", url.Values{}, http.StatusUnprocessableEntity, store.StateWaitingPatient,
			[]string{`id="err-external_id"`, `id="err-confirm"`}, ""},
		{"deliver to patient: unknown patient", "/deliver-to-patient", url.Values{"external_id": {"NOBODY"}, "confirm": {"1"}}, http.StatusUnprocessableEntity,
			store.StateWaitingPatient, []string{"That patient is not connected."}, ""},
		{"deliver to patient", "/deliver-to-patient", url.Values{"external_id": {"P-CONNECTED"}, "confirm": {"1"}}, http.StatusSeeOther, store.StateQueued, nil, "deliver-to-patient"},
		{"discard", "/discard", nil, http.StatusSeeOther, store.StateDiscarded, nil, "discard"},
	}
	for _, s := range steps {
		r := b.post(path+s.action, s.form)
		if r.code != s.code {
			t.Fatalf("%s: %d, want %d\n%s", s.name, r.code, s.code, r.body)
		}
		if got := state(); got != s.want {
			t.Fatalf("%s: study is %s, want %s", s.name, got, s.want)
		}
		mustContain(t, r, s.body...)
		if s.audited != "" && !e.audited(s.audited, st.StudyUID) {
			t.Fatalf("%s: no %s audit row", s.name, s.audited)
		}
	}
	l, err := e.db.Link(ctx, gateway.ExternalID(st.PatientID, st.IssuerOfPatientID))
	if err != nil || l.RecordID != "record-1" {
		t.Fatalf("mapping made by deliver-to-patient = %+v, %v", l, err)
	}
	r := b.get(path)
	mustContain(t, r, "discarded", "staff discarded the study", "staff sent the study to record")
	if strings.Contains(r.body, `id="discard"`) {
		t.Fatal("a discarded study offers discard")
	}
	// Without a token the action is refused and nothing changes.
	if r := b.post(path+"/retry", url.Values{"csrf": {""}}); r.code != http.StatusForbidden {
		t.Fatalf("retry without CSRF: %d", r.code)
	}
	if r := b.post("/studies/9.9.9/discard", nil); r.code != http.StatusNotFound {
		t.Fatalf("discard of a missing study: %d", r.code)
	}
}

// TestRetryFailedDelivery makes a delivery really fail (the platform's
// port is closed), then retries it from the study page.
func TestRetryFailedDelivery(t *testing.T) {
	ct := dicomtest.PydicomFile(t, "CT_small.dcm")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + ln.Addr().String()
	ln.Close()
	key, cert, err := appcert.Generate("test gateway", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pf, err := client.New(client.Config{URL: deadURL, Credentials: &appcert.Credentials{AppID: "app", Key: key, Cert: cert},
		MaxAttempts: 1, Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(e *env, g *gatewayConfig, _ *admin.Config) {
		g.MaxAttempts, g.RetryBase, g.RetryMax = 1, time.Millisecond, time.Millisecond
		g.QuietPeriod = time.Hour
		g.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
		var err error
		if e.gw, err = gateway.New(*g, e.db, e.sp, pf); err != nil {
			t.Fatal(err)
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.gw.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	e.user("alice", store.RoleStaff)
	e.ingest(ct)
	st := e.studyOf("1CT1")
	if err := e.gw.LinkPatient(ctx, store.PatientLink{ExternalID: gateway.ExternalID(st.PatientID, st.IssuerOfPatientID), PersonID: "p", RecordID: "r", AuthorizedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := e.gw.SetRules(nil, "record"); err != nil {
		t.Fatal(err)
	}
	b := e.signIn("alice")
	path := "/studies/" + st.StudyUID
	b.get(path)
	if r := b.post(path+"/deliver-now", nil); r.code != http.StatusSeeOther {
		t.Fatalf("deliver now: %d", r.code)
	}
	waitState(t, e, st.StudyUID, store.StateFailed)
	r := b.get("/?state=failed")
	mustContain(t, r, "CompressedSamples^CT1", `class="reason"`)
	r = b.get(path)
	mustContain(t, r, `id="retry"`, "attempt-failed", "connection refused")
	if r := b.post(path+"/retry", nil); r.code != http.StatusSeeOther {
		t.Fatalf("retry: %d %s", r.code, r.body)
	}
	if !e.audited("retry", st.StudyUID) {
		t.Fatal("retry not audited")
	}
	evs, _ := e.db.Events(context.Background(), st.StudyUID)
	found := false
	for _, ev := range evs {
		found = found || ev.Kind == "retry"
	}
	if !found {
		t.Fatalf("no retry event in %+v", evs)
	}
	// It fails again, for the same reason: nothing is up there.
	waitState(t, e, st.StudyUID, store.StateFailed)
}

func waitState(t *testing.T, e *env, uid string, want store.StudyState) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s, err := e.db.Study(context.Background(), uid)
		if err != nil {
			t.Fatal(err)
		}
		if s.State == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("study is %s after 20 s, want %s (error %q)", s.State, want, s.Error)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
