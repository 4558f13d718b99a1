package storetest

import (
	"context"
	"crypto/sha256"
	"slices"
	"sync"
	"testing"
	"time"

	"dicomgate/platform/store"
)

// RunConnect runs the conformance tests of store.Connect (Run calls it).
func RunConnect(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"IdentityCodes", testIdentityCodes},
		{"PackageLifecycle", testPackageLifecycle},
		{"PackageBlobs", testPackageBlobs},
		{"PickUpThings", testPickUpThings},
		{"ConnectRequests", testConnectRequests},
		{"AuthorizedPaging", testAuthorizedPaging},
		{"WebSessionsAudit", testWebSessionsAudit},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { s.Close() })
			tc.fn(t, s)
		})
	}
}

const appA, appB = "aaaaaaaa-0000-0000-0000-000000000001", "aaaaaaaa-0000-0000-0000-000000000002"

func seedApps(t *testing.T, s store.Store) {
	t.Helper()
	ctx := context.Background()
	must(t, s.CreateApp(ctx, store.App{ID: appA, Name: "a", Created: t0}))
	must(t, s.CreateApp(ctx, store.App{ID: appB, Name: "b", Created: t0}))
}

func testIdentityCodes(t *testing.T, s store.Store) {
	ctx := context.Background()
	must(t, s.ReserveIdentityCode(ctx, "BCDF-GHJK-LMNP-QRST-VWXZ", t0))
	wantErr(t, s.ReserveIdentityCode(ctx, "BCDF-GHJK-LMNP-QRST-VWXZ", t0), store.ErrExists)
}

func newPkg(t *testing.T, s store.Store, code, app, ext, state string) store.ConnectPackage {
	t.Helper()
	must(t, s.ReserveIdentityCode(context.Background(), code, t0))
	return store.ConnectPackage{IdentityCode: code, AppID: app, ExternalID: ext, FriendlyName: "Alice", Question: "Pet?",
		State: state, DataXML: []byte("<password-protected-package/>"), Ciphertext: []byte{1, 2, 3},
		Created: t0, Expires: t0.Add(28 * 24 * time.Hour)}
}

