package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math"

	"dicomgate/platform/store"
)

// blobKind says which tables hold a chunked blob: record blobs (blobs,
// blob_blocks) and DOPU package blobs (package_blobs, package_blob_blocks)
// keep their SHA256Block chunks the same way, so one implementation of the
// block bookkeeping serves both.
type blobKind int

const (
	recordBlob blobKind = iota
	packageBlob
)

// String names the kind in errors.
func (k blobKind) String() string {
	if k == packageBlob {
		return "package blob"
	}
	return "blob"
}

func (k blobKind) blobsTable() string {
	if k == packageBlob {
		return "package_blobs"
	}
	return "blobs"
}

func (k blobKind) blocksTable() string {
	if k == packageBlob {
		return "package_blob_blocks"
	}
	return "blob_blocks"
}

// querier is what *sql.DB and *sql.Tx have in common: the block
// bookkeeping runs alone or inside a larger transaction.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// putBlock records block b of blob blobID. Receiving the same block again
// is fine (a retried upload); other bytes at that index are store.ErrConflict.
func (s *Store) putBlock(ctx context.Context, k blobKind, blobID string, b store.Block) error {
	return s.tx(ctx, func(tx *sql.Tx) error { return s.putBlockIn(ctx, tx, k, blobID, b) })
}

func (s *Store) putBlockIn(ctx context.Context, q querier, k blobKind, blobID string, b store.Block) error {
	// Insert first: a new block (the usual case) costs one statement, and
	// two concurrent sends of one block cannot both miss the row and then
	// collide on the key.
	res, err := q.ExecContext(ctx, `INSERT INTO `+k.blocksTable()+` (blob_id, idx, length, hash) VALUES ($1, $2, $3, $4)
		ON CONFLICT (blob_id, idx) DO NOTHING`, blobID, b.Index, b.Length, b.Hash[:])
	if err != nil {
		return s.insertErr(k.String()+" block", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return err
	}
	var length int64
	var hash []byte
	err = q.QueryRowContext(ctx, `SELECT length, hash FROM `+k.blocksTable()+` WHERE blob_id = $1 AND idx = $2`, blobID, b.Index).Scan(&length, &hash)
	switch {
	case err != nil:
		return err
	case length != b.Length || string(hash) != string(b.Hash[:]):
		return fmt.Errorf("block %d of %s %s was received before with other bytes: %w", b.Index, k, blobID, store.ErrConflict)
	}
	return nil
}

// setBlobTotal sets the total length of blob blobID once; announcing the
// same total again is fine, another one is store.ErrConflict.
func (s *Store) setBlobTotal(ctx context.Context, q querier, k blobKind, blobID string, total int64) error {
	res, err := q.ExecContext(ctx, `UPDATE `+k.blobsTable()+` SET total = $1 WHERE id = $2 AND (total = -1 OR total = $1)`, total, blobID)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		var one int
		if err := q.QueryRowContext(ctx, `SELECT 1 FROM `+k.blobsTable()+` WHERE id = $1`, blobID).Scan(&one); err != nil {
			return notFound(k.String()+" "+blobID, err)
		}
		return fmt.Errorf("%s %s was announced with another total length: %w", k, blobID, store.ErrConflict)
	}
	return nil
}

// execLazily runs one write whose durability nobody waits for: with the
// dialect's RelaxSync its commit does not sync, and the next synced commit
// on the database makes it durable along with its own writes. The
// connection's sync setting is restored before it goes back to the pool;
// where that fails the connection is discarded, so no later write that
// is acknowledged can commit without syncing.
func (s *Store) execLazily(ctx context.Context, query string, args ...any) error {
	if s.d.RelaxSync == "" {
		_, err := s.db.ExecContext(ctx, query, args...)
		return err
	}
	c, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.ExecContext(ctx, s.d.RelaxSync)
	if err == nil {
		_, err = c.ExecContext(ctx, query, args...)
	}
	if _, rerr := c.ExecContext(context.WithoutCancel(ctx), s.d.RestoreSync); rerr != nil {
		_ = c.Raw(func(any) error { return driver.ErrBadConn })
		return errors.Join(err, fmt.Errorf("%s: restore sync: %w", s.d.Name, rerr))
	}
	return err
}

// blocks lists the blocks of blob blobID with from <= index < to (to < 0:
// no upper bound), in index order.
func (s *Store) blocks(ctx context.Context, k blobKind, blobID string, from, to int64) ([]store.Block, error) {
	if to < 0 {
		to = math.MaxInt64
	}
	rows, err := s.db.QueryContext(ctx, `SELECT idx, length, hash FROM `+k.blocksTable()+` WHERE blob_id = $1 AND idx >= $2 AND idx < $3 ORDER BY idx`,
		blobID, from, to)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Block
	for rows.Next() {
		var b store.Block
		var h []byte
		if err := rows.Scan(&b.Index, &b.Length, &h); err != nil {
			return nil, err
		}
		if len(h) != sha256.Size {
			return nil, fmt.Errorf("%s: block %d of %s %s has a %d-byte hash", s.d.Name, b.Index, k, blobID, len(h))
		}
		copy(b.Hash[:], h)
		out = append(out, b)
	}
	return out, rows.Err()
}

// scanner is what *sql.Row and *sql.Rows have in common.
type scanner interface{ Scan(...any) error }

// collectRows scans every row of a query with scan.
func collectRows[T any](rows *sql.Rows, err error, scan func(scanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// scanString scans a row of one text column.
func scanString(sc scanner) (string, error) {
	var v string
	err := sc.Scan(&v)
	return v, err
}
