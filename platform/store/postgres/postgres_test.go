package postgres_test

import (
	"context"
	"os"
	"testing"

	"dicomgate/platform/store"
	"dicomgate/platform/store/postgres"
	"dicomgate/platform/store/postgres/pgcluster"
	"dicomgate/platform/store/storetest"
)

func TestConformance(t *testing.T) {
	c, err := pgcluster.Start()
	if err != nil {
		if os.Getenv("DICOMGATE_REQUIRE_PEERS") == "1" {
			t.Fatalf("PostgreSQL required: %v", err)
		}
		t.Skipf("PostgreSQL not available: %v", err)
	}
	t.Cleanup(func() { c.Stop() })
	storetest.Run(t, func(t *testing.T) store.Store {
		ctx := context.Background()
		dsn, err := c.NewDatabase(ctx)
		if err != nil {
			t.Fatal(err)
		}
		s, err := postgres.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
