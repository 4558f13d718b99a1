package mailsql

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

// MigrationsTable is the table that records applied migrations. It is shared
// by every component that keeps tables in the gateway's database: each
// component's migrations are a named set, versioned on their own, so the
// gateway's migrations can live beside the outbox's.
const MigrationsTable = "schema_migrations"

// Component is the name of the outbox's migration set.
const Component = "mail"

// ErrBadMigration reports a migration file that is not named NNNN_name.sql.
var ErrBadMigration = errors.New("mailsql: bad migration file name")

// migrationsDDL creates MigrationsTable; the same text works on both
// databases.
const migrationsDDL = `CREATE TABLE IF NOT EXISTS ` + MigrationsTable + ` (
    component TEXT    NOT NULL,
    version   INTEGER NOT NULL,
    name      TEXT    NOT NULL,
    applied   BIGINT  NOT NULL,
    PRIMARY KEY (component, version)
)`

// migration is one file of a migration set.
type migration struct {
	version int
	name    string
	sql     string
}

// Migrate applies the migrations in files that component has not applied
// yet, in version order, each in its own transaction together with its row
// in MigrationsTable. Files are named NNNN_description.sql at the root of
// files; NNNN is the version. On PostgreSQL an advisory lock keeps two
// processes from migrating at once; on SQLite the database's write lock
// does (OpenSQLite begins transactions IMMEDIATE).
func Migrate(ctx context.Context, db *sql.DB, d Dialect, component string, files fs.FS) error {
	migs, err := readMigrations(files)
	if err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, migrationsDDL); err != nil {
		return fmt.Errorf("mailsql: create %s: %w", MigrationsTable, err)
	}
	for _, m := range migs {
		if err := applyOne(ctx, db, d, component, m); err != nil {
			return err
		}
	}
	return nil
}

// applyOne applies m unless it is recorded as applied.
func applyOne(ctx context.Context, db *sql.DB, d Dialect, component string, m migration) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("mailsql: begin migration: %w", err)
	}
	defer func() { _ = tx.Rollback() }() // a no-op after Commit
	if d == Postgres {
		// One lock id for all components: migrations are rare and short.
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(8121600410)`); err != nil {
			return fmt.Errorf("mailsql: migration lock: %w", err)
		}
	}
	var n int
	err = tx.QueryRowContext(ctx,
		`SELECT count(*) FROM `+MigrationsTable+` WHERE component = $1 AND version = $2`,
		component, m.version).Scan(&n)
	if err != nil {
		return fmt.Errorf("mailsql: read %s: %w", MigrationsTable, err)
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return fmt.Errorf("mailsql: migration %s %s: %w", component, m.name, err)
	}
	_, err = tx.ExecContext(ctx,
		`INSERT INTO `+MigrationsTable+` (component, version, name, applied) VALUES ($1, $2, $3, $4)`,
		component, m.version, m.name, time.Now().UnixNano())
	if err != nil {
		return fmt.Errorf("mailsql: record migration %s %s: %w", component, m.name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("mailsql: commit migration %s %s: %w", component, m.name, err)
	}
	return nil
}

// readMigrations reads and orders the *.sql files at the root of files.
func readMigrations(files fs.FS) ([]migration, error) {
	names, err := fs.Glob(files, "*.sql")
	if err != nil {
		return nil, fmt.Errorf("mailsql: list migrations: %w", err)
	}
	migs := make([]migration, 0, len(names))
	seen := make(map[int]string)
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
			return nil, fmt.Errorf("mailsql: read migration %s: %w", name, err)
		}
		migs = append(migs, migration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(migs, func(i, j int) bool { return migs[i].version < migs[j].version })
	return migs, nil
}