func testPackageLifecycle(t *testing.T, s store.Store) {
	ctx := context.Background()
	seedApps(t, s)
	seedRecord(t, s, "rec-1")

	p := newPkg(t, s, "C1", appA, "ext-1", store.PackagePending)
	must(t, s.CreatePackage(ctx, p))
	got, err := s.GetPackage(ctx, "C1")
	must(t, err)
	if got.State != store.PackagePending || string(got.Ciphertext) != "\x01\x02\x03" || got.FriendlyName != "Alice" || !got.Expires.Equal(p.Expires) {
		t.Fatalf("GetPackage = %+v", got)
	}
	_, err = s.GetPackage(ctx, "NOPE")
	wantErr(t, err, store.ErrNotFound)

	// Several packages per external id are allowed.
	must(t, s.CreatePackage(ctx, newPkg(t, s, "C2", appA, "ext-1", store.PackagePending)))

	// Tries are taken atomically: of 10 concurrent answers only 3 get
	// one; a try given back can be taken again.
	testConcurrentTries(t, "C1", func(max int) (int, error) { return s.TakePackageTry(ctx, "C1", max) })
	must(t, s.ReturnPackageTry(ctx, "C1"))
	if n, err := s.TakePackageTry(ctx, "C1", 3); err != nil || n != 3 {
		t.Fatalf("TakePackageTry after return = %d, %v; want 3", n, err)
	}
	_, err = s.TakePackageTry(ctx, "NOPE", 3)
	wantErr(t, err, store.ErrNotFound)

	// Claim, release, claim again, complete: once only.
	now := t0.Add(time.Hour)
	must(t, s.ClaimPackage(ctx, "C2", now, now.Add(time.Minute)))
	wantErr(t, s.ClaimPackage(ctx, "C2", now, now.Add(time.Minute)), store.ErrNotPending)
	must(t, s.ReleasePackage(ctx, "C2"))
	must(t, s.ClaimPackage(ctx, "C2", now, now.Add(time.Minute)))
	// A stale claim can be taken over.
	must(t, s.ClaimPackage(ctx, "C2", now.Add(2*time.Minute), now.Add(3*time.Minute)))
	must(t, s.CompletePickUp(ctx, "C2", "rec-1", now))
	wantErr(t, s.ClaimPackage(ctx, "C2", now.Add(time.Hour), now.Add(2*time.Hour)), store.ErrNotPending)
	wantErr(t, s.CompletePickUp(ctx, "C2", "rec-1", now), store.ErrNotPending)
	got, err = s.GetPackage(ctx, "C2")
	must(t, err)
	if got.State != store.PackagePickedUp || got.RecordID != "rec-1" || len(got.Ciphertext) != 0 {
		t.Fatalf("picked-up package = %+v", got)
	}
	_, err = s.TakePackageTry(ctx, "C2", 3)
	wantErr(t, err, store.ErrNotPending)

	// Allocate, then fill once.
	alloc := newPkg(t, s, "C3", appA, "", store.PackageAllocated)
	alloc.DataXML, alloc.Ciphertext = nil, nil
	must(t, s.CreatePackage(ctx, alloc))
	fill := p
	fill.IdentityCode, fill.ExternalID = "C3", "ext-3"
	wantErr(t, func() error { f := fill; f.AppID = appB; return s.FillPackage(ctx, f) }(), store.ErrNotFound)
	must(t, s.FillPackage(ctx, fill))
	wantErr(t, s.FillPackage(ctx, fill), store.ErrNotPending)
	got, err = s.GetPackage(ctx, "C3")
	must(t, err)
	if got.State != store.PackagePending || got.ExternalID != "ext-3" {
		t.Fatalf("filled package = %+v", got)
	}

	// External id updates, by code and by old id.
	n, err := s.UpdateExternalID(ctx, appA, "C3", "", "ext-4")
	must(t, err)
	if n != 1 {
		t.Fatalf("UpdateExternalID by code changed %d", n)
	}
	n, err = s.UpdateExternalID(ctx, appB, "", "ext-4", "x")
	must(t, err)
	if n != 0 {
		t.Fatalf("another app changed %d", n)
	}

	// Expiry listing and deletion of pending packages only.
	exp, err := s.ExpiredPackages(ctx, t0.Add(29*24*time.Hour))
	must(t, err)
	if len(exp) != 2 { // C1 and C3; C2 is picked up
		t.Fatalf("expired = %d packages", len(exp))
	}
	n, _, err = s.DeletePendingPackages(ctx, appA, "", "ext-1")
	must(t, err)
	if n != 1 { // C1 (C2 shares the id but is picked up)
		t.Fatalf("deleted %d", n)
	}
	_, err = s.GetPackage(ctx, "C1")
	wantErr(t, err, store.ErrNotFound)
	if _, err := s.GetPackage(ctx, "C2"); err != nil {
		t.Fatal(err)
	}
}

