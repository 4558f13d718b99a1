// Package sqlstore implements store.Store on database/sql for the SQL
// dialects dicomgate supports (SQLite and PostgreSQL). The backends in
// store/sqlite and store/postgres open the database and hand it here with
// their Dialect; the schema comes from embedded, versioned migrations.
package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"dicomgate/platform/store"
	"dicomgate/platform/store/sqlmigrate"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Dialect is what differs between the SQL backends.
type Dialect struct {
	// Name names the backend in errors.
	Name string
	// Bytes is the column type for byte strings (BLOB, BYTEA).
	Bytes string
	// IsUniqueViolation reports whether err is a unique/primary-key violation.
	IsUniqueViolation func(error) bool
	// RelaxSync and RestoreSync, when set, turn a connection's sync on
	// commit off and back on (SQLite: PRAGMA synchronous). Writes that
	// nobody is promised durability of run in between: a later synced
	// commit makes them durable too (SQLite's WAL is synced whole).
	RelaxSync, RestoreSync string
}

// Store is store.Store on a *sql.DB.
type Store struct {
	db *sql.DB
	d  Dialect
}

var _ store.Store = (*Store)(nil)

// New migrates db to the latest schema and returns a Store using it. The
// Store owns db and closes it on Close.
func New(ctx context.Context, db *sql.DB, d Dialect) (*Store, error) {
	s := &Store{db: db, d: d}
	if err := s.migrate(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// DB returns the underlying database (for backend-specific maintenance).
func (s *Store) DB() *sql.DB { return s.db }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// migrate applies the embedded migrations not yet applied (component
// "platform" in the shared migrations table).
func (s *Store) migrate(ctx context.Context) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	migs, err := sqlmigrate.Read(sub)
	if err != nil {
		return fmt.Errorf("%s: %w", s.d.Name, err)
	}
	for i := range migs {
		migs[i].SQL = strings.ReplaceAll(migs[i].SQL, "{{bytes}}", s.d.Bytes)
	}
	if err := sqlmigrate.Apply(ctx, s.db, s.d.Name == "postgres", "platform", migs); err != nil {
		return fmt.Errorf("%s: %w", s.d.Name, err)
	}
	return nil
}

func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// isUnique reports whether err is the dialect's unique/primary-key violation.
func (s *Store) isUnique(err error) bool {
	return err != nil && s.d.IsUniqueViolation != nil && s.d.IsUniqueViolation(err)
}

func (s *Store) insertErr(what string, err error) error {
	if err == nil {
		return nil
	}
	if s.isUnique(err) {
		return fmt.Errorf("%s: %w", what, store.ErrExists)
	}
	return fmt.Errorf("%s: insert %s: %w", s.d.Name, what, err)
}

func notFound(what string, err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return err
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// CreateApp implements store.Store.
func (s *Store) CreateApp(ctx context.Context, a store.App) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO apps (id, name, created) VALUES ($1, $2, $3)`, a.ID, a.Name, nanos(a.Created))
	return s.insertErr("app "+a.ID, err)
}

// GetApp implements store.Store.
func (s *Store) GetApp(ctx context.Context, id string) (store.App, error) {
	var a store.App
	var created int64
	err := s.db.QueryRowContext(ctx, `SELECT id, name, created FROM apps WHERE id = $1`, id).Scan(&a.ID, &a.Name, &created)
	a.Created = fromNanos(created)
	return a, notFound("app "+id, err)
}

// AddAppCert implements store.Store.
func (s *Store) AddAppCert(ctx context.Context, c store.AppCert) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO app_certs (app_id, thumbprint, der, added) VALUES ($1, $2, $3, $4)`,
		c.AppID, c.Thumbprint, c.DER, nanos(c.Added))
	return s.insertErr("certificate "+c.Thumbprint, err)
}

// AppCert implements store.Store.
func (s *Store) AppCert(ctx context.Context, appID, thumbprint string) (store.AppCert, error) {
	c := store.AppCert{AppID: appID, Thumbprint: thumbprint}
	var added int64
	err := s.db.QueryRowContext(ctx, `SELECT der, added FROM app_certs WHERE app_id = $1 AND thumbprint = $2`, appID, thumbprint).Scan(&c.DER, &added)
	c.Added = fromNanos(added)
	return c, notFound("certificate "+thumbprint, err)
}

