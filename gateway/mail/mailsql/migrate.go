package mailsql

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"

	"dicomgate/platform/store/sqlmigrate"
)

// MigrationsTable is the table that records applied migrations, shared by
// every component that keeps tables in the gateway's database.
const MigrationsTable = sqlmigrate.Table

// Component is the name of the outbox's migration set.
const Component = "mail"

// ErrBadMigration reports a migration file that is not named NNNN_name.sql.
var ErrBadMigration = sqlmigrate.ErrBadMigration

// Migrate applies the migrations in files that component has not applied
// yet (files named NNNN_description.sql at the root of files); see
// sqlmigrate.Apply.
func Migrate(ctx context.Context, db *sql.DB, d Dialect, component string, files fs.FS) error {
	migs, err := sqlmigrate.Read(files)
	if err != nil {
		return fmt.Errorf("mailsql: %w", err)
	}
	if err := sqlmigrate.Apply(ctx, db, d == Postgres, component, migs); err != nil {
		return fmt.Errorf("mailsql: %w", err)
	}
	return nil
}