func testPackageBlobs(t *testing.T, s store.Store) {
	ctx := context.Background()
	seedApps(t, s)
	b := store.PackageBlob{ID: "pb-1", AppID: appA, State: store.BlobUploading, PreChunkSize: 64, PostChunkSize: 96, MaxSize: 1000, Total: -1, Created: t0}
	must(t, s.CreatePackageBlob(ctx, b))
	wantErr(t, s.CreatePackageBlob(ctx, b), store.ErrExists)
	blk := store.Block{Index: 0, Length: 96, Hash: sha256.Sum256([]byte("x"))}
	must(t, s.PutPackageBlock(ctx, "pb-1", blk))
	must(t, s.PutPackageBlock(ctx, "pb-1", blk))
	other := blk
	other.Hash[0] ^= 1
	wantErr(t, s.PutPackageBlock(ctx, "pb-1", other), store.ErrConflict)
	must(t, s.PutPackageBlock(ctx, "pb-1", store.Block{Index: 1, Length: 32, Hash: blk.Hash}))
	must(t, s.SetPackageBlobTotal(ctx, "pb-1", 128))
	wantErr(t, s.SetPackageBlobTotal(ctx, "pb-1", 129), store.ErrConflict)
	blocks, err := s.PackageBlocks(ctx, "pb-1", 0, -1)
	must(t, err)
	if len(blocks) != 2 || blocks[1].Length != 32 {
		t.Fatalf("blocks = %+v", blocks)
	}

	// An incomplete blob cannot go into a package.
	must(t, s.ReserveIdentityCode(ctx, "P1", t0))
	p := store.ConnectPackage{IdentityCode: "P1", AppID: appA, ExternalID: "e", FriendlyName: "f", Question: "q",
		State: store.PackagePending, Created: t0, Expires: t0.Add(time.Hour), BlobIDs: []string{"pb-1"}}
	wantErr(t, s.CreatePackage(ctx, p), store.ErrPackageBlobUnavailable)
	must(t, s.CompletePackageBlob(ctx, "pb-1", 128, t0))
	must(t, s.CompletePackageBlob(ctx, "pb-1", 128, t0))
	un, err := s.UnreferencedPackageBlobs(ctx, t0.Add(time.Second))
	must(t, err)
	if len(un) != 1 {
		t.Fatalf("unreferenced = %d", len(un))
	}
	// Another application cannot use it.
	q := p
	q.AppID = appB
	wantErr(t, s.CreatePackage(ctx, q), store.ErrPackageBlobUnavailable)
	must(t, s.CreatePackage(ctx, p))
	got, err := s.GetPackage(ctx, "P1")
	must(t, err)
	if len(got.BlobIDs) != 1 || got.BlobIDs[0] != "pb-1" {
		t.Fatalf("BlobIDs = %v", got.BlobIDs)
	}
	gb, err := s.GetPackageBlob(ctx, "pb-1")
	must(t, err)
	if gb.IdentityCode != "P1" || gb.State != store.BlobComplete || gb.Size != 128 {
		t.Fatalf("blob = %+v", gb)
	}
	un, err = s.UnreferencedPackageBlobs(ctx, t0.Add(time.Second))
	must(t, err)
	if len(un) != 0 {
		t.Fatalf("referenced blob listed as unreferenced")
	}
	_, ids, err := s.DeletePendingPackages(ctx, appA, "P1", "")
	must(t, err)
	if len(ids) != 1 || ids[0] != "pb-1" {
		t.Fatalf("deleted blob ids = %v", ids)
	}
	_, err = s.GetPackageBlob(ctx, "pb-1")
	wantErr(t, err, store.ErrNotFound)
}

func newRequest(t *testing.T, s store.Store, code, app, ext string) store.ConnectRequest {
	t.Helper()
	must(t, s.ReserveIdentityCode(context.Background(), code, t0))
	return store.ConnectRequest{IdentityCode: code, AppID: app, ExternalID: ext, FriendlyName: "Bob", Question: "Pet?",
		AnswerHash: "$argon2id$hash", Created: t0, Expires: t0.Add(28 * 24 * time.Hour)}
}

