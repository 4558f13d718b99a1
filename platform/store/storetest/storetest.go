// Package storetest is the conformance suite of store.Store: every backend
// runs Run against a fresh, empty store and must pass all of it.
package storetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"dicomgate/platform/store"
)

// Run runs the conformance suite. newStore returns a fresh, empty store for
// each subtest (the suite closes it).
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Apps", testApps},
		{"Sessions", testSessions},
		{"PersonsRecords", testPersonsRecords},
		{"Authorizations", testAuthorizations},
		{"ThingsCreateUpdate", testThingsCreateUpdate},
		{"ThingsAtomic", testThingsAtomic},
		{"ThingsQuery", testThingsQuery},
		{"ThingsQuerySharedKey", testThingsQuerySharedKey},
		{"Blobs", testBlobs},
		{"BlobGC", testBlobGC},
		{"BlobsInOneCommit", testBlobsInOneCommit},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { s.Close() })
			tc.fn(t, s)
		})
	}
	RunConnect(t, newStore)
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("err = %v, want %v", err, target)
	}
}

func testApps(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := store.App{ID: "11111111-1111-1111-1111-111111111111", Name: "gateway", Created: t0}
	must(t, s.CreateApp(ctx, a))
	wantErr(t, s.CreateApp(ctx, a), store.ErrExists)
	got, err := s.GetApp(ctx, a.ID)
	must(t, err)
	if got != a {
		t.Fatalf("GetApp = %+v, want %+v", got, a)
	}
	_, err = s.GetApp(ctx, "22222222-2222-2222-2222-222222222222")
	wantErr(t, err, store.ErrNotFound)

	c := store.AppCert{AppID: a.ID, Thumbprint: "ABCDEF", DER: []byte{1, 2, 3}, Added: t0}
	must(t, s.AddAppCert(ctx, c))
	wantErr(t, s.AddAppCert(ctx, c), store.ErrExists)
	gc, err := s.AppCert(ctx, a.ID, "ABCDEF")
	must(t, err)
	if string(gc.DER) != string(c.DER) || !gc.Added.Equal(t0) {
		t.Fatalf("AppCert = %+v", gc)
	}
	_, err = s.AppCert(ctx, a.ID, "OTHER")
	wantErr(t, err, store.ErrNotFound)
}

func testSessions(t *testing.T, s store.Store) {
	ctx := context.Background()
	must(t, s.CreateApp(ctx, store.App{ID: "app", Name: "a", Created: t0}))
	live := store.Session{TokenHash: sha256.Sum256([]byte("live")), AppID: "app", SharedSecret: []byte("k1"), Created: t0, Expires: t0.Add(time.Hour)}
	old := store.Session{TokenHash: sha256.Sum256([]byte("old")), AppID: "app", SharedSecret: []byte("k2"), Created: t0, Expires: t0.Add(time.Minute)}
	must(t, s.CreateSession(ctx, live))
	must(t, s.CreateSession(ctx, old))
	got, err := s.Session(ctx, live.TokenHash)
	must(t, err)
	if got.AppID != "app" || string(got.SharedSecret) != "k1" || !got.Expires.Equal(live.Expires) {
		t.Fatalf("Session = %+v", got)
	}
	must(t, s.DeleteExpiredSessions(ctx, t0.Add(30*time.Minute)))
	_, err = s.Session(ctx, old.TokenHash)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.Session(ctx, live.TokenHash)
	must(t, err)
}

func seedRecord(t *testing.T, s store.Store, recordID string) {
	t.Helper()
	ctx := context.Background()
	pid := "person-" + recordID
	must(t, s.CreatePerson(ctx, store.Person{ID: pid, Login: "login-" + recordID, Name: "P", PasswordHash: "$argon2id$x", Created: t0}))
	must(t, s.CreateRecord(ctx, store.Record{ID: recordID, PersonID: pid, Name: "R", Relationship: "self", Created: t0}))
}

