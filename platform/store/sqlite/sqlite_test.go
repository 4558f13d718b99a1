package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"dicomgate/platform/store"
	"dicomgate/platform/store/sqlite"
	"dicomgate/platform/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "platform.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "platform.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateApp(ctx, store.App{ID: "a", Name: "n"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Migrations must not run twice.
	s, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.GetApp(ctx, "a"); err != nil {
		t.Fatal(err)
	}
}

// TestLazyCommitRestoresSync checks that a lazy (unsynced) write leaves the
// connection syncing every commit again (synchronous=FULL is 2), including
// when the write itself fails.
func TestLazyCommitRestoresSync(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "platform.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreatePerson(ctx, store.Person{ID: "p", Login: "l", Name: "P", PasswordHash: "$argon2id$x"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRecord(ctx, store.Record{ID: "r", PersonID: "p", Name: "R", Relationship: "self"}); err != nil {
		t.Fatal(err)
	}
	b := store.Blob{ID: "b", RecordID: "r", AppID: "a", State: store.BlobUploading, BlockSize: 4, MaxSize: 8, Total: -1}
	for i, wantErr := range []bool{false, true} { // the second insert is a duplicate
		if err := s.CreateBlobLazily(ctx, b); (err != nil) != wantErr {
			t.Fatalf("insert %d: CreateBlobLazily = %v", i, err)
		}
		var level int
		if err := s.DB().QueryRowContext(ctx, "PRAGMA synchronous").Scan(&level); err != nil {
			t.Fatal(err)
		}
		if level != 2 {
			t.Fatalf("insert %d: synchronous = %d afterwards, want 2 (FULL)", i, level)
		}
	}
}
