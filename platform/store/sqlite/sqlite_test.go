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