func testPersonsRecords(t *testing.T, s store.Store) {
	ctx := context.Background()
	p := store.Person{ID: "p1", Login: "alice", Name: "Alice", PasswordHash: "$argon2id$v=19$…", Created: t0}
	must(t, s.CreatePerson(ctx, p))
	wantErr(t, s.CreatePerson(ctx, store.Person{ID: "p2", Login: "alice", Created: t0}), store.ErrExists)
	got, err := s.PersonByLogin(ctx, "alice")
	must(t, err)
	if got != p {
		t.Fatalf("PersonByLogin = %+v", got)
	}
	if got, err = s.GetPerson(ctx, "p1"); err != nil || got != p {
		t.Fatalf("GetPerson = %+v, %v", got, err)
	}
	_, err = s.PersonByLogin(ctx, "bob")
	wantErr(t, err, store.ErrNotFound)

	self := store.Record{ID: "r1", PersonID: "p1", Name: "Alice", Relationship: "self", Created: t0}
	child := store.Record{ID: "r2", PersonID: "p1", Name: "Tom", Relationship: "child", Created: t0.Add(time.Second)}
	must(t, s.CreateRecord(ctx, self))
	must(t, s.CreateRecord(ctx, child))
	rs, err := s.RecordsOfPerson(ctx, "p1")
	must(t, err)
	if len(rs) != 2 || rs[0] != self || rs[1] != child {
		t.Fatalf("RecordsOfPerson = %+v", rs)
	}
	_, err = s.GetRecord(ctx, "r3")
	wantErr(t, err, store.ErrNotFound)
}

func testAuthorizations(t *testing.T, s store.Store) {
	ctx := context.Background()
	must(t, s.CreateApp(ctx, store.App{ID: "app", Name: "a", Created: t0}))
	seedRecord(t, s, "r1")
	ok, err := s.IsAuthorized(ctx, "app", "r1")
	must(t, err)
	if ok {
		t.Fatal("authorized before Authorize")
	}
	must(t, s.Authorize(ctx, store.Authorization{AppID: "app", RecordID: "r1", Granted: t0}))
	must(t, s.Authorize(ctx, store.Authorization{AppID: "app", RecordID: "r1", Granted: t0}))
	if ok, err = s.IsAuthorized(ctx, "app", "r1"); err != nil || !ok {
		t.Fatalf("IsAuthorized = %v, %v", ok, err)
	}
	must(t, s.Deauthorize(ctx, "app", "r1"))
	if ok, err = s.IsAuthorized(ctx, "app", "r1"); err != nil || ok {
		t.Fatalf("IsAuthorized after Deauthorize = %v, %v", ok, err)
	}
}

func newBlob(t *testing.T, s store.Store, id, recordID string, created time.Time) {
	t.Helper()
	must(t, s.CreateBlob(context.Background(), store.Blob{ID: id, RecordID: recordID, AppID: "app", State: store.BlobUploading,
		BlockSize: 4, MaxSize: 100, Total: -1, Created: created}))
}

func thing(recordID, id, version, typeID string, eff time.Time) store.Thing {
	return store.Thing{RecordID: recordID, ID: id, VersionStamp: version, TypeID: typeID, State: "Active",
		EffDate: eff, Created: t0, CreatedApp: "app", Updated: t0, UpdatedApp: "app",
		DataXML: []byte("<data-xml><x>" + id + "</x></data-xml>")}
}

