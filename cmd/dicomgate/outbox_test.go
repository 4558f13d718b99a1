package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"dicomgate/gateway/mail"
	"dicomgate/gateway/mail/mailsql"
)

func TestOutboxList(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := mailsql.OpenSQLite(ctx, filepath.Join(dir, "gateway.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	created := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	m, err := mail.PickupMail("anna@example.org", mail.Invitation{
		FriendlyName: "Anna",
		IdentityCode: "JKYZ-QNMN-VHRX-ZGNR-GZNH",
		PublicURL:    "https://health.example.org",
		Expires:      created.Add(28 * 24 * time.Hour),
		Institution:  "St. Example Hospital",
	})
	if err != nil {
		t.Fatal(err)
	}
	first, err := store.Add(ctx, m, created)
	if err != nil {
		t.Fatal(err)
	}
	r, err := store.Claim(ctx, created, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Fail(ctx, r.ID, r.Attempts, "sending SMTP RCPT TO command: 550 5.1.1 No such\tuser\r\nhere", created); err != nil {
		t.Fatal(err)
	}
	m.To = "bob@example.org"
	if _, err := store.Add(ctx, m, created.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	if err := (&outboxCmd{Data: dir, Limit: 100}).list(ctx, &out); err != nil {
		t.Fatalf("list: %v", err)
	}
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("listing has %d lines, want header and 2 rows:\n%s", len(lines), out.String())
	}
	header := strings.Fields(lines[0])
	if strings.Join(header, " ") != "ID TO SUBJECT STATE ATTEMPTS LAST ERROR CREATED" {
		t.Errorf("header %q", lines[0])
	}
	// Newest first: bob's queued message, then anna's failed one.
	for i, want := range [][]string{
		{"bob@example.org", "queued", " 0 ", created.Add(time.Minute).Local().Format(time.DateTime)},
		{"anna@example.org", "failed", " 1 ", "550 5.1.1 No such user  here", created.Local().Format(time.DateTime)},
	} {
		row := lines[i+1]
		for _, w := range want {
			if !strings.Contains(row, w) {
				t.Errorf("row %d %q lacks %q", i+1, row, w)
			}
		}
	}
	if strings.Fields(lines[2])[0] != strconv.FormatInt(first, 10) {
		t.Errorf("row 2 does not start with id %d: %q", first, lines[2])
	}
	if strings.Contains(out.String(), "JKYZ") {
		t.Error("listing shows the identity code")
	}
	// Column alignment: every row's STATE starts where the header's does.
	// tabwriter counts runes, and the cut subject ends in "…".
	col := strings.Index(lines[0], "STATE")
	for _, row := range lines[1:] {
		if st := string([]rune(row)[col:]); !strings.HasPrefix(st, "queued") && !strings.HasPrefix(st, "failed") {
			t.Errorf("STATE column misaligned in %q", row)
		}
	}
}

func TestOutboxListEmptyAndMissing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	err := (&outboxCmd{Data: dir, Limit: 100}).list(ctx, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "no gateway database") {
		t.Errorf("list without a database = %v, want a clear error", err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*")); len(m) != 0 {
		t.Errorf("listing created files: %v", m)
	}

	store, err := mailsql.OpenSQLite(ctx, filepath.Join(dir, "gateway.db"))
	if err != nil {
		t.Fatal(err)
	}
	_ = store.Close()
	var out bytes.Buffer
	if err := (&outboxCmd{Data: dir, Limit: 100}).list(ctx, &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != "The outbox is empty.\n" {
		t.Errorf("empty listing %q", out.String())
	}
}

func TestCell(t *testing.T) {
	for in, want := range map[string]string{
		"":                      "-",
		"a\tb\r\nc":             "a b  c",
		strings.Repeat("x", 70): strings.Repeat("x", listColumnWidth-1) + "…",
	} {
		if got := cell(in); got != want {
			t.Errorf("cell(%q) = %q, want %q", in, got, want)
		}
	}
}
