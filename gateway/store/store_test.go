package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/rubenv/pgtest"

	"dicomgate/gateway/store"
	"dicomgate/gateway/store/storetest"
)

func openSQLite(t *testing.T) store.Store {
	s, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "gateway.db"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSQLite(t *testing.T) {
	storetest.Run(t, openSQLite)
}

func TestSQLiteAdmin(t *testing.T) {
	storetest.RunAdmin(t, openSQLite)
}

func TestSQLiteReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gateway.db")
	ctx := context.Background()
	s, err := store.OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	s.PutSetting(ctx, "k", []byte("v"))
	s.Close()
	s, err = store.OpenSQLite(ctx, path)
	if err != nil {
		t.Fatalf("reopen (migrations must be idempotent): %v", err)
	}
	defer s.Close()
	if v, err := s.Setting(ctx, "k"); err != nil || string(v) != "v" {
		t.Fatalf("after reopen: %s, %v", v, err)
	}
}

func TestPostgres(t *testing.T) {
	pg, err := pgtest.Start()
	if err != nil {
		if os.Getenv("DICOMGATE_REQUIRE_PEERS") == "1" {
			t.Fatalf("PostgreSQL: %v", err)
		}
		t.Skipf("PostgreSQL not available: %v", err)
	}
	t.Cleanup(func() { pg.Stop() })
	n := 0
	open := func(t *testing.T) store.Store {
		// A fresh database per test keeps the suite's tests independent.
		n++
		name := fmt.Sprintf("gw%d", n)
		if _, err := pg.DB.Exec("CREATE DATABASE " + name); err != nil {
			t.Fatal(err)
		}
		s, err := store.OpenPostgres(context.Background(), fmt.Sprintf("host=%s user=%s dbname=%s sslmode=disable", pg.Host, pg.User, name))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	storetest.Run(t, open)
	// The admin tables share the cluster; each test gets its own database.
	t.Run("Admin", func(t *testing.T) { storetest.RunAdmin(t, open) })
}