func testThingsCreateUpdate(t *testing.T, s store.Store) {
	ctx := context.Background()
	seedRecord(t, s, "r1")
	newBlob(t, s, "b1", "r1", t0)
	newBlob(t, s, "b2", "r1", t0)
	th := thing("r1", "t1", "v1", "type-a", t0)
	th.Flags = 7
	th.Tags = "x,y"
	th.SignatureInfo = []byte("<signature-info/>")
	th.Blobs = []store.ThingBlob{{Name: "", ContentType: "image/jpeg", BlobID: "b1", ContentLength: 10, HashInfo: []byte("<hash-info/>")}}
	th.Keys = map[string]string{"root/uid": "1.2.3"}
	must(t, s.PutThings(ctx, []store.ThingWrite{{Thing: th}}))
	wantErr(t, s.PutThings(ctx, []store.ThingWrite{{Thing: th}}), store.ErrExists)

	got, err := s.QueryThings(ctx, store.ThingQuery{RecordID: "r1", IDs: []string{"t1"}})
	must(t, err)
	if len(got) != 1 {
		t.Fatalf("got %d things", len(got))
	}
	g := got[0]
	if g.VersionStamp != "v1" || g.Flags != 7 || g.Tags != "x,y" || string(g.DataXML) != string(th.DataXML) ||
		string(g.SignatureInfo) != "<signature-info/>" || !g.EffDate.Equal(t0) || g.Keys["root/uid"] != "1.2.3" ||
		len(g.Blobs) != 1 || g.Blobs[0].BlobID != "b1" || g.Blobs[0].ContentLength != 10 || string(g.Blobs[0].HashInfo) != "<hash-info/>" {
		t.Fatalf("stored thing = %+v", g)
	}

	up := th
	up.VersionStamp = "v2"
	up.Blobs = []store.ThingBlob{{Name: "", ContentType: "image/jpeg", BlobID: "b2", ContentLength: 11}}
	up.Keys = map[string]string{"root/uid": "4.5.6"}
	wantErr(t, s.PutThings(ctx, []store.ThingWrite{{Thing: up, PrevVersion: "stale"}}), store.ErrVersionMismatch)
	must(t, s.PutThings(ctx, []store.ThingWrite{{Thing: up, PrevVersion: "v1"}}))
	wantErr(t, s.PutThings(ctx, []store.ThingWrite{{Thing: up, PrevVersion: "v1"}}), store.ErrVersionMismatch)
	missing := thing("r1", "nope", "v2", "type-a", t0)
	wantErr(t, s.PutThings(ctx, []store.ThingWrite{{Thing: missing, PrevVersion: "v1"}}), store.ErrNotFound)

	got, err = s.QueryThings(ctx, store.ThingQuery{RecordID: "r1", KeyPath: "root/uid", KeyValue: "4.5.6"})
	must(t, err)
	if len(got) != 1 || got[0].VersionStamp != "v2" || got[0].Blobs[0].BlobID != "b2" {
		t.Fatalf("after update: %+v", got)
	}
	got, err = s.QueryThings(ctx, store.ThingQuery{RecordID: "r1", KeyPath: "root/uid", KeyValue: "1.2.3"})
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("old key still matches: %+v", got)
	}
}

func testThingsAtomic(t *testing.T, s store.Store) {
	ctx := context.Background()
	seedRecord(t, s, "r1")
	must(t, s.PutThings(ctx, []store.ThingWrite{{Thing: thing("r1", "t1", "v1", "a", t0)}}))
	// The second write fails, so the first (a new thing) must not stay.
	err := s.PutThings(ctx, []store.ThingWrite{
		{Thing: thing("r1", "t2", "v1", "a", t0)},
		{Thing: thing("r1", "t1", "v2", "a", t0), PrevVersion: "wrong"},
	})
	wantErr(t, err, store.ErrVersionMismatch)
	got, err := s.QueryThings(ctx, store.ThingQuery{RecordID: "r1"})
	must(t, err)
	if len(got) != 1 || got[0].ID != "t1" || got[0].VersionStamp != "v1" {
		t.Fatalf("after failed batch: %+v", got)
	}
}

