// Package storetest is the conformance suite every gateway store backend
// must pass. Each backend's test opens a fresh, empty store and calls Run.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"dicomgate/gateway/store"
)

// suiteTest is one named conformance test of a store.
type suiteTest struct {
	name string
	fn   func(t *testing.T, s store.Store)
}

// runAll runs each test as a subtest on its own fresh store from open,
// closing the store when the subtest ends.
func runAll(t *testing.T, open func(t *testing.T) store.Store, tests []suiteTest) {
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { s.Close() })
			tt.fn(t, s)
		})
	}
}

// Run runs the whole suite; open returns a fresh, empty store each call.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	runAll(t, open, []suiteTest{
		{"InstancesFormStudies", testInstancesFormStudies},
		{"DuplicateInstance", testDuplicateInstance},
		{"ConcurrentInstances", testConcurrentInstances},
		{"InstanceBatch", testInstanceBatch},
		{"UpdateStudy", testUpdateStudy},
		{"DueStudies", testDueStudies},
		{"Jobs", testJobs},
		{"JobLeaseLapse", testJobLeaseLapse},
		{"ConcurrentClaims", testConcurrentClaims},
		{"EventsAndBlobs", testEventsAndBlobs},
		{"Pickups", testPickups},
		{"LinksAndSettings", testLinksAndSettings},
	})
}

var t0 = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

func instance(study, series, sop string, at time.Time) store.Instance {
	return store.Instance{SOPInstanceUID: sop, SOPClassUID: "1.2.840.10008.5.1.4.1.1.2", StudyUID: study,
		SeriesUID: series, TransferSyntax: "1.2.840.10008.1.2.1", Path: "/spool/" + sop + ".dcm", Size: 1000,
		CallingAE: "CT1", PeerAddr: "127.0.0.1:4000", ReceivedAt: at, Facts: []byte(`{"sop":"` + sop + `"}`)}
}

// putInstance records one instance as a batch of one and reports whether
// it was new.
func putInstance(ctx context.Context, s store.Store, in store.Instance, facts store.Study, readyAt time.Time) (bool, error) {
	created, err := s.PutInstances(ctx, []store.NewInstance{{Instance: in, Facts: facts, ReadyAt: readyAt}})
	if err != nil {
		return false, err
	}
	return created[0], nil
}

func facts(mods ...string) store.Study {
	return store.Study{PatientID: "P1", IssuerOfPatientID: "HOSP", PatientName: "Doe^Jane", StudyDate: "20261120",
		StudyDescription: "CT chest", AccessionNumber: "A1", ReferringPhysician: "Who^Doctor", Modalities: mods}
}

func testInstancesFormStudies(t *testing.T, s store.Store) {
	ctx := context.Background()
	for i, m := range []string{"CT", "CT", "SR"} {
		at := t0.Add(time.Duration(i) * time.Second)
		ok, err := putInstance(ctx, s, instance("1.2.3", fmt.Sprintf("1.2.3.%d", i/2), fmt.Sprintf("1.2.3.9.%d", i), at), facts(m), at.Add(time.Minute))
		if err != nil || !ok {
			t.Fatalf("PutInstance %d = %v, %v", i, ok, err)
		}
	}
	st, err := s.Study(ctx, "1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	if st.Instances != 3 || st.State != store.StateReceiving || st.PatientID != "P1" || st.CallingAE != "CT1" {
		t.Fatalf("study = %+v", st)
	}
	if len(st.Modalities) != 2 || st.Modalities[0] != "CT" || st.Modalities[1] != "SR" {
		t.Fatalf("modalities = %q", st.Modalities)
	}
	if !st.FirstReceived.Equal(t0) || !st.LastReceived.Equal(t0.Add(2*time.Second)) || !st.ReadyAt.Equal(t0.Add(2*time.Second+time.Minute)) {
		t.Fatalf("times: first %v last %v ready %v", st.FirstReceived, st.LastReceived, st.ReadyAt)
	}
	ins, err := s.StudyInstances(ctx, "1.2.3")
	if err != nil || len(ins) != 3 || ins[0].SOPInstanceUID != "1.2.3.9.0" || string(ins[2].Facts) != `{"sop":"1.2.3.9.2"}` {
		t.Fatalf("StudyInstances = %+v, %v", ins, err)
	}
	if err := s.MarkDelivered(ctx, []string{"1.2.3.9.0"}); err != nil {
		t.Fatal(err)
	}
	in, err := s.Instance(ctx, "1.2.3.9.0")
	if err != nil || !in.Delivered || in.Size != 1000 || in.PeerAddr != "127.0.0.1:4000" {
		t.Fatalf("Instance = %+v, %v", in, err)
	}
	if _, err := s.Instance(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing instance: %v", err)
	}
	if _, err := s.Study(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing study: %v", err)
	}
	list, err := s.Studies(ctx, store.StudyFilter{States: []store.StudyState{store.StateReceiving}, PatientID: "P1"})
	if err != nil || len(list) != 1 {
		t.Fatalf("Studies = %v, %v", list, err)
	}
	list, err = s.Studies(ctx, store.StudyFilter{States: []store.StudyState{store.StateDelivered}})
	if err != nil || len(list) != 0 {
		t.Fatalf("Studies(delivered) = %v, %v", list, err)
	}
}

