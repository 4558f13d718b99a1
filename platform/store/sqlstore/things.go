package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"time"

	"dicomgate/platform/store"
)

// PutThings implements store.Store: every write in one transaction; an
// update is a compare-and-swap on the version stamp.
func (s *Store) PutThings(ctx context.Context, ws []store.ThingWrite) error {
	return s.tx(ctx, func(tx *sql.Tx) error { return s.putThings(ctx, tx, ws) })
}

// PickUpThings implements store.Store: the package state and the things
// change in one transaction.
func (s *Store) PickUpThings(ctx context.Context, code string, claimedUntil time.Time, recordID string, at time.Time, ws []store.ThingWrite) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE connect_packages SET state = $1, picked_up = $2, record_id = $3, ciphertext = $4
			WHERE code = $5 AND state = $6 AND claimed_until = $7`,
			store.PackagePickedUp, nanos(at), recordID, []byte{}, code, store.PackageClaimed, nanos(claimedUntil))
		if err := oneRow(res, err, "package"); err != nil {
			return err
		}
		return s.putThings(ctx, tx, ws)
	})
}

func (s *Store) putThings(ctx context.Context, tx *sql.Tx, ws []store.ThingWrite) error {
	for _, w := range ws {
		t := w.Thing
		if w.PrevVersion == "" {
			_, err := tx.ExecContext(ctx, `INSERT INTO things (record_id, id, version_stamp, type_id, state, flags, eff_date,
					created, created_app, updated, updated_app, data_xml, signature_info, tags)
					VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
				t.RecordID, t.ID, t.VersionStamp, t.TypeID, t.State, int64(t.Flags), nanos(t.EffDate),
				nanos(t.Created), t.CreatedApp, nanos(t.Updated), t.UpdatedApp, nonNil(t.DataXML), nonNil(t.SignatureInfo), t.Tags)
			if err := s.insertErr("thing "+t.ID, err); err != nil {
				return err
			}
		} else {
			res, err := tx.ExecContext(ctx, `UPDATE things SET version_stamp = $1, type_id = $2, state = $3, flags = $4, eff_date = $5,
					updated = $6, updated_app = $7, data_xml = $8, signature_info = $9, tags = $10
					WHERE record_id = $11 AND id = $12 AND version_stamp = $13`,
				t.VersionStamp, t.TypeID, t.State, int64(t.Flags), nanos(t.EffDate),
				nanos(t.Updated), t.UpdatedApp, nonNil(t.DataXML), nonNil(t.SignatureInfo), t.Tags,
				t.RecordID, t.ID, w.PrevVersion)
			if err != nil {
				return fmt.Errorf("%s: update thing %s: %w", s.d.Name, t.ID, err)
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 0 {
				var cur string
				err := tx.QueryRowContext(ctx, `SELECT version_stamp FROM things WHERE record_id = $1 AND id = $2`, t.RecordID, t.ID).Scan(&cur)
				if err != nil {
					return notFound("thing "+t.ID, err)
				}
				return fmt.Errorf("thing %s is at version %s, not %s: %w", t.ID, cur, w.PrevVersion, store.ErrVersionMismatch)
			}
			for _, table := range []string{"thing_blobs", "thing_keys"} {
				if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE record_id = $1 AND thing_id = $2`, t.RecordID, t.ID); err != nil {
					return err
				}
			}
		}
		for i, b := range t.Blobs {
			_, err := tx.ExecContext(ctx, `INSERT INTO thing_blobs (record_id, thing_id, idx, name, content_type, blob_id, content_length, hash_info)
					VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
				t.RecordID, t.ID, i, b.Name, b.ContentType, b.BlobID, b.ContentLength, nonNil(b.HashInfo))
			if err := s.insertErr("blob reference "+b.Name, err); err != nil {
				return err
			}
		}
		paths := make([]string, 0, len(t.Keys))
		for p := range t.Keys {
			paths = append(paths, p)
		}
		sort.Strings(paths)
		for _, p := range paths {
			_, err := tx.ExecContext(ctx, `INSERT INTO thing_keys (record_id, thing_id, path, value) VALUES ($1, $2, $3, $4)`,
				t.RecordID, t.ID, p, t.Keys[p])
			if err := s.insertErr("thing key "+p, err); err != nil {
				return err
			}
		}
	}
	return nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// maxKeyedIDs bounds the thing ids a key lookup turns into an id filter;
// a key shared by more things is joined instead.
const maxKeyedIDs = 500

