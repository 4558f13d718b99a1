package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"dicomgate/platform/store"
)

// ReserveIdentityCode implements store.Connect.
func (s *Store) ReserveIdentityCode(ctx context.Context, code string, at time.Time) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO identity_codes (code, created) VALUES ($1, $2)`, code, nanos(at))
	return s.insertErr("identity code", err)
}

func (s *Store) insertPackage(ctx context.Context, tx *sql.Tx, p store.ConnectPackage) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO connect_packages (code, app_id, external_id, friendly_name, question, state,
		data_xml, ciphertext, wrong_answers, created, expires, claimed_until, picked_up, record_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $10, 0, 0, '')`,
		p.IdentityCode, p.AppID, p.ExternalID, p.FriendlyName, p.Question, p.State,
		nonNil(p.DataXML), nonNil(p.Ciphertext), nanos(p.Created), nanos(p.Expires))
	return s.insertErr("package", err)
}

// attachBlobs makes the package the owner of its streamed blobs: each must
// be complete, of the package's app and not yet owned.
func attachBlobs(ctx context.Context, tx *sql.Tx, p store.ConnectPackage) error {
	for i, id := range p.BlobIDs {
		res, err := tx.ExecContext(ctx, `UPDATE package_blobs SET code = $1, idx = $2
			WHERE id = $3 AND app_id = $4 AND state = $5 AND code = ''`,
			p.IdentityCode, i, id, p.AppID, store.BlobComplete)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("package blob %s: %w", id, store.ErrPackageBlobUnavailable)
		}
	}
	return nil
}

// CreatePackage implements store.Connect.
func (s *Store) CreatePackage(ctx context.Context, p store.ConnectPackage) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.insertPackage(ctx, tx, p); err != nil {
			return err
		}
		return attachBlobs(ctx, tx, p)
	})
}

// FillPackage implements store.Connect.
func (s *Store) FillPackage(ctx context.Context, p store.ConnectPackage) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var state, app string
		err := tx.QueryRowContext(ctx, `SELECT state, app_id FROM connect_packages WHERE code = $1`, p.IdentityCode).Scan(&state, &app)
		if err != nil {
			return notFound("package", err)
		}
		if app != p.AppID {
			return fmt.Errorf("package: %w", store.ErrNotFound)
		}
		if state != store.PackageAllocated {
			return fmt.Errorf("package is %s: %w", state, store.ErrNotPending)
		}
		_, err = tx.ExecContext(ctx, `UPDATE connect_packages SET external_id = $1, friendly_name = $2, question = $3, state = $4,
			data_xml = $5, ciphertext = $6, created = $7, expires = $8 WHERE code = $9`,
			p.ExternalID, p.FriendlyName, p.Question, store.PackagePending, nonNil(p.DataXML), nonNil(p.Ciphertext),
			nanos(p.Created), nanos(p.Expires), p.IdentityCode)
		if err != nil {
			return err
		}
		return attachBlobs(ctx, tx, p)
	})
}

const packageCols = `code, app_id, external_id, friendly_name, question, state, data_xml, ciphertext, wrong_answers,
	created, expires, claimed_until, picked_up, record_id`

func scanPackage(sc scanner) (store.ConnectPackage, error) {
	var p store.ConnectPackage
	var created, expires, claimed, picked int64
	err := sc.Scan(&p.IdentityCode, &p.AppID, &p.ExternalID, &p.FriendlyName, &p.Question, &p.State, &p.DataXML, &p.Ciphertext,
		&p.WrongAnswers, &created, &expires, &claimed, &picked, &p.RecordID)
	p.Created, p.Expires, p.ClaimedUntil, p.PickedUp = fromNanos(created), fromNanos(expires), fromNanos(claimed), fromNanos(picked)
	return p, err
}

