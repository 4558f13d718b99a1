package server_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"dicomgate/platform/client"
	"dicomgate/platform/dopu"
	"dicomgate/platform/server"
	"dicomgate/platform/store"
	"dicomgate/platform/thing"
	"dicomgate/platform/wire"
)

const (
	answer   = "Fluffy the Cat"
	noteType = "a5294488-f865-4ce3-92fa-187cd3b58930" // any thing type: packages carry things of any type
)

func noteThing(text string) *thing.Thing {
	t := &thing.Thing{Type: &thing.TypeID{ID: noteType}}
	t.SetData([]byte("<note><text>" + text + "</text></note>"))
	return t
}

func marshalThings(t testing.TB, things ...*thing.Thing) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, th := range things {
		x, err := th.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		b.Write(x)
	}
	return b.Bytes()
}

// personOf returns the person holding a record.
func (e *env) personOf(recordID string) string {
	e.t.Helper()
	r, err := e.store.GetRecord(context.Background(), recordID)
	if err != nil {
		e.t.Fatal(err)
	}
	return r.PersonID
}

// packageWithBlob creates a package holding a note and a thing with a
// streamed blob of data; it returns the code.
func (e *env) packageWithBlob(data []byte, ext string) string {
	e.t.Helper()
	ctx := context.Background()
	code, err := e.client.AllocatePackageID(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	key, err := dopu.NewKey(answer, dopu.HMACSHA256AES256, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	b, err := e.client.UploadPackageBlob(ctx, key, "scan.dcm", "application/dicom", bytes.NewReader(data))
	if err != nil {
		e.t.Fatal(err)
	}
	withBlob := noteThing("with blob")
	withBlob.SetBlob(b)
	pkg, err := key.Seal(marshalThings(e.t, noteThing("hello"), withBlob), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	got, err := e.client.CreateConnectPackage(ctx, client.ConnectPackage{IdentityCode: code, FriendlyName: "Alice", Question: "Pet?",
		ExternalID: ext, Package: pkg, StreamedBlobRefs: []string{b.RefURL}})
	if err != nil {
		e.t.Fatal(err)
	}
	if got != code {
		e.t.Fatalf("CreateConnectPackage answered %s for allocated %s", got, code)
	}
	return code
}

func TestIdentityCodes(t *testing.T) {
	e := newEnv(t)
	seen := map[string]bool{}
	for range 20 {
		code, err := e.client.AllocatePackageID(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(code) != 24 || strings.Count(code, "-") != 4 || strings.ContainsAny(code, "AEIOU0123456789") {
			t.Fatalf("code %q is not 5 groups of 4 consonants", code)
		}
		if seen[code] {
			t.Fatalf("code %s drawn twice", code)
		}
		seen[code] = true
	}
	for typed, want := range map[string]string{
		"bcdf ghjk lmnp qrst vwxz":    "BCDF-GHJK-LMNP-QRST-VWXZ",
		"BCDFGHJKLMNPQRSTVWXZ":        "BCDF-GHJK-LMNP-QRST-VWXZ",
		" bcdf-ghjk-lmnp-qrst-vwxz  ": "BCDF-GHJK-LMNP-QRST-VWXZ",
		"bcdf-ghjk-lmnp-qrst-vwx":     "",
		"bcdf-ghjk-lmnp-qrst-vwxa":    "",
	} {
		got, ok := server.NormalizeIdentityCode(typed)
		if got != want || ok != (want != "") {
			t.Errorf("NormalizeIdentityCode(%q) = %q, %v; want %q", typed, got, ok, want)
		}
	}
}

func TestPickUpWithStreamedBlob(t *testing.T) { testPickUp(t, newEnv(t)) }

func testPickUp(t *testing.T, e *env) {
	ctx := context.Background()
	data := pattern(3*testChunk+17, 7) // four encrypted chunks, the last short
	code := e.packageWithBlob(data, "patient-1")

	// The store holds ciphertext only.
	sp, err := e.store.GetPackage(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sp.Ciphertext, []byte("hello")) || bytes.Contains(sp.DataXML, []byte(answer)) {
		t.Fatal("package stored in the clear")
	}

	rec := e.newRecord("bob", false)
	person := e.personOf(rec)
	// Typed with spaces and in lower case.
	typed := strings.ToLower(strings.ReplaceAll(code, "-", " "))
	ch, err := e.srv.PackageChallenge(ctx, typed)
	if err != nil {
		t.Fatal(err)
	}
	if ch.FriendlyName != "Alice" || ch.Question != "Pet?" || ch.TriesLeft != 3 {
		t.Fatalf("challenge = %+v", ch)
	}
	var wa *server.WrongAnswerError
	if err := e.srv.PickUp(ctx, typed, "fluffy the dog", person, rec); !errors.As(err, &wa) || wa.TriesLeft != 2 {
		t.Fatalf("wrong answer: %v", err)
	}
	// Another person's record is refused before anything is written.
	other := e.newRecord("carol", false)
	if err := e.srv.PickUp(ctx, code, answer, person, other); !errors.Is(err, server.ErrNotYourRecord) {
		t.Fatalf("pick-up into another person's record: %v", err)
	}
	// The answer is case-insensitive.
	if err := e.srv.PickUp(ctx, typed, strings.ToUpper(answer), person, rec); err != nil {
		t.Fatal(err)
	}
	things, err := e.store.QueryThings(ctx, store.ThingQuery{RecordID: rec, TypeIDs: []string{noteType}})
	if err != nil {
		t.Fatal(err)
	}
	if len(things) != 2 {
		t.Fatalf("record has %d things, want 2", len(things))
	}
	var found bool
	for _, th := range things {
		if len(th.Blobs) == 0 {
			continue
		}
		found = true
		b := th.Blobs[0]
		if b.Name != "scan.dcm" || b.ContentType != "application/dicom" || b.ContentLength != int64(len(data)) {
			t.Fatalf("blob = %+v", b)
		}
		rc, n, err := e.srv.OpenRecordBlob(ctx, rec, b.BlobID)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if n != int64(len(data)) || !bytes.Equal(got, data) {
			t.Fatal("picked-up blob differs from the uploaded plaintext")
		}
	}
	if !found {
		t.Fatal("no thing with a blob")
	}
	// Once only.
	if err := e.srv.PickUp(ctx, code, answer, person, rec); !errors.Is(err, server.ErrPickedUp) {
		t.Fatalf("second pick-up: %v", err)
	}
	ev, err := e.store.Audits(ctx, person, 10)
	if err != nil || len(ev) != 1 || ev[0].Action != "pickup" {
		t.Fatalf("audit = %+v, %v", ev, err)
	}
}

func TestPackageLockout(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	code := e.packageWithBlob(pattern(10, 1), "p")
	rec := e.newRecord("bob", false)
	person := e.personOf(rec)
	for i, want := range []int{2, 1} {
		var wa *server.WrongAnswerError
		if err := e.srv.PickUp(ctx, code, "wrong answer", person, rec); !errors.As(err, &wa) || wa.TriesLeft != want {
			t.Fatalf("try %d: %v", i+1, err)
		}
	}
	if err := e.srv.PickUp(ctx, code, "wrong answer", person, rec); !errors.Is(err, server.ErrLocked) {
		t.Fatalf("third wrong answer: %v", err)
	}
	if err := e.srv.PickUp(ctx, code, answer, person, rec); !errors.Is(err, server.ErrLocked) {
		t.Fatalf("right answer after lock-out: %v", err)
	}
}

func TestPackageExpiry(t *testing.T) {
	for _, tc := range []struct {
		name string
		ttl  time.Duration
	}{{"default 4 weeks", 0}, {"configured 1 day", 24 * time.Hour}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *server.Config) { c.Connect.PackageTTL = tc.ttl })
			ctx := context.Background()
			code := e.packageWithBlob(pattern(10, 1), "p")
			rec := e.newRecord("bob", false)
			ttl := tc.ttl
			if ttl == 0 {
				ttl = 28 * 24 * time.Hour
			}
			e.clock.Advance(ttl - time.Second)
			if _, err := e.srv.PackageChallenge(ctx, code); err != nil {
				t.Fatalf("before expiry: %v", err)
			}
			e.clock.Advance(time.Second)
			if err := e.srv.PickUp(ctx, code, answer, e.personOf(rec), rec); !errors.Is(err, server.ErrExpired) {
				t.Fatalf("after expiry: %v", err)
			}
			// The sweep removes the expired package and its blob.
			if err := e.srv.Sweep(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := e.store.GetPackage(ctx, code); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("expired package kept: %v", err)
			}
		})
	}
}

