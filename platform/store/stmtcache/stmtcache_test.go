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

// counting counts the statements the real driver prepares: every Exec and
// Query of modernc.org/sqlite prepares one unless the cache supplies it.
type counting struct {
	driver.Connector
	prepares *atomic.Int64
}

func (c counting) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &countingConn{dc.(sqliteConn), c.prepares}, nil
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
	prepares *atomic.Int64
}

func (c *countingConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	c.prepares.Add(1)
	return c.sqliteConn.PrepareContext(ctx, q)
}

func (c *countingConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	c.prepares.Add(1) // the driver prepares it inside
	return c.sqliteConn.ExecContext(ctx, q, args)
}

func (c *countingConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	c.prepares.Add(1)
	return c.sqliteConn.QueryContext(ctx, q, args)
}

// open returns a SQLite database in a fresh file, through the cache of size
// n (0: no cache), and the count of statements the driver prepared.
func open(t testing.TB, n int) (*sql.DB, *atomic.Int64) {
	t.Helper()
	c, err := sqlite.NewConnector("file:" + filepath.Join(t.TempDir(), "t.db") + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	var prepares atomic.Int64
	var conn driver.Connector = counting{c, &prepares}
	if n > 0 {
		conn = stmtcache.New(conn, n)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	prepares.Store(0)
	return db, &prepares
}

func TestStatementsArePreparedOnce(t *testing.T) {
	db, prepares := open(t, 16)
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
	if got := prepares.Load(); got != 4 {
		t.Fatalf("%d statements prepared for 4 distinct queries run 301 times", got)
	}
}

// TestWithoutCacheEveryCallPrepares checks the count the test above relies
// on: without the cache, the driver prepares on every call.
func TestWithoutCacheEveryCallPrepares(t *testing.T) {
	db, prepares := open(t, 0)
	for i := range 10 {
		if _, err := db.Exec(`INSERT INTO kv (k, v) VALUES (?, ?)`, fmt.Sprint(i), i); err != nil {
			t.Fatal(err)
		}
	}
	if got := prepares.Load(); got != 10 {
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
	db, prepares := open(t, 2)
	for round := range 3 {
		for i := range 4 { // four distinct statements through a cache of two
			q := fmt.Sprintf(`SELECT COUNT(*) + %d FROM kv`, i)
			var n int
			if err := db.QueryRow(q).Scan(&n); err != nil || n != i {
				t.Fatalf("round %d query %d: %d, %v", round, i, n, err)
			}
		}
	}
	if got := prepares.Load(); got != 12 {
		t.Fatalf("%d prepares cycling 4 statements through 2 slots 3 times, want 12", got)
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