// GetPackage implements store.Connect.
func (s *Store) GetPackage(ctx context.Context, code string) (store.ConnectPackage, error) {
	p, err := scanPackage(s.db.QueryRowContext(ctx, `SELECT `+packageCols+` FROM connect_packages WHERE code = $1`, code))
	if err != nil {
		return p, notFound("package", err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM package_blobs WHERE code = $1 ORDER BY idx`, code)
	p.BlobIDs, err = collectRows(rows, err, scanString)
	return p, err
}

// TakePackageTry implements store.Connect.
func (s *Store) TakePackageTry(ctx context.Context, code string, max int) (int, error) {
	return s.takeTry(ctx, "connect_packages", `state = '`+store.PackagePending+`'`, code, max)
}

// ReturnPackageTry implements store.Connect.
func (s *Store) ReturnPackageTry(ctx context.Context, code string) error {
	return s.returnTry(ctx, "connect_packages", code)
}

// TakeConnectTry implements store.Connect.
func (s *Store) TakeConnectTry(ctx context.Context, code string, max int) (int, error) {
	return s.takeTry(ctx, "connect_requests", `state IN ('`+store.ConnectPending+`', '`+store.ConnectValidated+`')`, code, max)
}

// ReturnConnectTry implements store.Connect.
func (s *Store) ReturnConnectTry(ctx context.Context, code string) error {
	return s.returnTry(ctx, "connect_requests", code)
}

// takeTry increments the counter only below max, in one UPDATE, so that
// concurrent answers each take their own try and at most max are taken.
func (s *Store) takeTry(ctx context.Context, table, stateCond, code string, max int) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `UPDATE `+table+` SET wrong_answers = wrong_answers + 1
		WHERE code = $1 AND `+stateCond+` AND wrong_answers < $2 RETURNING wrong_answers`, code, max).Scan(&n)
	if err == nil {
		return n, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, err
	}
	// Nothing taken: say why.
	var pending bool
	err = s.db.QueryRowContext(ctx, `SELECT `+stateCond+` FROM `+table+` WHERE code = $1`, code).Scan(&pending)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, fmt.Errorf("%s: %w", table, store.ErrNotFound)
	case err != nil:
		return 0, err
	case !pending:
		return 0, fmt.Errorf("%s: %w", table, store.ErrNotPending)
	}
	return 0, fmt.Errorf("%s: %w", table, store.ErrNoTriesLeft)
}

func (s *Store) returnTry(ctx context.Context, table, code string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE `+table+` SET wrong_answers = wrong_answers - 1 WHERE code = $1 AND wrong_answers > 0`, code)
	return err
}

// ClaimPackage implements store.Connect.
func (s *Store) ClaimPackage(ctx context.Context, code string, now, until time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE connect_packages SET state = $1, claimed_until = $2
		WHERE code = $3 AND (state = $4 OR (state = $1 AND claimed_until < $5))`,
		store.PackageClaimed, nanos(until), code, store.PackagePending, nanos(now))
	return oneRow(res, err, "package")
}

func oneRow(res sql.Result, err error, what string) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, store.ErrNotPending)
	}
	return nil
}

// ReleasePackage implements store.Connect.
func (s *Store) ReleasePackage(ctx context.Context, code string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE connect_packages SET state = $1, claimed_until = 0 WHERE code = $2 AND state = $3`,
		store.PackagePending, code, store.PackageClaimed)
	return oneRow(res, err, "package")
}

// CompletePickUp implements store.Connect.
func (s *Store) CompletePickUp(ctx context.Context, code, recordID string, at time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE connect_packages SET state = $1, picked_up = $2, record_id = $3, ciphertext = $4
		WHERE code = $5 AND state = $6`,
		store.PackagePickedUp, nanos(at), recordID, []byte{}, code, store.PackageClaimed)
	return oneRow(res, err, "package")
}

// DeletePendingPackages implements store.Connect.
func (s *Store) DeletePendingPackages(ctx context.Context, appID, code, externalID string) (int, []string, error) {
	var (
		n     int
		blobs []string
	)
	err := s.tx(ctx, func(tx *sql.Tx) error {
		col, val := "code", code
		if code == "" {
			col, val = "external_id", externalID
		}
		rows, err := tx.QueryContext(ctx, `SELECT code FROM connect_packages WHERE app_id = $1 AND `+col+` = $2 AND state IN ($3, $4)`,
			appID, val, store.PackageAllocated, store.PackagePending)
		codes, err := collectRows(rows, err, scanString)
		if err != nil {
			return err
		}
		for _, c := range codes {
			rows, err := tx.QueryContext(ctx, `SELECT id FROM package_blobs WHERE code = $1`, c)
			ids, err := collectRows(rows, err, scanString)
			if err != nil {
				return err
			}
			blobs = append(blobs, ids...)
			if _, err := tx.ExecContext(ctx, `DELETE FROM package_blobs WHERE code = $1`, c); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM connect_packages WHERE code = $1`, c); err != nil {
				return err
			}
		}
		n = len(codes)
		return nil
	})
	return n, blobs, err
}

