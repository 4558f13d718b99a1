// Package mailsql keeps the mail outbox (package mail's Store) in SQL: SQLite
// through modernc.org/sqlite and PostgreSQL through pgx/v5, with one set of
// queries and an embedded migration set per database, applied under the
// component name "mail" in the shared schema_migrations table.
package mailsql

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"dicomgate/gateway/mail"
	"dicomgate/platform/store/stmtcache"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite"
)

// Dialect is the SQL database a Store talks to.
type Dialect int

// The supported databases.
const (
	SQLite Dialect = iota
	Postgres
)

// String names the dialect.
func (d Dialect) String() string {
	switch d {
	case SQLite:
		return "sqlite"
	case Postgres:
		return "postgres"
	}
	return fmt.Sprintf("Dialect(%d)", int(d))
}

//go:embed migrations
var migrationFS embed.FS

// Migrations returns the outbox's migration set for d, to apply with
// Migrate under Component.
func Migrations(d Dialect) fs.FS {
	sub, err := fs.Sub(migrationFS, "migrations/"+d.String())
	if err != nil {
		// Sub fails only on an invalid path, and the paths are constants.
		panic(err)
	}
	return sub
}

// Store is the outbox in an SQL database.
type Store struct {
	db      *sql.DB
	dialect Dialect
	closers []func()
}

var _ mail.Store = (*Store)(nil)

// New migrates db and returns a Store on it. db stays the caller's: Close
// does not close it.
func New(ctx context.Context, db *sql.DB, d Dialect) (*Store, error) {
	if err := Migrate(ctx, db, d, Component, Migrations(d)); err != nil {
		return nil, err
	}
	return &Store{db: db, dialect: d}, nil
}

// SQLiteDSN returns the modernc.org/sqlite DSN dicomgate opens a database
// file with: WAL so readers (the outbox listing) do not block the sender, a
// busy timeout so writers of several processes wait for one another, full
// fsync so a committed state survives a power cut, and IMMEDIATE
// transactions so a read-then-write transaction never deadlocks.
func SQLiteDSN(path string) string {
	return "file:" + path +
		"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate"
}

// OpenSQLite opens (creating it if needed) the SQLite database file at
// path, migrates it and returns a Store that owns the connection.
func OpenSQLite(ctx context.Context, path string) (*Store, error) {
	c, err := sqlite.NewConnector(SQLiteDSN(path))
	if err != nil {
		return nil, fmt.Errorf("mailsql: open %s: %w", path, err)
	}
	db := sql.OpenDB(stmtcache.New(c, stmtcache.DefaultSize))
	s, err := New(ctx, db, SQLite)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	s.closers = append(s.closers, func() { _ = db.Close() })
	return s, nil
}

// OpenPostgres connects to the PostgreSQL database at dsn (a URL or
// key=value string as pgx takes it), migrates it and returns a Store that
// owns the connection pool.
func OpenPostgres(ctx context.Context, dsn string) (*Store, error) {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("mailsql: connect: %w", err)
	}
	db := stdlib.OpenDBFromPool(pool)
	s, err := New(ctx, db, Postgres)
	if err != nil {
		_ = db.Close()
		pool.Close()
		return nil, err
	}
	s.closers = append(s.closers, func() { _ = db.Close() }, pool.Close)
	return s, nil
}

// Close releases the connections OpenSQLite or OpenPostgres made.
func (s *Store) Close() error {
	for _, c := range s.closers {
		c()
	}
	s.closers = nil
	return nil
}

// columns is the column list scanRecord reads.
const columns = `id, recipient, subject, body_text, body_html, state, attempts, last_error,
	next_attempt, lease_until, created, updated, sent`

// listColumns is columns with the bodies left out.
const listColumns = `id, recipient, subject, '', '', state, attempts, last_error,
	next_attempt, lease_until, created, updated, sent`

// Add implements mail.Store.
func (s *Store) Add(ctx context.Context, m mail.Message, now time.Time) (int64, error) {
	var id int64
	err := s.db.QueryRowContext(ctx,
		`INSERT INTO mail_outbox (recipient, subject, body_text, body_html, state, next_attempt, created, updated)
		 VALUES ($1, $2, $3, $4, 'queued', $5, $5, $5) RETURNING id`,
		m.To, m.Subject, m.Text, m.HTML, ns(now)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("mailsql: add: %w", err)
	}
	return id, nil
}

// AddOnce implements mail.Store.
func (s *Store) AddOnce(ctx context.Context, key string, m mail.Message, now time.Time) (int64, bool, error) {
	var id int64
	err := s.db.QueryRowContext(ctx,
		`INSERT INTO mail_outbox (recipient, subject, body_text, body_html, state, next_attempt, created, updated, dedupe_key)
		 VALUES ($1, $2, $3, $4, 'queued', $5, $5, $5, $6) ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING RETURNING id`,
		m.To, m.Subject, m.Text, m.HTML, ns(now), key).Scan(&id)
	if err == nil {
		return id, true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, false, fmt.Errorf("mailsql: add: %w", err)
	}
	if err := s.db.QueryRowContext(ctx, `SELECT id FROM mail_outbox WHERE dedupe_key = $1`, key).Scan(&id); err != nil {
		return 0, false, fmt.Errorf("mailsql: add: %w", err)
	}
	return id, false, nil
}