func TestDeletePendingPackage(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c1 := e.packageWithBlob(pattern(10, 1), "ext-1")
	c2 := e.packageWithBlob(pattern(10, 2), "ext-2")
	if err := e.client.DeletePendingConnectPackage(ctx, c1, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.srv.PackageChallenge(ctx, c1); !errors.Is(err, server.ErrInvalidCode) {
		t.Fatalf("deleted package: %v", err)
	}
	if err := e.client.DeletePendingConnectPackage(ctx, c1, ""); wire.CodeOf(err) != wire.InvalidIdentityCode {
		t.Fatalf("deleting again: %v", err)
	}
	if err := e.client.UpdateExternalID(ctx, c2, "", "ext-3"); err != nil {
		t.Fatal(err)
	}
	if err := e.client.DeletePendingConnectPackage(ctx, "", "ext-2"); wire.CodeOf(err) != wire.InvalidIdentityCode {
		t.Fatalf("delete by the old external id: %v", err)
	}
	if err := e.client.DeletePendingConnectPackage(ctx, "", "ext-3"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.srv.PackageChallenge(ctx, c2); !errors.Is(err, server.ErrInvalidCode) {
		t.Fatalf("deleted package: %v", err)
	}
}

func TestCreateConnectPackageRefusals(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	pkg, err := dopu.Seal(answer, marshalThings(t, noteThing("x")), dopu.HMACSHA256AES256, nil)
	if err != nil {
		t.Fatal(err)
	}
	ok := client.ConnectPackage{FriendlyName: "A", Question: "Q?", ExternalID: "e", Package: pkg}
	for _, tc := range []struct {
		name string
		mut  func(p *client.ConnectPackage)
		want wire.Code
	}{
		{"blank question", func(p *client.ConnectPackage) { p.Question = "  " }, wire.InvalidVerificationQuestion},
		{"unallocated code", func(p *client.ConnectPackage) { p.IdentityCode = "BBBB-BBBB-BBBB-BBBB-BBBB" }, wire.InvalidIdentityCode},
		{"foreign blob url", func(p *client.ConnectPackage) { p.StreamedBlobRefs = []string{e.begin()} }, wire.InvalidBlobRefURL},
		{"truncated ciphertext", func(p *client.ConnectPackage) {
			q := *p.Package
			q.Ciphertext = q.Ciphertext[:len(q.Ciphertext)-1]
			p.Package = &q
		}, wire.InvalidXML},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := ok
			tc.mut(&p)
			if _, err := e.client.CreateConnectPackage(ctx, p); wire.CodeOf(err) != tc.want {
				t.Fatalf("err = %v, want %s", err, tc.want)
			}
		})
	}
	// An allocated code takes one package only.
	code, err := e.client.AllocatePackageID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p := ok
	p.IdentityCode = code
	if _, err := e.client.CreateConnectPackage(ctx, p); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.CreateConnectPackage(ctx, p); wire.CodeOf(err) != wire.InvalidIdentityCode {
		t.Fatalf("second package on a code: %v", err)
	}
	// A package blob goes into one package only.
	other, err := e.client.UploadPackageBlob(ctx, mustKey(t), "x", "text/plain", strings.NewReader("data"))
	if err != nil {
		t.Fatal(err)
	}
	p = ok
	p.StreamedBlobRefs = []string{other.RefURL}
	if _, err := e.client.CreateConnectPackage(ctx, p); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.CreateConnectPackage(ctx, p); wire.CodeOf(err) != wire.InvalidBlobRefURL {
		t.Fatalf("blob used by two packages: %v", err)
	}
}

func mustKey(t *testing.T) *dopu.Key {
	t.Helper()
	k, err := dopu.NewKey(answer, dopu.HMACSHA256AES256, nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