// ExpiredPackages implements store.Connect.
func (s *Store) ExpiredPackages(ctx context.Context, now time.Time) ([]store.ConnectPackage, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+packageCols+` FROM connect_packages WHERE expires <= $1 AND state IN ($2, $3, $4) ORDER BY expires`,
		nanos(now), store.PackageAllocated, store.PackagePending, store.PackageClaimed)
	return collectRows(rows, err, scanPackage)
}

// CreatePackageBlob implements store.Connect.
func (s *Store) CreatePackageBlob(ctx context.Context, b store.PackageBlob) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO package_blobs (id, app_id, state, pre_chunk_size, post_chunk_size, max_size, total, size, code, idx, created, completed)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, '', 0, $9, $10)`,
		b.ID, b.AppID, b.State, b.PreChunkSize, b.PostChunkSize, b.MaxSize, b.Total, b.Size, nanos(b.Created), nanos(b.Completed))
	return s.insertErr("package blob "+b.ID, err)
}

const packageBlobCols = `id, app_id, state, pre_chunk_size, post_chunk_size, max_size, total, size, code, created, completed`

func scanPackageBlob(sc scanner) (store.PackageBlob, error) {
	var b store.PackageBlob
	var created, completed int64
	err := sc.Scan(&b.ID, &b.AppID, &b.State, &b.PreChunkSize, &b.PostChunkSize, &b.MaxSize, &b.Total, &b.Size, &b.IdentityCode, &created, &completed)
	b.Created, b.Completed = fromNanos(created), fromNanos(completed)
	return b, err
}

// GetPackageBlob implements store.Connect.
func (s *Store) GetPackageBlob(ctx context.Context, id string) (store.PackageBlob, error) {
	b, err := scanPackageBlob(s.db.QueryRowContext(ctx, `SELECT `+packageBlobCols+` FROM package_blobs WHERE id = $1`, id))
	return b, notFound("package blob "+id, err)
}

// PutPackageBlock implements store.Connect.
func (s *Store) PutPackageBlock(ctx context.Context, blobID string, b store.Block) error {
	return s.putBlock(ctx, packageBlob, blobID, b)
}

// SetPackageBlobTotal implements store.Connect.
func (s *Store) SetPackageBlobTotal(ctx context.Context, blobID string, total int64) error {
	return s.setBlobTotal(ctx, s.db, packageBlob, blobID, total)
}

// PackageBlocks implements store.Connect.
func (s *Store) PackageBlocks(ctx context.Context, blobID string, from, to int64) ([]store.Block, error) {
	return s.blocks(ctx, packageBlob, blobID, from, to)
}

// CompletePackageBlob implements store.Connect.
func (s *Store) CompletePackageBlob(ctx context.Context, blobID string, size int64, at time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE package_blobs SET state = $1, size = $2, completed = $3 WHERE id = $4 AND state = $5`,
		store.BlobComplete, size, nanos(at), blobID, store.BlobUploading)
	if err := oneRow(res, err, "package blob"); err != nil {
		b, gerr := s.GetPackageBlob(ctx, blobID)
		if gerr != nil {
			return gerr
		}
		if b.State == store.BlobComplete && b.Size == size {
			return nil
		}
		return fmt.Errorf("package blob %s: %w", blobID, store.ErrConflict)
	}
	return nil
}

// UnreferencedPackageBlobs implements store.Connect.
func (s *Store) UnreferencedPackageBlobs(ctx context.Context, cutoff time.Time) ([]store.PackageBlob, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+packageBlobCols+` FROM package_blobs WHERE code = '' AND created < $1`, nanos(cutoff))
	return collectRows(rows, err, scanPackageBlob)
}

