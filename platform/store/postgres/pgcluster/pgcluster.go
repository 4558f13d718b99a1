// Package pgcluster starts a throwaway PostgreSQL cluster from the installed
// binaries (through github.com/rubenv/pgtest, which drops to the postgres
// user when running as root) for tests and benchmarks, and hands out one
// fresh database per caller.
package pgcluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"

	"github.com/rubenv/pgtest"
)

// Cluster is a running throwaway cluster.
type Cluster struct {
	pg *pgtest.PG
	n  atomic.Int64
}

// BinDir returns the directory holding initdb and postgres, or "" when
// PostgreSQL is not installed.
func BinDir() string {
	if p, err := exec.LookPath("initdb"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			p = r
		}
		return filepath.Dir(p)
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) > 0 {
		return filepath.Dir(matches[len(matches)-1])
	}
	return ""
}

// Start initializes and starts a cluster in a temporary directory.
func Start() (*Cluster, error) {
	dir := BinDir()
	if dir == "" {
		return nil, fmt.Errorf("pgcluster: PostgreSQL binaries (initdb, postgres) not found")
	}
	if _, err := os.Stat(filepath.Join(dir, "postgres")); err != nil {
		return nil, fmt.Errorf("pgcluster: %w", err)
	}
	pg, err := pgtest.New().From(dir).Start()
	if err != nil {
		return nil, fmt.Errorf("pgcluster: start: %w", err)
	}
	return &Cluster{pg: pg}, nil
}

// NewDatabase creates an empty database and returns its DSN.
func (c *Cluster) NewDatabase(ctx context.Context) (string, error) {
	name := fmt.Sprintf("db%d", c.n.Add(1))
	if _, err := c.pg.DB.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("pgcluster: create database: %w", err)
	}
	dsn := fmt.Sprintf("host=%s dbname=%s sslmode=disable", c.pg.Host, name)
	if c.pg.User != "" {
		dsn += " user=" + c.pg.User
	}
	return dsn, nil
}

// Stop stops the cluster and removes its files.
func (c *Cluster) Stop() error { return c.pg.Stop() }