func testDuplicateInstance(t *testing.T, s store.Store) {
	ctx := context.Background()
	in := instance("1.2.4", "1.2.4.1", "1.2.4.1.1", t0)
	if ok, err := putInstance(ctx, s, in, facts("CT"), t0); err != nil || !ok {
		t.Fatalf("first = %v, %v", ok, err)
	}
	in.Path = "/elsewhere"
	if ok, err := putInstance(ctx, s, in, facts("CT"), t0); err != nil || ok {
		t.Fatalf("duplicate = %v, %v; want false, nil", ok, err)
	}
	st, _ := s.Study(ctx, "1.2.4")
	got, _ := s.Instance(ctx, "1.2.4.1.1")
	if st.Instances != 1 || got.Path != "/spool/1.2.4.1.1.dcm" {
		t.Fatalf("duplicate changed state: %d instances, path %s", st.Instances, got.Path)
	}
}

func testUpdateStudy(t *testing.T, s store.Store) {
	ctx := context.Background()
	putInstance(ctx, s, instance("1.2.5", "1.2.5.1", "1.2.5.1.1", t0), facts("MR"), t0)
	st, err := s.UpdateStudy(ctx, "1.2.5", func(st *store.Study) error {
		st.State = store.StateDelivered
		st.ThingID, st.VersionStamp, st.RecordID = "thing", "v1", "rec"
		st.DeliveredAt = t0.Add(time.Hour)
		st.Delivered = 1
		return nil
	})
	if err != nil || st.State != store.StateDelivered {
		t.Fatalf("UpdateStudy = %+v, %v", st, err)
	}
	boom := errors.New("boom")
	if _, err := s.UpdateStudy(ctx, "1.2.5", func(st *store.Study) error { st.ThingID = "lost"; return boom }); !errors.Is(err, boom) {
		t.Fatalf("aborted update: %v", err)
	}
	got, _ := s.Study(ctx, "1.2.5")
	if got.ThingID != "thing" || got.VersionStamp != "v1" || !got.DeliveredAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("after abort: %+v", got)
	}
	// A late instance reopens a delivered study for an update.
	late := t0.Add(2 * time.Hour)
	if ok, err := putInstance(ctx, s, instance("1.2.5", "1.2.5.2", "1.2.5.2.1", late), facts("MR"), late.Add(time.Minute)); err != nil || !ok {
		t.Fatal(ok, err)
	}
	got, _ = s.Study(ctx, "1.2.5")
	if got.State != store.StateReceiving || got.Instances != 2 || got.ThingID != "thing" || !got.ReadyAt.Equal(late.Add(time.Minute)) {
		t.Fatalf("late instance: %+v", got)
	}
	// A held study stays held.
	s.UpdateStudy(ctx, "1.2.5", func(st *store.Study) error { st.State = store.StateHeld; return nil })
	putInstance(ctx, s, instance("1.2.5", "1.2.5.2", "1.2.5.2.2", late), facts("MR"), late)
	if got, _ = s.Study(ctx, "1.2.5"); got.State != store.StateHeld || got.Instances != 3 {
		t.Fatalf("held study: %+v", got)
	}
	if _, err := s.UpdateStudy(ctx, "nope", func(*store.Study) error { return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
}

func testDueStudies(t *testing.T, s store.Store) {
	ctx := context.Background()
	if next, err := s.NextReadyAt(ctx); err != nil || !next.IsZero() {
		t.Fatalf("NextReadyAt of an empty store = %v, %v; want the zero time", next, err)
	}
	putInstance(ctx, s, instance("1.2.6", "1.2.6.1", "1.2.6.1.1", t0), facts("CT"), t0.Add(time.Minute))
	putInstance(ctx, s, instance("1.2.7", "1.2.7.1", "1.2.7.1.1", t0), facts("CT"), t0.Add(2*time.Minute))
	if next, err := s.NextReadyAt(ctx); err != nil || !next.Equal(t0.Add(time.Minute)) {
		t.Fatalf("NextReadyAt = %v, %v; want %v", next, err, t0.Add(time.Minute))
	}
	due, err := s.DueStudies(ctx, t0.Add(90*time.Second))
	if err != nil || len(due) != 1 || due[0].StudyUID != "1.2.6" {
		t.Fatalf("DueStudies = %v, %v", due, err)
	}
	s.UpdateStudy(ctx, "1.2.6", func(st *store.Study) error { st.State = store.StateQueued; return nil })
	if next, err := s.NextReadyAt(ctx); err != nil || !next.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("NextReadyAt after queue = %v, %v; want %v (the queued study no longer counts)", next, err, t0.Add(2*time.Minute))
	}
	due, _ = s.DueStudies(ctx, t0.Add(time.Hour))
	if len(due) != 1 || due[0].StudyUID != "1.2.7" {
		t.Fatalf("DueStudies after queue = %v", due)
	}
}