func testConnectRequests(t *testing.T, s store.Store) {
	ctx := context.Background()
	seedApps(t, s)
	seedRecord(t, s, "rec-1")
	r := newRequest(t, s, "R1", appA, "ext-1")
	must(t, s.CreateConnectRequest(ctx, r))
	wantErr(t, s.CreateConnectRequest(ctx, newRequest(t, s, "R2", appA, "ext-1")), store.ErrPendingExists)
	must(t, s.CreateConnectRequest(ctx, newRequest(t, s, "R3", appB, "ext-1")))
	got, err := s.GetConnectRequest(ctx, "R1")
	must(t, err)
	if got.State != store.ConnectPending || got.AnswerHash != r.AnswerHash || got.Question != "Pet?" {
		t.Fatalf("GetConnectRequest = %+v", got)
	}
	n, err := s.TakeConnectTry(ctx, "R1", 3)
	must(t, err)
	if n != 1 {
		t.Fatalf("wrong answers = %d", n)
	}
	testConcurrentTries(t, "R3", func(max int) (int, error) { return s.TakeConnectTry(ctx, "R3", max) })
	must(t, s.ReturnConnectTry(ctx, "R3"))
	if got, err := s.GetConnectRequest(ctx, "R3"); err != nil || got.WrongAnswers != 2 {
		t.Fatalf("after ReturnConnectTry: %+v, %v; want 2 wrong answers", got, err)
	}
	v, err := s.ValidateConnectRequest(ctx, "R1", "person-1", "rec-1", t0.Add(time.Hour))
	must(t, err)
	if v.State != store.ConnectValidated || v.RecordID != "rec-1" || !v.Authorized.Equal(t0.Add(time.Hour)) {
		t.Fatalf("validated = %+v", v)
	}
	// Another person cannot take over a validated request; the same one may re-use it.
	_, err = s.ValidateConnectRequest(ctx, "R1", "person-2", "rec-1", t0.Add(2*time.Hour))
	wantErr(t, err, store.ErrNotPending)
	if _, err := s.ValidateConnectRequest(ctx, "R1", "person-1", "rec-1", t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	// Validated: no longer pending, so a new request for the id is fine
	// and the validated one cannot be deleted as pending.
	wantErr(t, s.DeletePendingConnectRequest(ctx, appA, "ext-1"), store.ErrNotFound)
	must(t, s.CreateConnectRequest(ctx, newRequest(t, s, "R4", appA, "ext-1")))
	must(t, s.DeletePendingConnectRequest(ctx, appA, "ext-1"))
	_, err = s.GetConnectRequest(ctx, "R4")
	wantErr(t, err, store.ErrNotFound)

	// UpdateExternalID cannot create a second pending request for an id.
	must(t, s.CreateConnectRequest(ctx, newRequest(t, s, "R5", appA, "ext-5")))
	must(t, s.CreateConnectRequest(ctx, newRequest(t, s, "R6", appA, "ext-6")))
	_, err = s.UpdateExternalID(ctx, appA, "R6", "", "ext-5")
	wantErr(t, err, store.ErrPendingExists)

	must(t, s.DeleteConnectRequestsBefore(ctx, t0.Add(3*time.Hour)))
	_, err = s.GetConnectRequest(ctx, "R1")
	wantErr(t, err, store.ErrNotFound)
}

func testAuthorizedPaging(t *testing.T, s store.Store) {
	ctx := context.Background()
	seedApps(t, s)
	seedRecord(t, s, "rec-1")
	at := t0.Add(time.Hour)
	for i := range 5 {
		code := string(rune('A'+i)) + "-code"
		must(t, s.CreateConnectRequest(ctx, newRequest(t, s, code, appA, code)))
		// All at the same instant: the store must still order them uniquely.
		if _, err := s.ValidateConnectRequest(ctx, code, "p", "rec-1", at); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	since := time.Time{}
	for page := 0; page < 10; page++ {
		got, err := s.AuthorizedConnectRequests(ctx, store.AuthorizedQuery{AppID: appA, Since: since, Limit: 3})
		must(t, err)
		if len(got) < 3 {
			for _, r := range got {
				seen[r.IdentityCode] = true
			}
			break
		}
		// The caller pages with the time of the item after the page.
		for _, r := range got[:2] {
			if seen[r.IdentityCode] {
				t.Fatalf("%s returned twice", r.IdentityCode)
			}
			seen[r.IdentityCode] = true
		}
		since = got[2].Authorized
	}
	if len(seen) != 5 {
		t.Fatalf("paging saw %d of 5 requests", len(seen))
	}
	got, err := s.AuthorizedConnectRequests(ctx, store.AuthorizedQuery{AppID: appA, NotBefore: at.Add(time.Second)})
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("retention cut-off ignored: %d", len(got))
	}
	got, err = s.AuthorizedConnectRequests(ctx, store.AuthorizedQuery{AppID: appB})
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("another app's requests returned")
	}
}

func testWebSessionsAudit(t *testing.T, s store.Store) {
	ctx := context.Background()
	seedRecord(t, s, "rec-1")
	rec, err := s.GetRecord(ctx, "rec-1")
	must(t, err)
	h := sha256.Sum256([]byte("cookie"))
	ws := store.WebSession{TokenHash: h, PersonID: rec.PersonID, CSRF: "csrf", Created: t0, Expires: t0.Add(time.Hour)}
	must(t, s.CreateWebSession(ctx, ws))
	got, err := s.WebSession(ctx, h)
	must(t, err)
	if got.PersonID != rec.PersonID || got.CSRF != "csrf" || !got.Expires.Equal(ws.Expires) {
		t.Fatalf("WebSession = %+v", got)
	}
	must(t, s.DeleteExpiredWebSessions(ctx, t0.Add(2*time.Hour)))
	_, err = s.WebSession(ctx, h)
	wantErr(t, err, store.ErrNotFound)
	must(t, s.CreateWebSession(ctx, ws))
	must(t, s.DeleteWebSession(ctx, h))
	_, err = s.WebSession(ctx, h)
	wantErr(t, err, store.ErrNotFound)

	for i, a := range []string{"pickup", "view", "download"} {
		must(t, s.AddAudit(ctx, store.AuditEvent{At: t0.Add(time.Duration(i) * time.Second), Action: a, PersonID: rec.PersonID, RecordID: "rec-1"}))
	}
	ev, err := s.Audits(ctx, rec.PersonID, 2)
	must(t, err)
	if len(ev) != 2 || ev[0].Action != "download" || ev[1].Action != "view" {
		t.Fatalf("Audits = %+v", ev)
	}

	must(t, s.CreateApp(ctx, store.App{ID: appA, Name: "a", Created: t0}))
	_, err = s.AppSuccessMessage(ctx, appA)
	wantErr(t, err, store.ErrNotFound)
	must(t, s.SetAppSuccessMessage(ctx, appA, "one"))
	must(t, s.SetAppSuccessMessage(ctx, appA, "two"))
	m, err := s.AppSuccessMessage(ctx, appA)
	must(t, err)
	if m != "two" {
		t.Fatalf("message = %q", m)
	}
}

