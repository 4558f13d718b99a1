package server_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"dicomgate/platform/server"
	"dicomgate/platform/wire"
)

func TestConnectRequestFlow(t *testing.T) { testConnectFlow(t, newEnv(t)) }

func testConnectFlow(t *testing.T, e *env) {
	ctx := context.Background()
	code, err := e.client.CreateConnectRequest(ctx, "Bob", "Pet?", answer, "patient-9", "")
	if err != nil {
		t.Fatal(err)
	}
	// One pending request per external id per application.
	if _, err := e.client.CreateConnectRequest(ctx, "Bob", "Pet?", answer, "patient-9", ""); wire.CodeOf(err) != wire.DuplicateConnectRequestFound {
		t.Fatalf("duplicate: %v", err)
	}
	// Never stored in plain text.
	r, err := e.store.GetConnectRequest(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(r.AnswerHash, "$argon2id$") || strings.Contains(strings.ToLower(r.AnswerHash), "fluffy") {
		t.Fatalf("answer stored as %q", r.AnswerHash)
	}
	rec := e.newRecord("dave", false)
	person := e.personOf(rec)
	// Case-insensitive but whitespace-sensitive.
	var wa *server.WrongAnswerError
	if err := e.srv.Connect(ctx, code, " "+answer, person, rec); !errors.As(err, &wa) || wa.TriesLeft != 2 {
		t.Fatalf("answer with a leading space: %v", err)
	}
	if err := e.srv.Connect(ctx, strings.ToLower(code), strings.ToLower(answer), person, rec); err != nil {
		t.Fatal(err)
	}
	// The application may now use the record.
	if _, err := e.client.PutThings(ctx, rec, noteThing("after connect")); err != nil {
		t.Fatalf("PutThings after authorization: %v", err)
	}
	got, err := e.client.GetAuthorizedConnectRequests(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].RecordID != rec || got[0].PersonID != person || got[0].ExternalID != "patient-9" || got[0].AppID != e.creds.AppID {
		t.Fatalf("authorized = %+v", got)
	}
	// Validated: no longer pending; a new request for the id may be made.
	if err := e.client.DeletePendingConnectRequest(ctx, "patient-9"); wire.CodeOf(err) != wire.InvalidIdentityCode {
		t.Fatalf("delete validated as pending: %v", err)
	}
	if _, err := e.client.CreateConnectRequest(ctx, "Bob", "Pet?", answer, "patient-9", ""); err != nil {
		t.Fatal(err)
	}
	// Retrievable for 90 days, then gone.
	e.clock.Advance(89 * 24 * time.Hour)
	if got, err := e.client.GetAuthorizedConnectRequests(ctx, time.Time{}); err != nil || len(got) != 1 {
		t.Fatalf("after 89 days: %d, %v", len(got), err)
	}
	e.clock.Advance(2 * 24 * time.Hour)
	if got, err := e.client.GetAuthorizedConnectRequests(ctx, time.Time{}); err != nil || len(got) != 0 {
		t.Fatalf("after 91 days: %d, %v", len(got), err)
	}
}

func TestConnectLockoutAndExpiry(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	rec := e.newRecord("erin", false)
	person := e.personOf(rec)
	code, err := e.client.CreateConnectRequest(ctx, "Erin", "Pet?", answer, "p-1", "")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := e.srv.CheckConnectAnswer(ctx, code, "nope nope"); !errors.Is(err, server.ErrWrongAnswer) {
			t.Fatal(err)
		}
	}
	if err := e.srv.CheckConnectAnswer(ctx, code, "nope nope"); !errors.Is(err, server.ErrLocked) {
		t.Fatalf("third wrong answer: %v", err)
	}
	if err := e.srv.Connect(ctx, code, answer, person, rec); !errors.Is(err, server.ErrLocked) {
		t.Fatalf("after lock-out: %v", err)
	}
	// A locked request still blocks the external id until deleted.
	if _, err := e.client.CreateConnectRequest(ctx, "Erin", "Pet?", answer, "p-1", ""); wire.CodeOf(err) != wire.DuplicateConnectRequestFound {
		t.Fatalf("new request while one is pending: %v", err)
	}
	if err := e.client.DeletePendingConnectRequest(ctx, "p-1"); err != nil {
		t.Fatal(err)
	}
	code, err = e.client.CreateConnectRequest(ctx, "Erin", "Pet?", answer, "p-1", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.client.UpdateExternalID(ctx, "", "p-1", "p-2"); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(28 * 24 * time.Hour)
	if err := e.srv.Connect(ctx, code, answer, person, rec); !errors.Is(err, server.ErrExpired) {
		t.Fatalf("after 4 weeks: %v", err)
	}
}

func TestAuthorizedConnectRequestsPaging(t *testing.T) {
	e := newEnv(t, func(c *server.Config) { c.Connect.AuthorizedPageSize = 2 })
	ctx := context.Background()
	rec := e.newRecord("fay", false)
	person := e.personOf(rec)
	for i := range 5 {
		code, err := e.client.CreateConnectRequest(ctx, "Fay", "Pet?", answer, fmt.Sprintf("ext-%d", i), "")
		if err != nil {
			t.Fatal(err)
		}
		// The server clock does not move: equal authorization instants.
		if err := e.srv.Connect(ctx, code, answer, person, rec); err != nil {
			t.Fatal(err)
		}
	}
	got, err := e.client.GetAuthorizedConnectRequests(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range got {
		if seen[r.ExternalID] {
			t.Fatalf("%s twice", r.ExternalID)
		}
		seen[r.ExternalID] = true
	}
	if len(seen) != 5 {
		t.Fatalf("paging returned %d of 5: %+v", len(seen), got)
	}
	pages := 0
	for _, x := range e.rec.exchanges() {
		if strings.Contains(string(x.req), "<method>GetAuthorizedConnectRequests</method>") {
			pages++
		}
	}
	if pages != 3 {
		t.Fatalf("%d pages, want 3 (2+2+1)", pages)
	}
	// Since a later time: none.
	got, err = e.client.GetAuthorizedConnectRequests(ctx, e.clock.Now().Add(time.Second))
	if err != nil || len(got) != 0 {
		t.Fatalf("since later: %d, %v", len(got), err)
	}
}
