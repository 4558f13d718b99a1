package postgres_test

import (
	"context"
	"testing"

	"dicomgate/dimse/dicomtest"
	"dicomgate/platform/store"
	"dicomgate/platform/store/postgres"
	"dicomgate/platform/store/postgres/pgcluster"
	"dicomgate/platform/store/storetest"
)

// TestConformance runs the store suite on a throwaway cluster. It skips
// only when PostgreSQL is not installed (fails then under
// DICOMGATE_REQUIRE_PEERS=1); an installed cluster that does not start fails.
func TestConformance(t *testing.T) {
	if pgcluster.BinDir() == "" {
		dicomtest.MissingPeer(t, "PostgreSQL (initdb, postgres) not installed")
	}
	c, err := pgcluster.Start()
	if err != nil {
		t.Fatal(err)
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
