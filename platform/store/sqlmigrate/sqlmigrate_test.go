package sqlmigrate

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"testing/fstest"

	_ "modernc.org/sqlite"
)

func TestStatements(t *testing.T) {
	got := Statements("-- a comment\nCREATE TABLE a (x INT);\nCREATE TABLE b (\n  y TEXT -- trailing\n);\n\nCREATE INDEX i ON a (x)")
	want := []string{"CREATE TABLE a (x INT)", "CREATE TABLE b (\n  y TEXT -- trailing\n)", "CREATE INDEX i ON a (x)"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Statements = %q", got)
	}
}

func TestRead(t *testing.T) {
	migs, err := Read(fstest.MapFS{
		"0002_b.sql": {Data: []byte("B")},
		"0001_a.sql": {Data: []byte("A")},
		"README":     {Data: []byte("not a migration")},
	})
	if err != nil || len(migs) != 2 || migs[0].Version != 1 || migs[1].SQL != "B" {
		t.Fatalf("Read = %+v, %v", migs, err)
	}
	for name, files := range map[string]fstest.MapFS{
		"no number": {"a.sql": {}},
		"zero":      {"0000_a.sql": {}},
		"twice":     {"0001_a.sql": {}, "001_b.sql": {}},
	} {
		if _, err := Read(files); !errors.Is(err, ErrBadMigration) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

// TestApply checks components are independent, re-applying is a no-op and
// a failing migration leaves nothing behind.
func TestApply(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a := []Migration{{1, "0001_a.sql", "CREATE TABLE a1 (x INT);\nCREATE TABLE a2 (y INT);"}}
	b := []Migration{{1, "0001_b.sql", "CREATE TABLE b1 (x INT);"}, {2, "0002_b.sql", "CREATE TABLE b2 (x INT);\nINSERT INTO nope VALUES (1);"}}
	for i := 0; i < 2; i++ {
		if err := Apply(ctx, db, false, "a", a); err != nil {
			t.Fatalf("apply a (%d): %v", i, err)
		}
	}
	if err := Apply(ctx, db, false, "b", b); err == nil {
		t.Fatal("failing migration applied")
	}
	var n int
	db.QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&n)
	if n != 2 {
		t.Fatalf("%d migrations recorded, want 2 (a1, b1)", n)
	}
	if _, err := db.Exec(`SELECT * FROM b2`); err == nil {
		t.Fatal("table of the failed migration exists")
	}
	for _, table := range []string{"a1", "a2", "b1"} {
		if _, err := db.Exec(`SELECT * FROM ` + table); err != nil {
			t.Fatalf("table %s: %v", table, err)
		}
	}
}
