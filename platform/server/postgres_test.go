package server_test

import (
	"context"
	"testing"

	"dicomgate/platform/store/postgres"
	"dicomgate/platform/store/postgres/pgcluster"
)

// postgresEnvs starts a throwaway PostgreSQL cluster from the installed
// binaries for the test t (requiring it as a peer) and returns a function
// that makes an env on a fresh database of that cluster.
func postgresEnvs(t *testing.T) func(t *testing.T) *env {
	t.Helper()
	c, err := pgcluster.Start()
	if err != nil {
		requirePeer(t, "PostgreSQL", err)
	}
	t.Cleanup(func() { c.Stop() })
	return func(t *testing.T) *env {
		t.Helper()
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
}

// TestOnPostgres runs the main flows, pick-up and Patient Connect included,
// against the PostgreSQL backend: one throwaway cluster from the installed
// binaries, a fresh database for each flow.
func TestOnPostgres(t *testing.T) {
	onPG := postgresEnvs(t)
	t.Run("ThingLifecycle", func(t *testing.T) { testThingLifecycle(t, onPG(t)) })
	t.Run("SignedThings", func(t *testing.T) { testSignedThings(t, onPG(t)) })
	t.Run("BlobChunksOutOfOrder", func(t *testing.T) { testBlobChunksOutOfOrder(t, onPG(t)) })
	t.Run("ParallelWrongAnswers", func(t *testing.T) { testParallelWrongAnswers(t, onPG(t)) })
	t.Run("PickUp", func(t *testing.T) { testPickUp(t, onPG(t)) })
	t.Run("ConnectFlow", func(t *testing.T) { testConnectFlow(t, onPG(t)) })
}