// DeletePackageBlob implements store.Connect.
func (s *Store) DeletePackageBlob(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM package_blobs WHERE id = $1`, id)
	return err
}

// CreateConnectRequest implements store.Connect.
func (s *Store) CreateConnectRequest(ctx context.Context, r store.ConnectRequest) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM connect_requests WHERE app_id = $1 AND external_id = $2 AND state = $3`,
			r.AppID, r.ExternalID, store.ConnectPending).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return store.ErrPendingExists
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO connect_requests (code, app_id, external_id, friendly_name, question, answer_hash,
			callback_url, state, wrong_answers, created, expires, person_id, record_id, authorized)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $10, '', '', 0)`,
			r.IdentityCode, r.AppID, r.ExternalID, r.FriendlyName, r.Question, r.AnswerHash, r.CallbackURL,
			store.ConnectPending, nanos(r.Created), nanos(r.Expires))
		if s.isUnique(err) {
			// A concurrent create won the partial unique index.
			return store.ErrPendingExists
		}
		return s.insertErr("connect request", err)
	})
}

const connectCols = `code, app_id, external_id, friendly_name, question, answer_hash, callback_url, state, wrong_answers,
	created, expires, person_id, record_id, authorized`

func scanConnect(sc scanner) (store.ConnectRequest, error) {
	var r store.ConnectRequest
	var created, expires, authorized int64
	err := sc.Scan(&r.IdentityCode, &r.AppID, &r.ExternalID, &r.FriendlyName, &r.Question, &r.AnswerHash, &r.CallbackURL,
		&r.State, &r.WrongAnswers, &created, &expires, &r.PersonID, &r.RecordID, &authorized)
	r.Created, r.Expires, r.Authorized = fromNanos(created), fromNanos(expires), fromNanos(authorized)
	return r, err
}

// GetConnectRequest implements store.Connect.
func (s *Store) GetConnectRequest(ctx context.Context, code string) (store.ConnectRequest, error) {
	r, err := scanConnect(s.db.QueryRowContext(ctx, `SELECT `+connectCols+` FROM connect_requests WHERE code = $1`, code))
	return r, notFound("connect request", err)
}

// ValidateConnectRequest implements store.Connect.
func (s *Store) ValidateConnectRequest(ctx context.Context, code, personID, recordID string, at time.Time) (store.ConnectRequest, error) {
	var out store.ConnectRequest
	err := s.tx(ctx, func(tx *sql.Tx) error {
		r, err := scanConnect(tx.QueryRowContext(ctx, `SELECT `+connectCols+` FROM connect_requests WHERE code = $1`, code))
		if err != nil {
			return notFound("connect request", err)
		}
		// Authorized times are unique per application so that a time is an
		// exact resume key for GetAuthorizedConnectRequests.
		var latest int64
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(authorized), 0) FROM connect_requests WHERE app_id = $1`, r.AppID).Scan(&latest); err != nil {
			return err
		}
		t := nanos(at)
		if t <= latest {
			t = latest + 1
		}
		res, err := tx.ExecContext(ctx, `UPDATE connect_requests SET state = $1, person_id = $2, record_id = $3, authorized = $4
			WHERE code = $5 AND (state = $6 OR (state = $1 AND person_id = $2))`,
			store.ConnectValidated, personID, recordID, t, code, store.ConnectPending)
		if err := oneRow(res, err, "connect request"); err != nil {
			return err
		}
		r.State, r.PersonID, r.RecordID, r.Authorized = store.ConnectValidated, personID, recordID, fromNanos(t)
		out = r
		return nil
	})
	return out, err
}

// AuthorizedConnectRequests implements store.Connect.
func (s *Store) AuthorizedConnectRequests(ctx context.Context, q store.AuthorizedQuery) ([]store.ConnectRequest, error) {
	since := nanos(q.Since)
	if nb := nanos(q.NotBefore); nb > since {
		since = nb
	}
	if q.Limit <= 0 {
		q.Limit = 1000
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+connectCols+` FROM connect_requests
		WHERE app_id = $1 AND state = $2 AND authorized >= $3 ORDER BY authorized LIMIT $4`,
		q.AppID, store.ConnectValidated, since, q.Limit)
	return collectRows(rows, err, scanConnect)
}

