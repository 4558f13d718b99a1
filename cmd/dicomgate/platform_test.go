package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"dicomgate/platform/appcert"
	"dicomgate/platform/client"
	"dicomgate/platform/wire"
)

func TestPlatformClientURL(t *testing.T) {
	tests := map[platformFlags]string{
		{Addr: ":8080"}:           "http://127.0.0.1:8080",
		{Addr: "0.0.0.0:9000"}:    "http://127.0.0.1:9000",
		{Addr: "10.0.0.5:80"}:     "http://10.0.0.5:80",
		{Addr: "[::]:8443"}:       "http://127.0.0.1:8443",
		{PublicURL: "https://x/"}: "https://x",
	}
	for f, want := range tests {
		if got := f.clientURL(); got != want {
			t.Errorf("%+v: %s, want %s", f, got, want)
		}
	}
}

func TestPlatformCommandsAndServePart(t *testing.T) {
	dir := t.TempDir()
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rc := &runContext{ctx: ctx, log: slog.New(slog.NewTextHandler(logs, nil))}

	runCLI(t, rc, "platform", "app", "create", "--name", "viewer", "--data", dir)
	if _, err := appcert.Load(filepath.Join(dir, "platform", "apps", "viewer")); err != nil {
		t.Fatalf("app create wrote no credentials: %v", err)
	}
	// Importing an existing certificate.
	_, cert, err := appcert.Generate("imported", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certFile := filepath.Join(dir, "imported.pem")
	if err := os.WriteFile(certFile, appcert.EncodeCert(cert), 0o644); err != nil {
		t.Fatal(err)
	}
	runCLI(t, rc, "platform", "app", "create", "--name", "imported", "--data", dir, "--cert", certFile)
	runCLI(t, rc, "platform", "record", "create", "--data", dir, "--login", "alice", "--password", "long enough", "--name", "Alice")
	runCLI(t, rc, "platform", "record", "create", "--data", dir, "--login", "alice", "--name", "Tom", "--relationship", "child")

	// serve's part bootstraps the gateway app idempotently and serves.
	part, err := newPlatformPart(ctx, rc, dir, "", &platformFlags{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- part.run() }()
	var url string
	for deadline := time.Now().Add(5 * time.Second); url == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := regexp.MustCompile(`public_url=(\S+)`).FindStringSubmatch(logs.String()); m != nil {
			url = m[1]
		}
	}
	if url == "" {
		t.Fatalf("platform did not start:\n%s", logs.String())
	}
	creds, err := appcert.Load(platformGatewayAppDir(dir))
	if err != nil {
		t.Fatal(err)
	}

	// Find Alice's records through a second store handle (SQLite allows it).
	st, err := openPlatformStore(ctx, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	p, err := st.PersonByLogin(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	recs, err := st.RecordsOfPerson(ctx, p.ID)
	st.Close()
	if err != nil || len(recs) != 2 || recs[1].Relationship != "child" {
		t.Fatalf("records %+v, %v", recs, err)
	}
	c, err := client.New(client.Config{URL: url, Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.GetThings(ctx, recs[1].ID, client.StudyQuery("c75651c8-548e-449f-8942-9e6379b0b88a", "1"))
	if wire.CodeOf(err) != wire.AccessDenied {
		t.Fatalf("before authorize: %v", err)
	}
	runCLI(t, rc, "platform", "record", "authorize", "--data", dir, "--app", creds.AppID, "--record", recs[1].ID)
	if _, err := c.GetThings(ctx, recs[1].ID, client.StudyQuery("c75651c8-548e-449f-8942-9e6379b0b88a", "1")); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("part ended with %v", err)
	}

	// A second start keeps the same gateway application.
	ctx2, cancel2 := context.WithCancel(context.Background())
	part2, err := newPlatformPart(ctx2, rc, dir, "", &platformFlags{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	cancel2()
	if err := part2.run(); err != context.Canceled {
		t.Fatalf("second part ended with %v", err)
	}
	again, err := appcert.Load(platformGatewayAppDir(dir))
	if err != nil || again.AppID != creds.AppID {
		t.Fatalf("gateway app changed: %v", err)
	}
}