// testConcurrentTries takes tries (max 3) from 10 goroutines at once:
// exactly 3 must succeed, with counts 1, 2 and 3, and the rest fail with
// ErrNoTriesLeft.
func testConcurrentTries(t *testing.T, code string, take func(max int) (int, error)) {
	t.Helper()
	const max, n = 3, 10
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		counts []int
		errs   []error
	)
	for range n {
		wg.Go(func() {
			k, err := take(max)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			counts = append(counts, k)
		})
	}
	wg.Wait()
	slices.Sort(counts)
	if !slices.Equal(counts, []int{1, 2, 3}) {
		t.Fatalf("%s: tries taken with counts %v (errors %v), want [1 2 3]", code, counts, errs)
	}
	for _, err := range errs {
		wantErr(t, err, store.ErrNoTriesLeft)
	}
}

// testPickUpThings checks that a pick-up writes its things and the
// picked-up state together, only under its own claim: a pick-up whose
// claim was taken over, or a second one, writes nothing.
func testPickUpThings(t *testing.T, s store.Store) {
	ctx := context.Background()
	seedApps(t, s)
	seedRecord(t, s, "rec-1")
	must(t, s.CreatePackage(ctx, newPkg(t, s, "P1", appA, "ext-1", store.PackagePending)))
	things := func(ids ...string) []store.ThingWrite {
		var ws []store.ThingWrite
		for _, id := range ids {
			ws = append(ws, store.ThingWrite{Thing: thing("rec-1", id, "v1", "note", t0)})
		}
		return ws
	}
	count := func() int {
		got, err := s.QueryThings(ctx, store.ThingQuery{RecordID: "rec-1"})
		must(t, err)
		return len(got)
	}
	now := t0.Add(time.Hour)
	stale, fresh := now.Add(time.Minute), now.Add(3*time.Minute)
	must(t, s.ClaimPackage(ctx, "P1", now, stale))
	// The first pick-up stalls; its claim goes stale and is taken over.
	must(t, s.ClaimPackage(ctx, "P1", now.Add(2*time.Minute), fresh))
	wantErr(t, s.PickUpThings(ctx, "P1", stale, "rec-1", now, things("a1", "a2")), store.ErrNotPending)
	if n := count(); n != 0 {
		t.Fatalf("a pick-up under a lost claim wrote %d things", n)
	}
	// Things that cannot be written leave the package claimed.
	must(t, s.PutThings(ctx, things("dup")))
	wantErr(t, s.PickUpThings(ctx, "P1", fresh, "rec-1", now, things("b1", "dup")), store.ErrExists)
	if got, err := s.GetPackage(ctx, "P1"); err != nil || got.State != store.PackageClaimed {
		t.Fatalf("after a failed pick-up: %+v, %v; want claimed", got.State, err)
	}
	must(t, s.PickUpThings(ctx, "P1", fresh, "rec-1", now, things("b1", "b2")))
	if n := count(); n != 3 {
		t.Fatalf("%d things in the record, want 3", n)
	}
	got, err := s.GetPackage(ctx, "P1")
	must(t, err)
	if got.State != store.PackagePickedUp || got.RecordID != "rec-1" || len(got.Ciphertext) != 0 {
		t.Fatalf("picked-up package = %+v", got)
	}
	wantErr(t, s.PickUpThings(ctx, "P1", fresh, "rec-1", now, things("c1")), store.ErrNotPending)
	if n := count(); n != 3 {
		t.Fatalf("a second pick-up wrote things: %d in the record", n)
	}
}
