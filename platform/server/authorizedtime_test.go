package server_test

import (
	"context"
	"testing"
	"time"

	"dicomgate/platform/client"
)

// TestAuthorizedTimeIsPlatformTime polls GetAuthorizedConnectRequests from
// a client whose clock runs 4 minutes ahead (within the allowed skew): the Authorized time it gets
// back must be the platform's, so that polling from it does not skip an
// authorization made in the meantime.
func TestAuthorizedTimeIsPlatformTime(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ahead, err := client.New(client.Config{URL: e.http.URL, Credentials: e.creds, Backoff: time.Millisecond,
		Now: func() time.Time { return e.clock.Now().Add(4 * time.Minute) }})
	if err != nil {
		t.Fatal(err)
	}
	authorize := func(login, ext string) {
		t.Helper()
		rec := e.newRecord(login, false)
		code, err := e.client.CreateConnectRequest(ctx, "Sam", "Pet?", answer, ext, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := e.srv.Connect(ctx, code, answer, e.personOf(rec), rec); err != nil {
			t.Fatal(err)
		}
	}
	authorize("sam", "p-1")
	e.clock.Advance(1500 * time.Millisecond)
	got, err := ahead.GetAuthorizedConnectRequests(ctx, time.Time{})
	if err != nil || len(got) != 1 {
		t.Fatalf("first poll: %+v, %v", got, err)
	}
	if want := e.clock.Now().Truncate(time.Second); !got[0].Authorized.Equal(want) {
		t.Fatalf("Authorized = %s, want the platform's %s", got[0].Authorized, want)
	}
	e.clock.Advance(time.Minute)
	authorize("tom", "p-2")
	got, err = ahead.GetAuthorizedConnectRequests(ctx, got[0].Authorized)
	if err != nil || len(got) != 1 || got[0].ExternalID != "p-2" {
		t.Fatalf("second poll: %+v, %v; want the request authorized in between", got, err)
	}
}
