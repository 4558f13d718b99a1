package stmtcache_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"dicomgate/platform/store/stmtcache"
)

// counts are what the real driver did: every Exec and Query of
// modernc.org/sqlite prepares a statement unless the cache supplies it.
type counts struct {
	prepares atomic.Int64 // statements prepared
	closes   atomic.Int64 // statements the cache prepared and closed
}

// counting wraps the real driver's connector to keep counts.
type counting struct {
	driver.Connector
	n *counts
}

func (c counting) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &countingConn{dc.(sqliteConn), c.n}, nil
}

type sqliteConn interface {
	driver.Conn
	driver.ConnPrepareContext
	driver.ConnBeginTx
	driver.ExecerContext
	driver.QueryerContext
}

type countingConn struct {
	sqliteConn
	n *counts
}

func (c *countingConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	c.n.prepares.Add(1)
	st, err := c.sqliteConn.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	return &countingStmt{st.(sqliteStmt), c.n}, nil
}

func (c *countingConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	c.n.prepares.Add(1) // the driver prepares it inside
	return c.sqliteConn.ExecContext(ctx, q, args)
}

func (c *countingConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	c.n.prepares.Add(1)
	return c.sqliteConn.QueryContext(ctx, q, args)
}

type sqliteStmt interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

type countingStmt struct {
	sqliteStmt
	n *counts
}

func (s *countingStmt) Close() error {
	s.n.closes.Add(1)
	return s.sqliteStmt.Close()
}