func testJobs(t *testing.T, s store.Store) {
	ctx := context.Background()
	j, err := s.EnqueueJob(ctx, "deliver", "1.2.3", t0.Add(time.Minute), 3)
	if err != nil || j.ID == 0 || j.State != store.JobAvailable {
		t.Fatalf("EnqueueJob = %+v, %v", j, err)
	}
	// One live job per kind and key: enqueueing again moves it earlier.
	j2, err := s.EnqueueJob(ctx, "deliver", "1.2.3", t0, 3)
	if err != nil || j2.ID != j.ID || !j2.RunAt.Equal(t0) {
		t.Fatalf("re-enqueue = %+v, %v", j2, err)
	}
	if _, err := s.ClaimJob(ctx, []string{"other"}, t0, time.Minute); !errors.Is(err, store.ErrNoJob) {
		t.Fatalf("claim other kind: %v", err)
	}
	if _, err := s.ClaimJob(ctx, []string{"deliver"}, t0.Add(-time.Second), time.Minute); !errors.Is(err, store.ErrNoJob) {
		t.Fatalf("claim before due: %v", err)
	}
	for attempt := 1; attempt <= 3; attempt++ {
		c, err := s.ClaimJob(ctx, []string{"deliver"}, t0.Add(time.Duration(attempt)*time.Hour), time.Minute)
		if err != nil || c.ID != j.ID || c.Attempts != attempt || c.State != store.JobRunning {
			t.Fatalf("claim %d = %+v, %v", attempt, c, err)
		}
		failed, err := s.RetryJob(ctx, c.ID, fmt.Sprintf("attempt %d failed", attempt), t0.Add(time.Duration(attempt)*time.Hour))
		if err != nil || failed != (attempt == 3) {
			t.Fatalf("retry %d = %v, %v", attempt, failed, err)
		}
	}
	jobs, err := s.Jobs(ctx, "1.2.3")
	if err != nil || len(jobs) != 1 || jobs[0].State != store.JobFailed || jobs[0].LastError != "attempt 3 failed" {
		t.Fatalf("Jobs = %+v, %v", jobs, err)
	}
	// A failed job is not live: a new one can be enqueued and finished.
	j3, _ := s.EnqueueJob(ctx, "deliver", "1.2.3", t0, 3)
	if j3.ID == j.ID {
		t.Fatal("failed job reused")
	}
	c, err := s.ClaimJob(ctx, []string{"deliver"}, t0.Add(10*time.Hour), time.Minute)
	if err != nil || c.ID != j3.ID {
		t.Fatalf("claim new = %+v, %v", c, err)
	}
	if err := s.FinishJob(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimJob(ctx, []string{"deliver"}, t0.Add(20*time.Hour), time.Minute); !errors.Is(err, store.ErrNoJob) {
		t.Fatalf("claim after done: %v", err)
	}
	j4, _ := s.EnqueueJob(ctx, "deliver", "1.2.3", t0, 3)
	if err := s.FailJob(ctx, j4.ID, "no such study"); err != nil {
		t.Fatal(err)
	}
	if jobs, _ := s.Jobs(ctx, "1.2.3"); jobs[0].ID != j4.ID || jobs[0].State != store.JobFailed || jobs[0].LastError != "no such study" {
		t.Fatalf("after FailJob: %+v", jobs[0])
	}
	if err := s.FinishJob(ctx, 999999); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("finish missing: %v", err)
	}
}