// DeletePendingConnectRequest implements store.Connect.
func (s *Store) DeletePendingConnectRequest(ctx context.Context, appID, externalID string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM connect_requests WHERE app_id = $1 AND external_id = $2 AND state = $3`,
		appID, externalID, store.ConnectPending)
	if err := oneRow(res, err, "connect request"); errors.Is(err, store.ErrNotPending) {
		return fmt.Errorf("pending connect request: %w", store.ErrNotFound)
	} else if err != nil {
		return err
	}
	return nil
}

// DeleteConnectRequestsBefore implements store.Connect.
func (s *Store) DeleteConnectRequestsBefore(ctx context.Context, cutoff time.Time) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM connect_requests WHERE state = $1 AND authorized < $2`, store.ConnectValidated, nanos(cutoff))
	return err
}

// UpdateExternalID implements store.Connect.
func (s *Store) UpdateExternalID(ctx context.Context, appID, code, oldID, newID string) (int, error) {
	var total int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		col, val := "code", code
		if code == "" {
			col, val = "external_id", oldID
		}
		for _, table := range []string{"connect_packages", "connect_requests"} {
			res, err := tx.ExecContext(ctx, `UPDATE `+table+` SET external_id = $1 WHERE app_id = $2 AND `+col+` = $3`, newID, appID, val)
			if s.isUnique(err) {
				return store.ErrPendingExists
			}
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			total += n
		}
		return nil
	})
	return int(total), err
}

// SetAppSuccessMessage implements store.Connect.
func (s *Store) SetAppSuccessMessage(ctx context.Context, appID, msg string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO app_messages (app_id, success_message) VALUES ($1, $2)
		ON CONFLICT (app_id) DO UPDATE SET success_message = excluded.success_message`, appID, msg)
	return err
}

// AppSuccessMessage implements store.Connect.
func (s *Store) AppSuccessMessage(ctx context.Context, appID string) (string, error) {
	var m string
	err := s.db.QueryRowContext(ctx, `SELECT success_message FROM app_messages WHERE app_id = $1`, appID).Scan(&m)
	return m, notFound("success message", err)
}

// AddAudit implements store.Connect.
func (s *Store) AddAudit(ctx context.Context, e store.AuditEvent) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO patient_audit (at, action, person_id, record_id, app_id, subject, detail)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, nanos(e.At), e.Action, e.PersonID, e.RecordID, e.AppID, e.Subject, e.Detail)
	return err
}

// Audits implements store.Connect.
func (s *Store) Audits(ctx context.Context, personID string, limit int) ([]store.AuditEvent, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.db.QueryContext(ctx, `SELECT at, action, person_id, record_id, app_id, subject, detail FROM patient_audit
		WHERE person_id = $1 ORDER BY at DESC LIMIT $2`, personID, limit)
	return collectRows(rows, err, func(sc scanner) (store.AuditEvent, error) {
		var e store.AuditEvent
		var at int64
		err := sc.Scan(&at, &e.Action, &e.PersonID, &e.RecordID, &e.AppID, &e.Subject, &e.Detail)
		e.At = fromNanos(at)
		return e, err
	})
}

// CreateWebSession implements store.Connect.
func (s *Store) CreateWebSession(ctx context.Context, ws store.WebSession) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO web_sessions (token_hash, person_id, csrf, created, expires) VALUES ($1, $2, $3, $4, $5)`,
		ws.TokenHash[:], ws.PersonID, ws.CSRF, nanos(ws.Created), nanos(ws.Expires))
	return s.insertErr("web session", err)
}

// WebSession implements store.Connect.
func (s *Store) WebSession(ctx context.Context, tokenHash [sha256.Size]byte) (store.WebSession, error) {
	ws := store.WebSession{TokenHash: tokenHash}
	var created, expires int64
	err := s.db.QueryRowContext(ctx, `SELECT person_id, csrf, created, expires FROM web_sessions WHERE token_hash = $1`, tokenHash[:]).
		Scan(&ws.PersonID, &ws.CSRF, &created, &expires)
	ws.Created, ws.Expires = fromNanos(created), fromNanos(expires)
	return ws, notFound("web session", err)
}

// DeleteWebSession implements store.Connect.
func (s *Store) DeleteWebSession(ctx context.Context, tokenHash [sha256.Size]byte) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM web_sessions WHERE token_hash = $1`, tokenHash[:])
	return err
}

// DeleteExpiredWebSessions implements store.Connect.
func (s *Store) DeleteExpiredWebSessions(ctx context.Context, now time.Time) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM web_sessions WHERE expires < $1`, nanos(now))
	return err
}
