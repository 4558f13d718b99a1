package server_test

import (
	"context"
	"testing"

	"dicomgate/platform/store/postgres"
	"dicomgate/platform/store/postgres/pgcluster"
)

// TestOnPostgres runs the main flows against the PostgreSQL backend (a
// throwaway cluster from the installed binaries).
func TestOnPostgres(t *testing.T) {
	c, err := pgcluster.Start()
	if err != nil {
		requirePeer(t, "PostgreSQL", err)
	}
	t.Cleanup(func() { c.Stop() })
	onPG := func(t *testing.T) *env {
		ctx := context.Background()
		dsn, err := c.NewDatabase(ctx)
		if err != nil {
			t.Fatal(err)
		}
		st, err := postgres.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		return newEnvOn(t, st)
	}
	t.Run("ThingLifecycle", func(t *testing.T) { testThingLifecycle(t, onPG(t)) })
	t.Run("SignedThings", func(t *testing.T) { testSignedThings(t, onPG(t)) })
	t.Run("BlobChunksOutOfOrder", func(t *testing.T) { testBlobChunksOutOfOrder(t, onPG(t)) })
	t.Run("ParallelWrongAnswers", func(t *testing.T) { testParallelWrongAnswers(t, onPG(t)) })
}