func testJobLeaseLapse(t *testing.T, s store.Store) {
	ctx := context.Background()
	j, _ := s.EnqueueJob(ctx, "deliver", "k", t0, 5)
	c, err := s.ClaimJob(ctx, []string{"deliver"}, t0, time.Minute)
	if err != nil || c.ID != j.ID {
		t.Fatal(c, err)
	}
	if _, err := s.ClaimJob(ctx, []string{"deliver"}, t0.Add(30*time.Second), time.Minute); !errors.Is(err, store.ErrNoJob) {
		t.Fatalf("claimed a leased job: %v", err)
	}
	// A live worker extends its lease.
	if err := s.ExtendLease(ctx, j.ID, t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimJob(ctx, []string{"deliver"}, t0.Add(90*time.Second), time.Minute); !errors.Is(err, store.ErrNoJob) {
		t.Fatalf("claimed a job whose lease was extended: %v", err)
	}
	// The worker died: after the lease the job is claimed again.
	c2, err := s.ClaimJob(ctx, []string{"deliver"}, t0.Add(121*time.Second), time.Minute)
	if err != nil || c2.ID != j.ID || c2.Attempts != 2 {
		t.Fatalf("reclaim = %+v, %v", c2, err)
	}
	// A restarted gateway releases the dead process's lease at once.
	if n, err := s.ReleaseRunning(ctx); err != nil || n != 1 {
		t.Fatalf("ReleaseRunning = %d, %v", n, err)
	}
	c2, err = s.ClaimJob(ctx, []string{"deliver"}, t0.Add(122*time.Second), time.Minute)
	if err != nil || c2.ID != j.ID || c2.Attempts != 3 {
		t.Fatalf("claim after release = %+v, %v", c2, err)
	}
	if err := s.FinishJob(ctx, c2.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.ExtendLease(ctx, c2.ID, t0.Add(time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("extend a finished job: %v", err)
	}
}

func testConcurrentClaims(t *testing.T, s store.Store) {
	ctx := context.Background()
	const n = 20
	for i := 0; i < n; i++ {
		if _, err := s.EnqueueJob(ctx, "deliver", fmt.Sprintf("k%d", i), t0, 1); err != nil {
			t.Fatal(err)
		}
	}
	var (
		mu   sync.Mutex
		seen = map[int64]int{}
		wg   sync.WaitGroup
	)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				j, err := s.ClaimJob(ctx, []string{"deliver"}, t0.Add(time.Second), time.Hour)
				if errors.Is(err, store.ErrNoJob) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seen[j.ID]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("claimed %d distinct jobs, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Fatalf("job %d claimed %d times", id, c)
		}
	}
}

func testEventsAndBlobs(t *testing.T, s store.Store) {
	ctx := context.Background()
	for i, k := range []string{"received", "routed", "delivered"} {
		if err := s.AddEvent(ctx, store.Event{StudyUID: "1.2", At: t0.Add(time.Duration(i) * time.Second), Kind: k, Detail: "d" + k}); err != nil {
			t.Fatal(err)
		}
	}
	ev, err := s.Events(ctx, "1.2")
	if err != nil || len(ev) != 3 || ev[0].Kind != "received" || ev[2].Detail != "ddelivered" || !ev[1].At.Equal(t0.Add(time.Second)) {
		t.Fatalf("Events = %+v, %v", ev, err)
	}
	b := store.UploadedBlob{StudyUID: "1.2", Name: "1.2.3", ContentType: "application/dicom", RefURL: "u1", Hash: "h1", BlockSize: 4 << 20, ContentLength: 10}
	if err := s.RecordBlobs(ctx, []store.UploadedBlob{b}); err != nil {
		t.Fatal(err)
	}
	b.RefURL, b.Hash = "u2", "h2"
	if err := s.RecordBlobs(ctx, []store.UploadedBlob{b}); err != nil {
		t.Fatal(err)
	}
	s.RecordBlobs(ctx, []store.UploadedBlob{{StudyUID: "1.2", Name: "1.2.3_preview", ContentType: "image/jpeg", RefURL: "u3", Hash: "h3", BlockSize: 1, ContentLength: 1}})
	bl, err := s.Blobs(ctx, "1.2")
	if err != nil || len(bl) != 2 || bl[0].RefURL != "u2" || bl[0].Hash != "h2" || bl[1].ContentType != "image/jpeg" {
		t.Fatalf("Blobs = %+v, %v", bl, err)
	}
	if err := s.RecordBlobs(ctx, []store.UploadedBlob{
		{StudyUID: "1.2", Name: "a", ContentType: "image/jpeg", RefURL: "ua", Hash: "ha", BlockSize: 1, ContentLength: 1},
		{StudyUID: "1.2", Name: "1.2.3", ContentType: "application/dicom", RefURL: "u4", Hash: "h4", BlockSize: 4 << 20, ContentLength: 10},
	}); err != nil {
		t.Fatal(err)
	}
	if bl, _ := s.Blobs(ctx, "1.2"); len(bl) != 3 || bl[0].RefURL != "u4" || bl[2].Name != "a" {
		t.Fatalf("after RecordBlobs: %+v", bl)
	}
	if err := s.ForgetBlobs(ctx, "1.2"); err != nil {
		t.Fatal(err)
	}
	if bl, _ := s.Blobs(ctx, "1.2"); len(bl) != 0 {
		t.Fatalf("after forget: %v", bl)
	}
}

func testPickups(t *testing.T, s store.Store) {
	ctx := context.Background()
	p, err := s.CreatePickup(ctx, store.Pickup{PatientID: "P1", IssuerOfPatientID: "HOSP", Email: "jane@example.org",
		FriendlyName: "Jane", Question: "Pet?", AnswerSealed: []byte{1, 2, 0, 255}, IdentityCode: "BCDF-GHJK-LMNP-QRST-VWXZ",
		State: "registered", CreatedAt: t0, ExpiresAt: t0.Add(28 * 24 * time.Hour)})
	if err != nil || p.ID == 0 {
		t.Fatal(p, err)
	}
	p2, _ := s.CreatePickup(ctx, store.Pickup{PatientID: "P1", IssuerOfPatientID: "HOSP", AccessionNumber: "A9", Email: "x@example.org",
		FriendlyName: "Jane", Question: "Q", State: "registered", CreatedAt: t0})
	got, err := s.Pickup(ctx, p.ID)
	if err != nil || string(got.AnswerSealed) != string([]byte{1, 2, 0, 255}) || got.IdentityCode != p.IdentityCode || !got.ExpiresAt.Equal(p.ExpiresAt) {
		t.Fatalf("Pickup = %+v, %v", got, err)
	}
	// The oldest unbound registration for the patient wins; one that names
	// an accession number only matches that study.
	f, err := s.FindPickup(ctx, "P1", "HOSP", "A1")
	if err != nil || f.ID != p.ID {
		t.Fatalf("FindPickup = %+v, %v", f, err)
	}
	got.StudyUID, got.AnswerSealed, got.State = "1.2.3", nil, "packaged"
	if err := s.UpdatePickup(ctx, got); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FindPickup(ctx, "P1", "HOSP", "A1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("bound pickup found again: %v", err)
	}
	if f, err := s.FindPickup(ctx, "P1", "HOSP", "A9"); err != nil || f.ID != p2.ID {
		t.Fatalf("FindPickup(A9) = %+v, %v", f, err)
	}
	got, _ = s.Pickup(ctx, p.ID)
	if len(got.AnswerSealed) != 0 {
		t.Fatalf("answer not erased: %v", got.AnswerSealed)
	}
	// Only registrations still waiting are found.
	s.CreatePickup(ctx, store.Pickup{PatientID: "P2", Email: "y@example.org", FriendlyName: "Joe", Question: "Q", State: "deleted", CreatedAt: t0})
	if _, err := s.FindPickup(ctx, "P2", "", ""); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted registration found: %v", err)
	}
	all, err := s.Pickups(ctx)
	if err != nil || len(all) != 3 || all[1].ID != p2.ID {
		t.Fatalf("Pickups = %v, %v", all, err)
	}
	if err := s.UpdatePickup(ctx, store.Pickup{ID: 424242}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update missing: %v", err)
	}
}

func testLinksAndSettings(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, err := s.Link(ctx, "P1^^^HOSP"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing link: %v", err)
	}
	s.PutLink(ctx, store.PatientLink{ExternalID: "P1^^^HOSP", PersonID: "p", RecordID: "r1", AuthorizedAt: t0})
	s.PutLink(ctx, store.PatientLink{ExternalID: "P1^^^HOSP", PersonID: "p", RecordID: "r2", AuthorizedAt: t0.Add(time.Hour)})
	l, err := s.Link(ctx, "P1^^^HOSP")
	if err != nil || l.RecordID != "r2" || !l.AuthorizedAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("Link = %+v, %v", l, err)
	}
	if ls, _ := s.Links(ctx); len(ls) != 1 {
		t.Fatalf("Links = %v", ls)
	}
	if _, err := s.Setting(ctx, "rules"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing setting: %v", err)
	}
	s.PutSetting(ctx, "rules", []byte(`[1]`))
	s.PutSetting(ctx, "rules", []byte(`[2]`))
	if v, err := s.Setting(ctx, "rules"); err != nil || string(v) != `[2]` {
		t.Fatalf("Setting = %s, %v", v, err)
	}
}

