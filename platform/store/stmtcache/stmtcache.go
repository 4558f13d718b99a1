// Package stmtcache keeps prepared statements per database connection, by
// query text, for a database/sql driver that would otherwise compile every
// statement anew: modernc.org/sqlite parses, plans and generates code for
// each Exec and Query from its SQL text, which on the stores' hot paths
// (a row per received instance, a blob per upload) costs more CPU than
// running the statement.
//
// It implements the database/sql/driver interfaces (Go's database/sql
// driver contract) as a wrapper: the *sql.DB from
// sql.OpenDB(stmtcache.New(connector, size)) behaves as one opened on
// connector, errors included, and prepares each distinct statement once per
// connection instead of once per call.
package stmtcache

import (
	"container/list"
	"context"
	"database/sql/driver"
	"errors"
	"sync"
)

// DefaultSize is a statement cache size that holds every statement of
// dicomgate's stores (about a hundred distinct queries) per connection.
const DefaultSize = 256

// New returns a connector whose connections keep up to size prepared
// statements each (the least recently used is closed first). Connections
// of a driver without driver.ConnPrepareContext are passed through as they
// are.
func New(c driver.Connector, size int) driver.Connector {
	return &connector{c: c, size: max(size, 1)}
}

type connector struct {
	c    driver.Connector
	size int
}

var _ driver.Connector = (*connector)(nil)

// Connect implements driver.Connector.
func (c *connector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := c.c.Connect(ctx)
	if err != nil {
		return nil, err
	}
	if _, ok := dc.(driver.ConnPrepareContext); !ok {
		return dc, nil
	}
	return &conn{Conn: dc, size: c.size, stmts: map[string]*list.Element{}}, nil
}

// Driver implements driver.Connector.
func (c *connector) Driver() driver.Driver { return c.c.Driver() }

// conn is a connection with its statement cache. database/sql uses a
// connection from one goroutine at a time; the mutex only guards against a
// driver that closes rows from another.
type conn struct {
	driver.Conn
	size int

	mu    sync.Mutex
	stmts map[string]*list.Element // of *entry, in lru
	lru   list.List                // most recently used first
}

type entry struct {
	query string
	st    driver.Stmt
	busy  bool // rows of a query still read from it
}

var (
	_ driver.ConnPrepareContext = (*conn)(nil)
	_ driver.ConnBeginTx        = (*conn)(nil)
	_ driver.ExecerContext      = (*conn)(nil)
	_ driver.QueryerContext     = (*conn)(nil)
	_ driver.Pinger             = (*conn)(nil)
	_ driver.SessionResetter    = (*conn)(nil)
	_ driver.Validator          = (*conn)(nil)
	_ driver.NamedValueChecker  = (*conn)(nil)
)

// errNoContext reports a prepared statement without the context methods,
// which every driver this package is used with has.
var errNoContext = errors.New("stmtcache: driver statement lacks ExecContext/QueryContext")

// stmt returns the cached statement for query, prepared now if need be,
// and the function that gives it back. A statement whose rows are still
// being read is not handed out twice: the second caller gets a statement
// of its own, closed when given back. Preparing under the lock keeps one
// statement per query text even if two callers raced here.
func (c *conn) stmt(ctx context.Context, query string) (driver.Stmt, func(), error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, cached := c.stmts[query]
	if cached {
		if e := el.Value.(*entry); !e.busy {
			e.busy = true
			c.lru.MoveToFront(el)
			return e.st, func() { c.giveBack(e) }, nil
		}
	}
	st, err := c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, query)
	if err != nil {
		return nil, nil, err
	}
	if cached { // the cached one is busy: this one stays the caller's
		return st, func() { st.Close() }, nil
	}
	e := &entry{query: query, st: st, busy: true}
	c.stmts[query] = c.lru.PushFront(e)
	c.evictLocked()
	return st, func() { c.giveBack(e) }, nil
}

func (c *conn) giveBack(e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.busy = false
	if _, cached := c.stmts[e.query]; !cached {
		e.st.Close() // evicted while in use
	}
}

// evictLocked closes the least recently used statements beyond size; one
// in use is dropped from the cache and closed when given back.
func (c *conn) evictLocked() {
	for c.lru.Len() > c.size {
		el := c.lru.Back()
		e := el.Value.(*entry)
		c.lru.Remove(el)
		delete(c.stmts, e.query)
		if !e.busy {
			e.st.Close()
		}
	}
}

// ExecContext implements driver.ExecerContext.
func (c *conn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	st, release, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	defer release()
	sx, ok := st.(driver.StmtExecContext)
	if !ok {
		return nil, errNoContext
	}
	return sx.ExecContext(ctx, args)
}

// QueryContext implements driver.QueryerContext.
func (c *conn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	st, release, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	sq, ok := st.(driver.StmtQueryContext)
	if !ok {
		release()
		return nil, errNoContext
	}
	r, err := sq.QueryContext(ctx, args)
	if err != nil {
		release()
		return nil, err
	}
	return &rows{Rows: r, release: release}, nil
}

// PrepareContext implements driver.ConnPrepareContext. A statement the
// caller prepares is the caller's to close, so it is not cached.
func (c *conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, query)
}

// BeginTx implements driver.ConnBeginTx.
func (c *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if b, ok := c.Conn.(driver.ConnBeginTx); ok {
		return b.BeginTx(ctx, opts)
	}
	if opts.Isolation != 0 || opts.ReadOnly {
		return nil, errors.New("stmtcache: driver does not support transaction options")
	}
	//lint:ignore SA1019 the fallback database/sql itself uses for such drivers
	return c.Conn.Begin()
}

// Ping implements driver.Pinger.
func (c *conn) Ping(ctx context.Context) error {
	if p, ok := c.Conn.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

// ResetSession implements driver.SessionResetter.
func (c *conn) ResetSession(ctx context.Context) error {
	if r, ok := c.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

// IsValid implements driver.Validator.
func (c *conn) IsValid() bool {
	if v, ok := c.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

// CheckNamedValue implements driver.NamedValueChecker: the driver's own
// checks where it has them, database/sql's default otherwise.
func (c *conn) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := c.Conn.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

// Close implements driver.Conn: the cached statements, then the connection.
func (c *conn) Close() error {
	c.mu.Lock()
	for el := c.lru.Front(); el != nil; el = el.Next() {
		el.Value.(*entry).st.Close()
	}
	c.lru.Init()
	c.stmts = map[string]*list.Element{}
	c.mu.Unlock()
	return c.Conn.Close()
}

// rows gives its statement back when closed.
type rows struct {
	driver.Rows
	release func()
	once    sync.Once
}

// Close implements driver.Rows.
func (r *rows) Close() error {
	err := r.Rows.Close()
	r.once.Do(r.release)
	return err
}

// ColumnTypeDatabaseTypeName implements driver.RowsColumnTypeDatabaseTypeName.
func (r *rows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := r.Rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}