// CreateSession implements store.Store.
func (s *Store) CreateSession(ctx context.Context, se store.Session) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO sessions (token_hash, app_id, shared_secret, created, expires) VALUES ($1, $2, $3, $4, $5)`,
		se.TokenHash[:], se.AppID, se.SharedSecret, nanos(se.Created), nanos(se.Expires))
	return s.insertErr("session", err)
}

// Session implements store.Store.
func (s *Store) Session(ctx context.Context, tokenHash [sha256.Size]byte) (store.Session, error) {
	se := store.Session{TokenHash: tokenHash}
	var created, expires int64
	err := s.db.QueryRowContext(ctx, `SELECT app_id, shared_secret, created, expires FROM sessions WHERE token_hash = $1`, tokenHash[:]).
		Scan(&se.AppID, &se.SharedSecret, &created, &expires)
	se.Created, se.Expires = fromNanos(created), fromNanos(expires)
	return se, notFound("session", err)
}

// DeleteExpiredSessions implements store.Store.
func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE expires < $1`, nanos(now))
	return err
}

// CreatePerson implements store.Store.
func (s *Store) CreatePerson(ctx context.Context, p store.Person) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO persons (id, login, name, password_hash, created) VALUES ($1, $2, $3, $4, $5)`,
		p.ID, p.Login, p.Name, p.PasswordHash, nanos(p.Created))
	return s.insertErr("person "+p.Login, err)
}

const personCols = `id, login, name, password_hash, created`

func scanPerson(row *sql.Row, what string) (store.Person, error) {
	var p store.Person
	var created int64
	err := row.Scan(&p.ID, &p.Login, &p.Name, &p.PasswordHash, &created)
	p.Created = fromNanos(created)
	return p, notFound(what, err)
}

// GetPerson implements store.Store.
func (s *Store) GetPerson(ctx context.Context, id string) (store.Person, error) {
	return scanPerson(s.db.QueryRowContext(ctx, `SELECT `+personCols+` FROM persons WHERE id = $1`, id), "person "+id)
}

// PersonByLogin implements store.Store.
func (s *Store) PersonByLogin(ctx context.Context, login string) (store.Person, error) {
	return scanPerson(s.db.QueryRowContext(ctx, `SELECT `+personCols+` FROM persons WHERE login = $1`, login), "person "+login)
}

// CreateRecord implements store.Store.
func (s *Store) CreateRecord(ctx context.Context, r store.Record) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO records (id, person_id, name, relationship, created) VALUES ($1, $2, $3, $4, $5)`,
		r.ID, r.PersonID, r.Name, r.Relationship, nanos(r.Created))
	return s.insertErr("record "+r.ID, err)
}

const recordCols = `id, person_id, name, relationship, created`

func scanRecord(sc scanner) (store.Record, error) {
	var r store.Record
	var created int64
	err := sc.Scan(&r.ID, &r.PersonID, &r.Name, &r.Relationship, &created)
	r.Created = fromNanos(created)
	return r, err
}

// GetRecord implements store.Store.
func (s *Store) GetRecord(ctx context.Context, id string) (store.Record, error) {
	r, err := scanRecord(s.db.QueryRowContext(ctx, `SELECT `+recordCols+` FROM records WHERE id = $1`, id))
	return r, notFound("record "+id, err)
}

// RecordsOfPerson implements store.Store.
func (s *Store) RecordsOfPerson(ctx context.Context, personID string) ([]store.Record, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+recordCols+` FROM records WHERE person_id = $1 ORDER BY created, id`, personID)
	return collectRows(rows, err, scanRecord)
}

// Authorize implements store.Store.
func (s *Store) Authorize(ctx context.Context, a store.Authorization) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO authorizations (app_id, record_id, granted) VALUES ($1, $2, $3) ON CONFLICT (app_id, record_id) DO NOTHING`,
		a.AppID, a.RecordID, nanos(a.Granted))
	if err != nil {
		return fmt.Errorf("%s: authorize: %w", s.d.Name, err)
	}
	return nil
}

// Deauthorize implements store.Store.
func (s *Store) Deauthorize(ctx context.Context, appID, recordID string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM authorizations WHERE app_id = $1 AND record_id = $2`, appID, recordID)
	return err
}

// IsAuthorized implements store.Store.
func (s *Store) IsAuthorized(ctx context.Context, appID, recordID string) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM authorizations WHERE app_id = $1 AND record_id = $2`, appID, recordID).Scan(&n)
	return n > 0, err
}