// testConcurrentInstances sends the first instances of one new study from
// several associations at once, each instance twice: the study is created
// once and every instance counted once.
func testConcurrentInstances(t *testing.T, s store.Store) {
	ctx := context.Background()
	const n = 12
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		created int
	)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n; i++ {
				if (i+w)%2 == 1 && w >= 2 {
					continue
				}
				ok, err := putInstance(ctx, s, instance("1.9", "1.9.1", fmt.Sprintf("1.9.1.%d", i), t0), facts("CT"), t0)
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					mu.Lock()
					created++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	st, err := s.Study(ctx, "1.9")
	if err != nil || st.Instances != n || created != n {
		t.Fatalf("instances %d, created %d, want %d (%v)", st.Instances, created, n, err)
	}
}

// testInstanceBatch records a batch in one transaction: new instances of
// two studies, one known already and one twice in the batch.
func testInstanceBatch(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, err := putInstance(ctx, s, instance("3.1", "3.1.1", "3.1.1.1", t0), facts("CT"), t0); err != nil {
		t.Fatal(err)
	}
	batch := []store.NewInstance{
		{Instance: instance("3.1", "3.1.1", "3.1.1.1", t0), Facts: facts("CT"), ReadyAt: t0},
		{Instance: instance("3.1", "3.1.2", "3.1.2.1", t0), Facts: facts("MR"), ReadyAt: t0.Add(time.Minute)},
		{Instance: instance("3.2", "3.2.1", "3.2.1.1", t0), Facts: facts("US"), ReadyAt: t0},
		{Instance: instance("3.2", "3.2.1", "3.2.1.1", t0), Facts: facts("US"), ReadyAt: t0},
	}
	created, err := s.PutInstances(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	if want := []bool{false, true, true, false}; fmt.Sprint(created) != fmt.Sprint(want) {
		t.Fatalf("created = %v, want %v", created, want)
	}
	a, _ := s.Study(ctx, "3.1")
	b, _ := s.Study(ctx, "3.2")
	if a.Instances != 2 || len(a.Modalities) != 2 || !a.ReadyAt.Equal(t0.Add(time.Minute)) || b.Instances != 1 {
		t.Fatalf("studies after the batch: %+v / %+v", a, b)
	}
	if _, err := s.PutInstances(ctx, []store.NewInstance{{Instance: store.Instance{SOPInstanceUID: "x"}}}); err == nil {
		t.Fatal("instance without a study accepted")
	}
}