// QueryThings implements store.Store. A key filter is looked up first on
// its own index and becomes an id filter: the plan then never depends on
// table statistics, which PostgreSQL lacks right after bulk inserts (it
// would otherwise walk every thing of the record).
func (s *Store) QueryThings(ctx context.Context, q store.ThingQuery) ([]store.Thing, error) {
	if q.KeyPath != "" {
		ids, err := s.keyedIDs(ctx, q)
		if err != nil {
			return nil, err
		}
		if len(ids) <= maxKeyedIDs {
			if len(q.IDs) > 0 {
				want := map[string]bool{}
				for _, id := range q.IDs {
					want[id] = true
				}
				var both []string
				for _, id := range ids {
					if want[id] {
						both = append(both, id)
					}
				}
				ids = both
			}
			if len(ids) == 0 {
				return nil, nil
			}
			q.IDs, q.KeyPath, q.KeyValue = ids, "", ""
		}
	}
	var (
		where = []string{"t.record_id = $1"}
		args  = []any{q.RecordID}
	)
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	in := func(col string, vs []string) {
		if len(vs) == 0 {
			return
		}
		ps := make([]string, len(vs))
		for i, v := range vs {
			ps[i] = arg(v)
		}
		where = append(where, col+" IN ("+strings.Join(ps, ", ")+")")
	}
	in("t.id", q.IDs)
	in("t.type_id", q.TypeIDs)
	in("t.state", q.States)
	from := "things t"
	if q.KeyPath != "" {
		from += " JOIN thing_keys k ON k.record_id = t.record_id AND k.thing_id = t.id"
		where = append(where, "k.path = "+arg(q.KeyPath), "k.value = "+arg(q.KeyValue))
	}
	query := `SELECT t.id, t.version_stamp, t.type_id, t.state, t.flags, t.eff_date, t.created, t.created_app,
		t.updated, t.updated_app, t.data_xml, t.signature_info, t.tags FROM ` + from +
		` WHERE ` + strings.Join(where, " AND ") + ` ORDER BY t.eff_date DESC, t.id`
	if q.Limit > 0 {
		query += " LIMIT " + arg(q.Limit)
	}
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: query things: %w", s.d.Name, err)
	}
	var out []store.Thing
	byID := map[string]int{}
	for rows.Next() {
		t := store.Thing{RecordID: q.RecordID}
		var flags, eff, created, updated int64
		if err := rows.Scan(&t.ID, &t.VersionStamp, &t.TypeID, &t.State, &flags, &eff, &created, &t.CreatedApp,
			&updated, &t.UpdatedApp, &t.DataXML, &t.SignatureInfo, &t.Tags); err != nil {
			rows.Close()
			return nil, err
		}
		t.Flags, t.EffDate, t.Created, t.Updated = uint32(flags), fromNanos(eff), fromNanos(created), fromNanos(updated)
		byID[t.ID] = len(out)
		out = append(out, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, nil
	}
	if err := s.attach(ctx, q.RecordID, out, byID); err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Store) keyedIDs(ctx context.Context, q store.ThingQuery) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT thing_id FROM thing_keys WHERE record_id = $1 AND path = $2 AND value = $3 LIMIT $4`,
		q.RecordID, q.KeyPath, q.KeyValue, maxKeyedIDs+1)
	if err != nil {
		return nil, fmt.Errorf("%s: query thing keys: %w", s.d.Name, err)
	}
	return collectRows(rows, nil, scanString)
}

// attach loads blobs and keys of the things found, in batches so a large
// page does not exceed the backends' parameter limits.
func (s *Store) attach(ctx context.Context, recordID string, out []store.Thing, byID map[string]int) error {
	const batch = 500
	for start := 0; start < len(out); start += batch {
		end := min(start+batch, len(out))
		args := []any{recordID}
		ps := make([]string, 0, end-start)
		for _, t := range out[start:end] {
			args = append(args, t.ID)
			ps = append(ps, fmt.Sprintf("$%d", len(args)))
		}
		inList := strings.Join(ps, ", ")
		rows, err := s.db.QueryContext(ctx, `SELECT thing_id, name, content_type, blob_id, content_length, hash_info FROM thing_blobs
			WHERE record_id = $1 AND thing_id IN (`+inList+`) ORDER BY thing_id, idx`, args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			var b store.ThingBlob
			if err := rows.Scan(&id, &b.Name, &b.ContentType, &b.BlobID, &b.ContentLength, &b.HashInfo); err != nil {
				rows.Close()
				return err
			}
			t := &out[byID[id]]
			t.Blobs = append(t.Blobs, b)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		rows, err = s.db.QueryContext(ctx, `SELECT thing_id, path, value FROM thing_keys WHERE record_id = $1 AND thing_id IN (`+inList+`)`, args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id, p, v string
			if err := rows.Scan(&id, &p, &v); err != nil {
				rows.Close()
				return err
			}
			t := &out[byID[id]]
			if t.Keys == nil {
				t.Keys = map[string]string{}
			}
			t.Keys[p] = v
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return nil
}

const insertBlob = `INSERT INTO blobs (id, record_id, app_id, state, block_size, max_size, total, size, hash, created, completed)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`

func blobArgs(b store.Blob) []any {
	return []any{b.ID, b.RecordID, b.AppID, b.State, b.BlockSize, b.MaxSize, b.Total, b.Size, nonNil(b.Hash), nanos(b.Created), nanos(b.Completed)}
}

// CreateBlob implements store.Store.
func (s *Store) CreateBlob(ctx context.Context, b store.Blob) error {
	_, err := s.db.ExecContext(ctx, insertBlob, blobArgs(b)...)
	return s.insertErr("blob "+b.ID, err)
}

const blobCols = `id, record_id, app_id, state, block_size, max_size, total, size, hash, created, completed`

func scanBlob(sc scanner) (store.Blob, error) {
	var b store.Blob
	var created, completed int64
	err := sc.Scan(&b.ID, &b.RecordID, &b.AppID, &b.State, &b.BlockSize, &b.MaxSize, &b.Total, &b.Size, &b.Hash, &created, &completed)
	b.Created, b.Completed = fromNanos(created), fromNanos(completed)
	if len(b.Hash) == 0 {
		b.Hash = nil
	}
	return b, err
}

// GetBlob implements store.Store.
func (s *Store) GetBlob(ctx context.Context, id string) (store.Blob, error) {
	b, err := scanBlob(s.db.QueryRowContext(ctx, `SELECT `+blobCols+` FROM blobs WHERE id = $1`, id))
	return b, notFound("blob "+id, err)
}

// PutBlock implements store.Store.
func (s *Store) PutBlock(ctx context.Context, blobID string, b store.Block) error {
	return s.putBlock(ctx, recordBlob, blobID, b)
}

// SetBlobTotal implements store.Store.
func (s *Store) SetBlobTotal(ctx context.Context, blobID string, total int64) error {
	return s.setBlobTotal(ctx, s.db, recordBlob, blobID, total)
}

// Blocks implements store.Store.
func (s *Store) Blocks(ctx context.Context, blobID string, from, to int64) ([]store.Block, error) {
	return s.blocks(ctx, recordBlob, blobID, from, to)
}

// CompleteBlob implements store.Store.
func (s *Store) CompleteBlob(ctx context.Context, blobID string, size int64, hash []byte, at time.Time) error {
	return s.completeBlobIn(ctx, s.db, blobID, store.BlobCompletion{Size: size, Hash: hash, At: at})
}

func (s *Store) completeBlobIn(ctx context.Context, q querier, blobID string, c store.BlobCompletion) error {
	res, err := q.ExecContext(ctx, `UPDATE blobs SET state = $1, size = $2, hash = $3, completed = $4 WHERE id = $5 AND state = $6`,
		store.BlobComplete, c.Size, c.Hash, nanos(c.At), blobID, store.BlobUploading)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		b, err := scanBlob(q.QueryRowContext(ctx, `SELECT `+blobCols+` FROM blobs WHERE id = $1`, blobID))
		if err != nil {
			return notFound("blob "+blobID, err)
		}
		if b.State == store.BlobComplete && b.Size == c.Size && string(b.Hash) == string(c.Hash) {
			return nil // completing twice is idempotent
		}
		return fmt.Errorf("blob %s is %s: %w", blobID, b.State, store.ErrConflict)
	}
	return nil
}

// CreateBlobLazily is CreateBlob without a sync of its own: the blob's row
// becomes durable with the next synced commit, at the latest the one that
// records the blob's first chunk before that chunk is acknowledged. Until
// then nobody relies on the row; after a crash the blob may be gone.
func (s *Store) CreateBlobLazily(ctx context.Context, b store.Blob) error {
	return s.insertErr("blob "+b.ID, s.execLazily(ctx, insertBlob, blobArgs(b)...))
}

// PutChunk records, in one transaction (one sync), what one received
// chunk of blob blobID adds: its announced total length (total < 0: none),
// its new blocks, and, when done is not nil, the blob's completion. The
// checks are those of SetBlobTotal, PutBlock and CompleteBlob.
func (s *Store) PutChunk(ctx context.Context, blobID string, total int64, blocks []store.Block, done *store.BlobCompletion) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if total >= 0 {
			if err := s.setBlobTotal(ctx, tx, recordBlob, blobID, total); err != nil {
				return err
			}
		}
		for _, b := range blocks {
			if err := s.putBlockIn(ctx, tx, recordBlob, blobID, b); err != nil {
				return err
			}
		}
		if done != nil {
			return s.completeBlobIn(ctx, tx, blobID, *done)
		}
		return nil
	})
}

// UnreferencedBlobs implements store.Store.
func (s *Store) UnreferencedBlobs(ctx context.Context, cutoff time.Time) ([]store.Blob, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+blobCols+` FROM blobs b WHERE b.created < $1
		AND NOT EXISTS (SELECT 1 FROM thing_blobs tb WHERE tb.blob_id = b.id) ORDER BY b.created`, nanos(cutoff))
	return collectRows(rows, err, scanBlob)
}

// DeleteBlob implements store.Store. A blob still referenced by a thing is
// not deleted (store.ErrConflict).
func (s *Store) DeleteBlob(ctx context.Context, id string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM thing_blobs WHERE blob_id = $1`, id).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("blob %s is referenced by %d things: %w", id, n, store.ErrConflict)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM blob_blocks WHERE blob_id = $1`, id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM blobs WHERE id = $1`, id)
		return err
	})
}
