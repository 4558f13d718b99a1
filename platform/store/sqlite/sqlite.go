// Package sqlite is the default store.Store backend of dicomgate's platform:
// a SQLite database (modernc.org/sqlite, no cgo) in a file under the data
// directory, in WAL mode with synchronous=FULL so an acknowledged write
// survives a crash.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"dicomgate/platform/store/sqlstore"
	"dicomgate/platform/store/stmtcache"
)

// Dialect is SQLite's sqlstore dialect.
var Dialect = sqlstore.Dialect{
	Name:  "sqlite",
	Bytes: "BLOB",
	IsUniqueViolation: func(err error) bool {
		var e *sqlite.Error
		if !errors.As(err, &e) {
			return false
		}
		return e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	},
	// In WAL mode synchronous=NORMAL commits without syncing the WAL; the
	// next FULL commit syncs the WAL file and with it every earlier commit.
	RelaxSync:   "PRAGMA synchronous=NORMAL",
	RestoreSync: "PRAGMA synchronous=FULL",
}

// Open opens (creating if needed) the SQLite database at path and migrates it.
func Open(ctx context.Context, path string) (*sqlstore.Store, error) {
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(1)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	c, err := sqlite.NewConnector("file:" + path + "?" + q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// Statements are prepared once per connection, not on every call
	// (the driver would parse and plan each anew).
	db := sql.OpenDB(stmtcache.New(c, stmtcache.DefaultSize))
	// One connection: SQLite has one writer anyway, and this keeps
	// transactions from waiting on each other's locks.
	db.SetMaxOpenConns(1)
	s, err := sqlstore.New(ctx, db, Dialect)
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}