// Claim implements mail.Store. The outer state test makes the claim safe
// when two senders pick the same row; on PostgreSQL SKIP LOCKED lets them
// pick different rows instead of waiting for each other.
func (s *Store) Claim(ctx context.Context, now time.Time, lease time.Duration) (mail.Record, error) {
	lock := ""
	if s.dialect == Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	row := s.db.QueryRowContext(ctx,
		`UPDATE mail_outbox SET state = 'sending', attempts = attempts + 1, lease_until = $1, updated = $2
		 WHERE state = 'queued' AND id = (
		     SELECT id FROM mail_outbox WHERE state = 'queued' AND next_attempt <= $2
		     ORDER BY next_attempt, id LIMIT 1`+lock+`)
		 RETURNING `+columns,
		ns(now.Add(lease)), ns(now))
	r, err := scanRecord(row)
	if errors.Is(err, sql.ErrNoRows) {
		return mail.Record{}, mail.ErrNothingDue
	}
	if err != nil {
		return mail.Record{}, fmt.Errorf("mailsql: claim: %w", err)
	}
	return r, nil
}

// MarkSent implements mail.Store.
func (s *Store) MarkSent(ctx context.Context, id int64, attempt int, now time.Time) error {
	return s.settle(ctx, id, attempt,
		`UPDATE mail_outbox SET state = 'sent', sent = $3, updated = $3, lease_until = 0, last_error = ''
		 WHERE id = $1 AND attempts = $2 AND state = 'sending'`,
		ns(now))
}

// Retry implements mail.Store.
func (s *Store) Retry(ctx context.Context, id int64, attempt int, lastErr string, next time.Time) error {
	return s.settle(ctx, id, attempt,
		`UPDATE mail_outbox SET state = 'queued', next_attempt = $3, updated = $4, lease_until = 0, last_error = $5
		 WHERE id = $1 AND attempts = $2 AND state = 'sending'`,
		ns(next), ns(time.Now()), lastErr)
}

// Fail implements mail.Store.
func (s *Store) Fail(ctx context.Context, id int64, attempt int, reason string, now time.Time) error {
	return s.settle(ctx, id, attempt,
		`UPDATE mail_outbox SET state = 'failed', updated = $3, lease_until = 0, last_error = $4
		 WHERE id = $1 AND attempts = $2 AND state = 'sending'`,
		ns(now), reason)
}

// settle runs one of the updates that end a claim and tells a lost lease
// from an unknown id.
func (s *Store) settle(ctx context.Context, id int64, attempt int, query string, args ...any) error {
	res, err := s.db.ExecContext(ctx, query, append([]any{id, attempt}, args...)...)
	if err != nil {
		return fmt.Errorf("mailsql: settle message %d: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("mailsql: settle message %d: %w", id, err)
	}
	if n == 1 {
		return nil
	}
	if _, err := s.Get(ctx, id); err != nil {
		return err
	}
	return fmt.Errorf("mailsql: message %d attempt %d: %w", id, attempt, mail.ErrLeaseLost)
}

// RequeueExpired implements mail.Store.
func (s *Store) RequeueExpired(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx,
		`UPDATE mail_outbox SET state = 'queued', next_attempt = $1, updated = $1, lease_until = 0,
		     last_error = 'sender stopped during the attempt (lease expired)'
		 WHERE state = 'sending' AND lease_until < $1`,
		ns(now))
	if err != nil {
		return 0, fmt.Errorf("mailsql: requeue expired: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("mailsql: requeue expired: %w", err)
	}
	return n, nil
}

// Get implements mail.Store.
func (s *Store) Get(ctx context.Context, id int64) (mail.Record, error) {
	r, err := scanRecord(s.db.QueryRowContext(ctx, `SELECT `+columns+` FROM mail_outbox WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return mail.Record{}, fmt.Errorf("mailsql: message %d: %w", id, mail.ErrNotFound)
	}
	if err != nil {
		return mail.Record{}, fmt.Errorf("mailsql: get %d: %w", id, err)
	}
	return r, nil
}

// List implements mail.Store.
func (s *Store) List(ctx context.Context, limit int) ([]mail.Record, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+listColumns+` FROM mail_outbox ORDER BY id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("mailsql: list: %w", err)
	}
	defer rows.Close()
	var out []mail.Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, fmt.Errorf("mailsql: list: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("mailsql: list: %w", err)
	}
	return out, nil
}

// scanner is what *sql.Row and *sql.Rows share.
type scanner interface {
	Scan(dest ...any) error
}

// scanRecord reads the columns of columns or listColumns.
func scanRecord(sc scanner) (mail.Record, error) {
	var (
		r                                          mail.Record
		state                                      string
		next, leaseUntil, created, updated, sentAt int64
	)
	err := sc.Scan(&r.ID, &r.To, &r.Subject, &r.Text, &r.HTML, &state, &r.Attempts, &r.LastError,
		&next, &leaseUntil, &created, &updated, &sentAt)
	if err != nil {
		return mail.Record{}, err
	}
	r.State = mail.State(state)
	r.NextAttempt = fromNS(next)
	r.LeaseUntil = fromNS(leaseUntil)
	r.Created = fromNS(created)
	r.Updated = fromNS(updated)
	r.Sent = fromNS(sentAt)
	return r, nil
}

// ns stores a time as Unix nanoseconds; the zero time is 0.
func ns(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromNS is the inverse of ns.
func fromNS(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