func testThingsQuery(t *testing.T, s store.Store) {
	ctx := context.Background()
	seedRecord(t, s, "r1")
	seedRecord(t, s, "r2")
	var ws []store.ThingWrite
	for i := range 20 {
		typ := "a"
		if i%2 == 1 {
			typ = "b"
		}
		th := thing("r1", fmt.Sprintf("t%02d", i), "v", typ, t0.Add(time.Duration(i)*time.Hour))
		if i == 5 {
			th.State = "Deleted"
		}
		th.Keys = map[string]string{"root/uid": fmt.Sprintf("uid-%d", i%4)}
		ws = append(ws, store.ThingWrite{Thing: th})
	}
	ws = append(ws, store.ThingWrite{Thing: thing("r2", "other", "v", "a", t0)})
	must(t, s.PutThings(ctx, ws))

	ids := func(ts []store.Thing) []string {
		var out []string
		for _, t := range ts {
			out = append(out, t.ID)
		}
		return out
	}
	tests := []struct {
		name string
		q    store.ThingQuery
		want []string
	}{
		{"type a active", store.ThingQuery{RecordID: "r1", TypeIDs: []string{"a"}, States: []string{"Active"}},
			[]string{"t18", "t16", "t14", "t12", "t10", "t08", "t06", "t04", "t02", "t00"}},
		{"deleted", store.ThingQuery{RecordID: "r1", States: []string{"Deleted"}}, []string{"t05"}},
		{"key", store.ThingQuery{RecordID: "r1", KeyPath: "root/uid", KeyValue: "uid-1", TypeIDs: []string{"b"}},
			[]string{"t17", "t13", "t09", "t05", "t01"}},
		{"limit", store.ThingQuery{RecordID: "r1", Limit: 3}, []string{"t19", "t18", "t17"}},
		{"ids", store.ThingQuery{RecordID: "r1", IDs: []string{"t03", "t07", "other"}}, []string{"t07", "t03"}},
		{"other record", store.ThingQuery{RecordID: "r2"}, []string{"other"}},
		{"no match", store.ThingQuery{RecordID: "r1", KeyPath: "root/uid", KeyValue: "zzz"}, nil},
	}
	for _, tc := range tests {
		got, err := s.QueryThings(ctx, tc.q)
		must(t, err)
		if fmt.Sprint(ids(got)) != fmt.Sprint(tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, ids(got), tc.want)
		}
	}
}

// testThingsQuerySharedKey covers a key value shared by more things than a
// backend may turn into an id list.
func testThingsQuerySharedKey(t *testing.T, s store.Store) {
	ctx := context.Background()
	seedRecord(t, s, "r1")
	const n = 700
	var ws []store.ThingWrite
	for i := range n {
		th := thing("r1", fmt.Sprintf("t%04d", i), "v", "a", t0.Add(time.Duration(i)*time.Second))
		th.Keys = map[string]string{"root/kind": "shared", "root/uid": fmt.Sprint(i)}
		if i%2 == 1 {
			th.TypeID = "b"
		}
		ws = append(ws, store.ThingWrite{Thing: th})
	}
	must(t, s.PutThings(ctx, ws))
	got, err := s.QueryThings(ctx, store.ThingQuery{RecordID: "r1", KeyPath: "root/kind", KeyValue: "shared", TypeIDs: []string{"a"}})
	must(t, err)
	if len(got) != n/2 || got[0].ID != "t0698" || got[len(got)-1].ID != "t0000" {
		t.Fatalf("shared key: %d things, first %s", len(got), got[0].ID)
	}
	got, err = s.QueryThings(ctx, store.ThingQuery{RecordID: "r1", KeyPath: "root/kind", KeyValue: "shared", IDs: []string{"t0005", "t0006"}, Limit: 1})
	must(t, err)
	if len(got) != 1 || got[0].ID != "t0006" {
		t.Fatalf("shared key with ids and limit: %+v", got)
	}
	got, err = s.QueryThings(ctx, store.ThingQuery{RecordID: "r1", KeyPath: "root/uid", KeyValue: "42", IDs: []string{"t0041"}})
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("key and disjoint ids: %+v", got)
	}
}

