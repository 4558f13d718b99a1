package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// AddEvent implements Store.
func (s *SQL) AddEvent(ctx context.Context, e Event) error {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	_, err := s.exec(ctx, s.db, `INSERT INTO gw_events (study_uid, at, kind, detail) VALUES (?, ?, ?, ?)`,
		e.StudyUID, nanos(e.At), e.Kind, e.Detail)
	return err
}

// Events implements Store.
func (s *SQL) Events(ctx context.Context, studyUID string) ([]Event, error) {
	rows, err := s.db.QueryContext(ctx, s.f.rebind(`SELECT study_uid, at, kind, detail FROM gw_events WHERE study_uid = ? ORDER BY id`), studyUID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var (
			e  Event
			at int64
		)
		if err := rows.Scan(&e.StudyUID, &at, &e.Kind, &e.Detail); err != nil {
			return nil, err
		}
		e.At = fromNanos(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// RecordBlobs implements Store.
func (s *SQL) RecordBlobs(ctx context.Context, bs []UploadedBlob) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, b := range bs {
			if err := s.recordBlob(ctx, tx, b); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *SQL) recordBlob(ctx context.Context, tx *sql.Tx, b UploadedBlob) error {
	_, err := s.exec(ctx, tx, `INSERT INTO gw_blobs (study_uid, name, content_type, ref_url, hash, block_size, content_length)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (study_uid, name) DO UPDATE SET content_type = excluded.content_type,
		ref_url = excluded.ref_url, hash = excluded.hash, block_size = excluded.block_size, content_length = excluded.content_length`,
		b.StudyUID, b.Name, b.ContentType, b.RefURL, b.Hash, b.BlockSize, b.ContentLength)
	return err
}

// Blobs implements Store.
func (s *SQL) Blobs(ctx context.Context, studyUID string) ([]UploadedBlob, error) {
	rows, err := s.db.QueryContext(ctx, s.f.rebind(`SELECT study_uid, name, content_type, ref_url, hash, block_size, content_length
		FROM gw_blobs WHERE study_uid = ? ORDER BY name`), studyUID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []UploadedBlob
	for rows.Next() {
		var b UploadedBlob
		if err := rows.Scan(&b.StudyUID, &b.Name, &b.ContentType, &b.RefURL, &b.Hash, &b.BlockSize, &b.ContentLength); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// ForgetBlobs implements Store.
func (s *SQL) ForgetBlobs(ctx context.Context, studyUID string) error {
	_, err := s.exec(ctx, s.db, `DELETE FROM gw_blobs WHERE study_uid = ?`, studyUID)
	return err
}

const pickupColumns = `id, patient_id, issuer, accession, email, friendly_name, question, answer_sealed,
identity_code, study_uid, state, created_at, expires_at`

func scanPickup(r scanner) (Pickup, error) {
	var (
		p                Pickup
		created, expires int64
	)
	err := r.Scan(&p.ID, &p.PatientID, &p.IssuerOfPatientID, &p.AccessionNumber, &p.Email, &p.FriendlyName,
		&p.Question, &p.AnswerSealed, &p.IdentityCode, &p.StudyUID, &p.State, &created, &expires)
	p.CreatedAt, p.ExpiresAt = fromNanos(created), fromNanos(expires)
	return p, err
}

// CreatePickup implements Store.
func (s *SQL) CreatePickup(ctx context.Context, p Pickup) (Pickup, error) {
	if p.CreatedAt.IsZero() {
		p.CreatedAt = time.Now()
	}
	err := s.db.QueryRowContext(ctx, s.f.rebind(`INSERT INTO gw_pickups (patient_id, issuer, accession, email, friendly_name,
		question, answer_sealed, identity_code, study_uid, state, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
		p.PatientID, p.IssuerOfPatientID, p.AccessionNumber, p.Email, p.FriendlyName, p.Question, p.AnswerSealed,
		p.IdentityCode, p.StudyUID, p.State, nanos(p.CreatedAt), nanos(p.ExpiresAt)).Scan(&p.ID)
	if err != nil {
		return Pickup{}, fmt.Errorf("store: create pickup: %w", err)
	}
	return p, nil
}

// Pickup implements Store.
func (s *SQL) Pickup(ctx context.Context, id int64) (Pickup, error) {
	p, err := scanPickup(s.db.QueryRowContext(ctx, s.f.rebind(`SELECT `+pickupColumns+` FROM gw_pickups WHERE id = ?`), id))
	return p, notFound(err, fmt.Sprintf("pickup %d", id))
}

// Pickups implements Store.
func (s *SQL) Pickups(ctx context.Context) ([]Pickup, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+pickupColumns+` FROM gw_pickups ORDER BY id DESC`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Pickup
	for rows.Next() {
		p, err := scanPickup(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// FindPickup implements Store.
func (s *SQL) FindPickup(ctx context.Context, patientID, issuer, accession string) (Pickup, error) {
	p, err := scanPickup(s.db.QueryRowContext(ctx, s.f.rebind(`SELECT `+pickupColumns+` FROM gw_pickups
		WHERE patient_id = ? AND issuer = ? AND study_uid = '' AND state = 'registered' AND (accession = '' OR accession = ?)
		ORDER BY id LIMIT 1`), patientID, issuer, accession))
	return p, notFound(err, "pickup for patient")
}

// UpdatePickup implements Store.
func (s *SQL) UpdatePickup(ctx context.Context, p Pickup) error {
	res, err := s.exec(ctx, s.db, `UPDATE gw_pickups SET patient_id=?, issuer=?, accession=?, email=?, friendly_name=?,
		question=?, answer_sealed=?, identity_code=?, study_uid=?, state=?, expires_at=? WHERE id=?`,
		p.PatientID, p.IssuerOfPatientID, p.AccessionNumber, p.Email, p.FriendlyName, p.Question, p.AnswerSealed,
		p.IdentityCode, p.StudyUID, p.State, nanos(p.ExpiresAt), p.ID)
	return checkOne(res, err, fmt.Sprintf("pickup %d", p.ID))
}

// PutLink implements Store.
func (s *SQL) PutLink(ctx context.Context, l PatientLink) error {
	_, err := s.exec(ctx, s.db, `INSERT INTO gw_links (external_id, person_id, record_id, authorized_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (external_id) DO UPDATE SET person_id = excluded.person_id, record_id = excluded.record_id,
		authorized_at = excluded.authorized_at`, l.ExternalID, l.PersonID, l.RecordID, nanos(l.AuthorizedAt))
	return err
}

// Link implements Store.
func (s *SQL) Link(ctx context.Context, externalID string) (PatientLink, error) {
	var (
		l  PatientLink
		at int64
	)
	err := s.db.QueryRowContext(ctx, s.f.rebind(`SELECT external_id, person_id, record_id, authorized_at FROM gw_links WHERE external_id = ?`),
		externalID).Scan(&l.ExternalID, &l.PersonID, &l.RecordID, &at)
	l.AuthorizedAt = fromNanos(at)
	return l, notFound(err, "patient link")
}

// Links implements Store.
func (s *SQL) Links(ctx context.Context) ([]PatientLink, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT external_id, person_id, record_id, authorized_at FROM gw_links ORDER BY external_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []PatientLink
	for rows.Next() {
		var (
			l  PatientLink
			at int64
		)
		if err := rows.Scan(&l.ExternalID, &l.PersonID, &l.RecordID, &at); err != nil {
			return nil, err
		}
		l.AuthorizedAt = fromNanos(at)
		out = append(out, l)
	}
	return out, rows.Err()
}

// Setting implements Store.
func (s *SQL) Setting(ctx context.Context, key string) ([]byte, error) {
	var v string
	err := s.db.QueryRowContext(ctx, s.f.rebind(`SELECT value FROM gw_settings WHERE key = ?`), key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: setting %s", ErrNotFound, key)
	}
	return []byte(v), err
}

// PutSetting implements Store.
func (s *SQL) PutSetting(ctx context.Context, key string, value []byte) error {
	_, err := s.exec(ctx, s.db, `INSERT INTO gw_settings (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, string(value))
	return err
}