// open returns a SQLite database in a fresh file holding an empty table
// kv, through the cache of size n (0: no cache), and the counts of what the
// driver did for it (the table is made without the cache, uncounted).
func open(t testing.TB, n int) (*sql.DB, *counts) {
	t.Helper()
	c, err := sqlite.NewConnector("file:" + filepath.Join(t.TempDir(), "t.db") + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	raw := sql.OpenDB(c)
	_, err = raw.Exec(`CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL)`)
	if cerr := raw.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	var cnt counts
	var conn driver.Connector = counting{c, &cnt}
	if n > 0 {
		conn = stmtcache.New(conn, n)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db, &cnt
}

func TestStatementsArePreparedOnce(t *testing.T) {
	db, n := open(t, 16)
	ctx := context.Background()
	for i := range 100 {
		if _, err := db.ExecContext(ctx, `INSERT INTO kv (k, v) VALUES (?, ?)`, fmt.Sprint(i), i); err != nil {
			t.Fatal(err)
		}
		var v int
		if err := db.QueryRowContext(ctx, `SELECT v FROM kv WHERE k = ?`, fmt.Sprint(i)).Scan(&v); err != nil || v != i {
			t.Fatalf("row %d: %d, %v", i, v, err)
		}
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if _, err := tx.ExecContext(ctx, `UPDATE kv SET v = v + 1 WHERE k = ?`, fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	var sum int
	if err := db.QueryRow(`SELECT SUM(v) FROM kv`).Scan(&sum); err != nil || sum != 4950+100 {
		t.Fatalf("sum %d, %v", sum, err)
	}
	if got := n.prepares.Load(); got != 4 {
		t.Fatalf("%d statements prepared for 4 distinct queries run 301 times", got)
	}
}

// TestWithoutCacheEveryCallPrepares checks the count the test above relies
// on: without the cache, the driver prepares on every call.
func TestWithoutCacheEveryCallPrepares(t *testing.T) {
	db, n := open(t, 0)
	for i := range 10 {
		if _, err := db.Exec(`INSERT INTO kv (k, v) VALUES (?, ?)`, fmt.Sprint(i), i); err != nil {
			t.Fatal(err)
		}
	}
	if got := n.prepares.Load(); got != 10 {
		t.Fatalf("%d prepares for 10 uncached execs", got)
	}
}

func TestSameQueryWhileItsRowsAreOpen(t *testing.T) {
	db, _ := open(t, 16)
	ctx := context.Background()
	for i := range 5 {
		db.Exec(`INSERT INTO kv (k, v) VALUES (?, ?)`, fmt.Sprint(i), i)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	const q = `SELECT k, v FROM kv WHERE v >= ? ORDER BY v`
	outer, err := tx.QueryContext(ctx, q, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for outer.Next() {
		var k string
		var v int
		if err := outer.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		// The same text again while the outer rows are read: it must not
		// reset the statement under them.
		inner, err := tx.QueryContext(ctx, q, v)
		if err != nil {
			t.Fatal(err)
		}
		m := 0
		for inner.Next() {
			m++
		}
		inner.Close()
		if m != 5-v {
			t.Fatalf("inner query from %d: %d rows, want %d", v, m, 5-v)
		}
		n++
	}
	if err := outer.Err(); err != nil || n != 5 {
		t.Fatalf("outer query: %d rows, %v", n, err)
	}
	outer.Close()
}

func TestEvictionKeepsResultsRight(t *testing.T) {
	db, cnt := open(t, 2)
	for round := range 3 {
		for i := range 4 { // four distinct statements through a cache of two
			q := fmt.Sprintf(`SELECT COUNT(*) + %d FROM kv`, i)
			var n int
			if err := db.QueryRow(q).Scan(&n); err != nil || n != i {
				t.Fatalf("round %d query %d: %d, %v", round, i, n, err)
			}
		}
	}
	if got := cnt.prepares.Load(); got != 12 {
		t.Fatalf("%d prepares cycling 4 statements through 2 slots 3 times, want 12", got)
	}
}

// TestEvictedWhileInUse evicts a statement whose rows are still read (a
// cache of one, another query inside the loop): the rows read on
// undisturbed, the evicted statement is closed once they are closed, and
// by the time the database is closed every statement prepared is closed.
func TestEvictedWhileInUse(t *testing.T) {
	db, n := open(t, 1)
	ctx := context.Background()
	for i := range 5 {
		if _, err := db.Exec(`INSERT INTO kv (k, v) VALUES (?, ?)`, fmt.Sprint(i), i); err != nil {
			t.Fatal(err)
		}
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	outer, err := tx.QueryContext(ctx, `SELECT v FROM kv ORDER BY v`)
	if err != nil {
		t.Fatal(err)
	}
	sum := 0
	for outer.Next() {
		var v int
		if err := outer.Scan(&v); err != nil {
			t.Fatal(err)
		}
		var k string
		if err := tx.QueryRowContext(ctx, `SELECT k FROM kv WHERE v = ?`, v).Scan(&k); err != nil || k != fmt.Sprint(v) {
			t.Fatalf("inner query for %d: %q, %v", v, k, err)
		}
		sum += v
	}
	if err := outer.Err(); err != nil || sum != 0+1+2+3+4 {
		t.Fatalf("outer rows: sum %d, %v", sum, err)
	}
	if err := outer.Close(); err != nil {
		t.Fatal(err)
	}
	// INSERT (evicted by the outer query), the outer query (evicted by the
	// inner one, closed with its rows), the inner one (closed with the
	// connection, re-used 4 times).
	if p, c := n.prepares.Load(), n.closes.Load(); p != 3 || c != 2 {
		t.Fatalf("%d statements prepared, %d closed before the end; want 3 and 2", p, c)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if p, c := n.prepares.Load(), n.closes.Load(); p != c {
		t.Fatalf("%d statements prepared, %d closed", p, c)
	}
}

func TestDriverErrorsPassThrough(t *testing.T) {
	db, _ := open(t, 16)
	if _, err := db.Exec(`INSERT INTO kv (k, v) VALUES ('a', 1)`); err != nil {
		t.Fatal(err)
	}
	_, err := db.Exec(`INSERT INTO kv (k, v) VALUES ('a', 1)`)
	var se *sqlite.Error
	if !errors.As(err, &se) || se.Code() != sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY {
		t.Fatalf("duplicate key: %v, want a *sqlite.Error with SQLITE_CONSTRAINT_PRIMARYKEY", err)
	}
	if _, err := db.Exec(`INSERT INTO nope VALUES (1)`); err == nil {
		t.Fatal("statement on a missing table succeeded")
	}
	// The statement that failed on a constraint is fine for the next row.
	if _, err := db.Exec(`INSERT INTO kv (k, v) VALUES ('a', 1)`); !errors.As(err, &se) {
		t.Fatalf("again: %v", err)
	}
	if _, err := db.Exec(`INSERT INTO kv (k, v) VALUES (?, ?)`, "b", 2); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkInsertAndSelect(b *testing.B) {
	for _, n := range []int{0, 64} {
		b.Run(fmt.Sprintf("cache=%d", n), func(b *testing.B) {
			db, _ := open(b, n)
			for i := range b.N {
				k := fmt.Sprint(i)
				if _, err := db.Exec(`INSERT INTO kv (k, v) VALUES (?, ?)`, k, i); err != nil {
					b.Fatal(err)
				}
				var v int
				if err := db.QueryRow(`SELECT v FROM kv WHERE k = ?`, k).Scan(&v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSelect is a point query on a warm page cache: no sync, so it
// shows what preparing costs (cache=0) and what the cache adds (cache=64).
func BenchmarkSelect(b *testing.B) {
	for _, n := range []int{0, 64} {
		b.Run(fmt.Sprintf("cache=%d", n), func(b *testing.B) {
			db, _ := open(b, n)
			for i := range 100 {
				if _, err := db.Exec(`INSERT INTO kv (k, v) VALUES (?, ?)`, fmt.Sprint(i), i); err != nil {
					b.Fatal(err)
				}
			}
			for b.Loop() {
				var v int
				if err := db.QueryRow(`SELECT v FROM kv WHERE k = ?`, "42").Scan(&v); err != nil || v != 42 {
					b.Fatal(v, err)
				}
			}
		})
	}
}

// TestConcurrentUse runs the same statements from many goroutines over a
// pool of connections, each with its own cache (go test -race).
func TestConcurrentUse(t *testing.T) {
	db, _ := open(t, 4)
	db.SetMaxOpenConns(3)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				k := fmt.Sprintf("%d-%d", g, i)
				if _, err := db.Exec(`INSERT INTO kv (k, v) VALUES (?, ?)`, k, i); err != nil {
					errs <- err
					return
				}
				var v int
				if err := db.QueryRow(`SELECT v FROM kv WHERE k = ?`, k).Scan(&v); err != nil || v != i {
					errs <- fmt.Errorf("%s: %d, %v", k, v, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM kv`).Scan(&n); err != nil || n != 400 {
		t.Fatalf("%d rows, %v", n, err)
	}
}