func testBlobs(t *testing.T, s store.Store) {
	ctx := context.Background()
	seedRecord(t, s, "r1")
	newBlob(t, s, "b1", "r1", t0)
	b, err := s.GetBlob(ctx, "b1")
	must(t, err)
	if b.State != store.BlobUploading || b.Total != -1 || b.BlockSize != 4 || b.MaxSize != 100 || b.Hash != nil {
		t.Fatalf("GetBlob = %+v", b)
	}
	_, err = s.GetBlob(ctx, "nope")
	wantErr(t, err, store.ErrNotFound)

	h0, h1 := sha256.Sum256([]byte("abcd")), sha256.Sum256([]byte("ef"))
	must(t, s.PutBlock(ctx, "b1", store.Block{Index: 1, Length: 2, Hash: h1}))
	must(t, s.PutBlock(ctx, "b1", store.Block{Index: 0, Length: 4, Hash: h0}))
	must(t, s.PutBlock(ctx, "b1", store.Block{Index: 0, Length: 4, Hash: h0}))
	wantErr(t, s.PutBlock(ctx, "b1", store.Block{Index: 0, Length: 4, Hash: h1}), store.ErrConflict)
	// A block sent again while its first send is still being recorded (a
	// retried chunk) is no error either.
	for idx := int64(2); idx < 22; idx++ {
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Go(func() { errs[i] = s.PutBlock(ctx, "b1", store.Block{Index: idx, Length: 4, Hash: h0}) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("concurrent send %d of block %d: %v", i, idx, err)
			}
		}
	}
	blocks, err := s.Blocks(ctx, "b1", 0, -1)
	must(t, err)
	if len(blocks) != 22 || blocks[0].Index != 0 || blocks[0].Hash != h0 || blocks[1].Length != 2 || blocks[21].Hash != h0 {
		t.Fatalf("Blocks = %+v", blocks)
	}
	blocks, err = s.Blocks(ctx, "b1", 1, 2)
	must(t, err)
	if len(blocks) != 1 || blocks[0].Index != 1 || blocks[0].Hash != h1 {
		t.Fatalf("Blocks(1, 2) = %+v", blocks)
	}

	must(t, s.SetBlobTotal(ctx, "b1", 6))
	must(t, s.SetBlobTotal(ctx, "b1", 6))
	wantErr(t, s.SetBlobTotal(ctx, "b1", 7), store.ErrConflict)

	must(t, s.CompleteBlob(ctx, "b1", 6, []byte("root"), t0.Add(time.Minute)))
	must(t, s.CompleteBlob(ctx, "b1", 6, []byte("root"), t0.Add(time.Minute)))
	wantErr(t, s.CompleteBlob(ctx, "b1", 7, []byte("other"), t0), store.ErrConflict)
	b, err = s.GetBlob(ctx, "b1")
	must(t, err)
	if b.State != store.BlobComplete || b.Size != 6 || string(b.Hash) != "root" || b.Total != 6 || !b.Completed.Equal(t0.Add(time.Minute)) {
		t.Fatalf("completed blob = %+v", b)
	}
}

// lazyBlobStore is the platform server's optional interface for writing a
// streamed blob with fewer syncs (the server keeps its own copy).
type lazyBlobStore interface {
	CreateBlobLazily(ctx context.Context, b store.Blob) error
	PutChunk(ctx context.Context, blobID string, total int64, blocks []store.Block, done *store.BlobCompletion) error
}

