package mailsql_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"dicomgate/gateway/mail"
	"dicomgate/gateway/mail/mailsql"
	"dicomgate/gateway/mail/mailtest"

	"github.com/rubenv/pgtest"
)

func TestSQLiteConformance(t *testing.T) {
	mailtest.RunStoreTests(t, func(t *testing.T) mail.Store {
		s, err := mailsql.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "gateway.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

// startPostgres starts a throwaway PostgreSQL cluster, or skips when
// PostgreSQL is not installed (fails instead under DICOMGATE_REQUIRE_PEERS=1).
func startPostgres(t *testing.T) *pgtest.PG {
	t.Helper()
	pg, err := pgtest.Start()
	if err != nil {
		if os.Getenv("DICOMGATE_REQUIRE_PEERS") == "1" {
			t.Fatalf("PostgreSQL: %v", err)
		}
		t.Skipf("PostgreSQL not available: %v", err)
	}
	t.Cleanup(func() { _ = pg.Stop() })
	return pg
}

func TestPostgresConformance(t *testing.T) {
	pg := startPostgres(t)
	n := 0
	mailtest.RunStoreTests(t, func(t *testing.T) mail.Store {
		n++
		name := fmt.Sprintf("mail_%d", n)
		if _, err := pg.DB.Exec("CREATE DATABASE " + name); err != nil {
			t.Fatal(err)
		}
		dsn := fmt.Sprintf("host=%s dbname=%s user=%s", pg.Host, name, pg.User)
		s, err := mailsql.OpenPostgres(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

// TestMigrateSharedTable checks that migration sets of several components
// live side by side in one migrations table and that migrating twice is a
// no-op.
func TestMigrateSharedTable(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gateway.db")
	db, err := sql.Open("sqlite", mailsql.SQLiteDSN(path))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	other := fstest.MapFS{
		"0001_things.sql": {Data: []byte("CREATE TABLE gw_things (id INTEGER PRIMARY KEY)")},
		"0002_more.sql":   {Data: []byte("ALTER TABLE gw_things ADD COLUMN name TEXT")},
	}
	for range 2 {
		if _, err := mailsql.New(ctx, db, mailsql.SQLite); err != nil {
			t.Fatalf("New: %v", err)
		}
		if err := mailsql.Migrate(ctx, db, mailsql.SQLite, "gateway", other); err != nil {
			t.Fatalf("Migrate gateway: %v", err)
		}
	}
	rows, err := db.Query(`SELECT component, version, name FROM ` + mailsql.MigrationsTable + ` ORDER BY component, version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var c, name string
		var v int
		if err := rows.Scan(&c, &v, &name); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s/%d/%s", c, v, name))
	}
	want := []string{"gateway/1/0001_things.sql", "gateway/2/0002_more.sql", "mail/1/0001_outbox.sql", "mail/2/0002_dedupe.sql"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("applied migrations = %v, want %v", got, want)
	}
	if _, err := db.Exec(`INSERT INTO gw_things (id, name) VALUES (1, 'x')`); err != nil {
		t.Errorf("gateway migrations not applied: %v", err)
	}
}

func TestMigrateBadNames(t *testing.T) {
	db, err := sql.Open("sqlite", mailsql.SQLiteDSN(filepath.Join(t.TempDir(), "x.db")))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, files := range []fstest.MapFS{
		{"outbox.sql": {Data: []byte("SELECT 1")}},
		{"0001_a.sql": {Data: []byte("SELECT 1")}, "1_b.sql": {Data: []byte("SELECT 1")}},
	} {
		err := mailsql.Migrate(context.Background(), db, mailsql.SQLite, "x", files)
		if !errors.Is(err, mailsql.ErrBadMigration) {
			t.Errorf("Migrate(%v) = %v, want ErrBadMigration", files, err)
		}
	}
}
