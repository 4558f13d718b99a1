// Package sqlmigrate applies embedded, versioned SQL migrations to SQLite
// and PostgreSQL databases. Every component that keeps tables in a
// database (the platform, the gateway, the mail outbox) has its own named
// set of migrations, versioned on its own and recorded in one shared table,
// so that all of them can live in one PostgreSQL database side by side.
package sqlmigrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Table records applied migrations: one row per component and version.
const Table = "schema_migrations"

// ErrBadMigration reports a migration file that is not named NNNN_name.sql
// or whose version is taken twice.
var ErrBadMigration = errors.New("sqlmigrate: bad migration file name")

const tableDDL = `CREATE TABLE IF NOT EXISTS ` + Table + ` (
    component TEXT    NOT NULL,
    version   INTEGER NOT NULL,
    name      TEXT    NOT NULL,
    applied   BIGINT  NOT NULL,
    PRIMARY KEY (component, version)
)`

// Migration is one step of a component's schema.
type Migration struct {
	Version int
	Name    string
	SQL     string // one or more statements separated by ";" at line ends
}

// Read reads the files named NNNN_description.sql at the root of files,
// ordered by version NNNN.
func Read(files fs.FS) ([]Migration, error) {
	names, err := fs.Glob(files, "*.sql")
	if err != nil {
		return nil, fmt.Errorf("sqlmigrate: list migrations: %w", err)
	}
	out := make([]Migration, 0, len(names))
	seen := map[int]string{}
	for _, name := range names {
		prefix, _, ok := strings.Cut(path.Base(name), "_")
		v, err := strconv.Atoi(prefix)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("%w: %s", ErrBadMigration, name)
		}
		if other, dup := seen[v]; dup {
			return nil, fmt.Errorf("%w: %s and %s share version %d", ErrBadMigration, other, name, v)
		}
		seen[v] = name
		b, err := fs.ReadFile(files, name)
		if err != nil {
			return nil, fmt.Errorf("sqlmigrate: read %s: %w", name, err)
		}
		out = append(out, Migration{Version: v, Name: name, SQL: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// Apply applies the migrations component has not applied yet, in order,
// each in its own transaction together with its row in Table. postgres
// selects PostgreSQL's advisory lock, which keeps two processes from
// migrating at once; on SQLite the database's write lock does that.
func Apply(ctx context.Context, db *sql.DB, postgres bool, component string, migs []Migration) error {
	if _, err := db.ExecContext(ctx, tableDDL); err != nil {
		return fmt.Errorf("sqlmigrate: create %s: %w", Table, err)
	}
	for _, m := range migs {
		if err := apply(ctx, db, postgres, component, m); err != nil {
			return err
		}
	}
	return nil
}

func apply(ctx context.Context, db *sql.DB, postgres bool, component string, m Migration) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlmigrate: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }() // a no-op after Commit
	if postgres {
		// One lock for every component: migrations are rare and short.
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(8121600410)`); err != nil {
			return fmt.Errorf("sqlmigrate: lock: %w", err)
		}
	}
	var n int
	err = tx.QueryRowContext(ctx, `SELECT count(*) FROM `+Table+` WHERE component = $1 AND version = $2`,
		component, m.Version).Scan(&n)
	if err != nil {
		return fmt.Errorf("sqlmigrate: read %s: %w", Table, err)
	}
	if n > 0 {
		return nil
	}
	for _, stmt := range Statements(m.SQL) {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("sqlmigrate: %s %s: %w: %s", component, m.Name, err, stmt)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO `+Table+` (component, version, name, applied) VALUES ($1, $2, $3, $4)`,
		component, m.Version, m.Name, time.Now().UnixNano()); err != nil {
		return fmt.Errorf("sqlmigrate: record %s %s: %w", component, m.Name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlmigrate: commit %s %s: %w", component, m.Name, err)
	}
	return nil
}

// Statements splits a migration into its statements: text up to a ";"
// that ends a line. Lines that hold only a "--" comment are dropped.
func Statements(text string) []string {
	var (
		out []string
		cur strings.Builder
	)
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(trimmed, ";") {
			if s := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(cur.String()), ";")); s != "" {
				out = append(out, s)
			}
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}