func testBlobsInOneCommit(t *testing.T, st store.Store) {
	s, ok := st.(lazyBlobStore)
	if !ok {
		t.Skip("store writes blobs one commit per step")
	}
	ctx := context.Background()
	seedRecord(t, st, "r1")
	for _, id := range []string{"b1", "b2"} {
		must(t, s.CreateBlobLazily(ctx, store.Blob{ID: id, RecordID: "r1", AppID: "app", State: store.BlobUploading,
			BlockSize: 4, MaxSize: 100, Total: -1, Created: t0}))
	}
	wantErr(t, s.CreateBlobLazily(ctx, store.Blob{ID: "b1", RecordID: "r1", AppID: "app", State: store.BlobUploading,
		BlockSize: 4, MaxSize: 100, Total: -1, Created: t0}), store.ErrExists)
	if b, err := st.GetBlob(ctx, "b1"); err != nil || b.State != store.BlobUploading || b.Total != -1 {
		t.Fatalf("GetBlob = %+v, %v", b, err)
	}

	h0, h1 := sha256.Sum256([]byte("abcd")), sha256.Sum256([]byte("ef"))
	b0, b1 := store.Block{Index: 0, Length: 4, Hash: h0}, store.Block{Index: 1, Length: 2, Hash: h1}
	done := &store.BlobCompletion{Size: 6, Hash: []byte("root"), At: t0.Add(time.Minute)}
	// A whole blob at once: total, blocks and completion.
	must(t, s.PutChunk(ctx, "b1", 6, []store.Block{b0, b1}, done))
	must(t, s.PutChunk(ctx, "b1", 6, []store.Block{b0, b1}, done)) // sent again
	b, err := st.GetBlob(ctx, "b1")
	must(t, err)
	if b.State != store.BlobComplete || b.Size != 6 || string(b.Hash) != "root" || b.Total != 6 || !b.Completed.Equal(t0.Add(time.Minute)) {
		t.Fatalf("completed blob = %+v", b)
	}
	if blocks, err := st.Blocks(ctx, "b1", 0, -1); err != nil || len(blocks) != 2 || blocks[1] != b1 {
		t.Fatalf("Blocks = %+v, %v", blocks, err)
	}
	wantErr(t, s.PutChunk(ctx, "b1", -1, nil, &store.BlobCompletion{Size: 7, Hash: []byte("x"), At: t0}), store.ErrConflict)

	// Chunk by chunk; a conflict records nothing of its chunk.
	must(t, s.PutChunk(ctx, "b2", -1, []store.Block{b0}, nil))
	wantErr(t, s.PutChunk(ctx, "b2", 6, []store.Block{b1, {Index: 0, Length: 4, Hash: h1}}, nil), store.ErrConflict)
	if b, err := st.GetBlob(ctx, "b2"); err != nil || b.Total != -1 {
		t.Fatalf("after a conflict, GetBlob = %+v, %v", b, err)
	}
	if blocks, err := st.Blocks(ctx, "b2", 0, -1); err != nil || len(blocks) != 1 {
		t.Fatalf("after a conflict, Blocks = %+v, %v", blocks, err)
	}
	must(t, s.PutChunk(ctx, "b2", 6, []store.Block{b1}, nil))
	wantErr(t, s.PutChunk(ctx, "b2", 7, nil, nil), store.ErrConflict)
	must(t, s.PutChunk(ctx, "b2", -1, nil, done))
	if b, err := st.GetBlob(ctx, "b2"); err != nil || b.State != store.BlobComplete || b.Total != 6 {
		t.Fatalf("GetBlob = %+v, %v", b, err)
	}
	wantErr(t, s.PutChunk(ctx, "nope", 6, nil, nil), store.ErrNotFound)
}

func testBlobGC(t *testing.T, s store.Store) {
	ctx := context.Background()
	seedRecord(t, s, "r1")
	newBlob(t, s, "used", "r1", t0)
	newBlob(t, s, "old", "r1", t0)
	newBlob(t, s, "young", "r1", t0.Add(time.Hour))
	must(t, s.PutBlock(ctx, "old", store.Block{Index: 0, Length: 1, Hash: sha256.Sum256([]byte("x"))}))
	th := thing("r1", "t1", "v1", "a", t0)
	th.Blobs = []store.ThingBlob{{Name: "n", ContentType: "x/y", BlobID: "used", ContentLength: 1}}
	must(t, s.PutThings(ctx, []store.ThingWrite{{Thing: th}}))

	got, err := s.UnreferencedBlobs(ctx, t0.Add(time.Minute))
	must(t, err)
	if len(got) != 1 || got[0].ID != "old" {
		t.Fatalf("UnreferencedBlobs = %+v", got)
	}
	wantErr(t, s.DeleteBlob(ctx, "used"), store.ErrConflict)
	must(t, s.DeleteBlob(ctx, "old"))
	_, err = s.GetBlob(ctx, "old")
	wantErr(t, err, store.ErrNotFound)

	// Replacing the blob under the same name leaves the old one unreferenced.
	newBlob(t, s, "replacement", "r1", t0)
	th2 := th
	th2.VersionStamp = "v2"
	th2.Blobs = []store.ThingBlob{{Name: "n", ContentType: "x/y", BlobID: "replacement", ContentLength: 1}}
	must(t, s.PutThings(ctx, []store.ThingWrite{{Thing: th2, PrevVersion: "v1"}}))
	got, err = s.UnreferencedBlobs(ctx, t0.Add(2*time.Hour))
	must(t, err)
	var names []string
	for _, b := range got {
		names = append(names, b.ID)
	}
	if fmt.Sprint(names) != "[used young]" && fmt.Sprint(names) != "[young used]" {
		t.Fatalf("UnreferencedBlobs after replace = %v", names)
	}
}
