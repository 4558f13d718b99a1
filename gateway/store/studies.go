package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

const studyColumns = `study_uid, patient_id, issuer, patient_name, study_date, description, accession, referring,
modalities, calling_ae, state, route, route_reason, error, instances, delivered, blobs_done, blobs_total, attempts,
first_received, last_received, ready_at, delivered_at, updated_at, thing_id, version_stamp, person_id, record_id,
package_code, pickup_id`

type scanner interface{ Scan(dest ...any) error }

func scanStudy(r scanner) (Study, error) {
	var (
		st                                             Study
		mods, state                                    string
		first, last, ready, delivered, updated, pickup int64
	)
	err := r.Scan(&st.StudyUID, &st.PatientID, &st.IssuerOfPatientID, &st.PatientName, &st.StudyDate,
		&st.StudyDescription, &st.AccessionNumber, &st.ReferringPhysician, &mods, &st.CallingAE, &state,
		&st.Route, &st.RouteReason, &st.Error, &st.Instances, &st.Delivered, &st.BlobsDone, &st.BlobsTotal,
		&st.Attempts, &first, &last, &ready, &delivered, &updated, &st.ThingID, &st.VersionStamp,
		&st.PersonID, &st.RecordID, &st.PackageCode, &pickup)
	if err != nil {
		return Study{}, err
	}
	if mods != "" {
		st.Modalities = strings.Split(mods, `\`)
	}
	st.State = StudyState(state)
	st.FirstReceived, st.LastReceived, st.ReadyAt = fromNanos(first), fromNanos(last), fromNanos(ready)
	st.DeliveredAt, st.UpdatedAt = fromNanos(delivered), fromNanos(updated)
	st.PickupID = pickup
	return st, nil
}

func studyArgs(st Study) []any {
	return []any{st.PatientID, st.IssuerOfPatientID, st.PatientName, st.StudyDate, st.StudyDescription,
		st.AccessionNumber, st.ReferringPhysician, strings.Join(st.Modalities, `\`), st.CallingAE, string(st.State),
		st.Route, st.RouteReason, st.Error, st.Instances, st.Delivered, st.BlobsDone, st.BlobsTotal, st.Attempts,
		nanos(st.FirstReceived), nanos(st.LastReceived), nanos(st.ReadyAt), nanos(st.DeliveredAt), nanos(st.UpdatedAt),
		st.ThingID, st.VersionStamp, st.PersonID, st.RecordID, st.PackageCode, st.PickupID}
}

// PutInstances implements Store.
func (s *SQL) PutInstances(ctx context.Context, batch []NewInstance) ([]bool, error) {
	created := make([]bool, len(batch))
	for _, n := range batch {
		if n.Instance.SOPInstanceUID == "" || n.Instance.StudyUID == "" {
			return nil, fmt.Errorf("store: instance needs SOP Instance UID and Study Instance UID")
		}
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		for i, n := range batch {
			ok, err := s.putInstance(ctx, tx, n.Instance, n.Facts, n.ReadyAt)
			if err != nil {
				return fmt.Errorf("instance %s: %w", n.Instance.SOPInstanceUID, err)
			}
			created[i] = ok
		}
		return nil
	})
	if err != nil {
		if isUnique(err) && len(batch) == 1 {
			return []bool{false}, nil // a concurrent writer stored it first
		}
		return nil, fmt.Errorf("store: put instances: %w", err)
	}
	return created, nil
}

// putInstance records one instance in tx, reporting false when its SOP
// Instance UID is already known.
func (s *SQL) putInstance(ctx context.Context, tx *sql.Tx, in Instance, facts Study, readyAt time.Time) (bool, error) {
	var n int
	if err := tx.QueryRowContext(ctx, s.f.rebind(`SELECT COUNT(*) FROM gw_instances WHERE sop_instance_uid = ?`), in.SOPInstanceUID).Scan(&n); err != nil {
		return false, err
	}
	if n > 0 {
		return false, nil
	}
	// Create the study row first (a no-op when it exists), then lock
	// it: two associations delivering the first instances of one study
	// at once serialize here instead of racing to create it.
	if _, err := s.exec(ctx, tx, `INSERT INTO gw_studies (study_uid, state) VALUES (?, ?) ON CONFLICT (study_uid) DO NOTHING`,
		in.StudyUID, string(StateReceiving)); err != nil {
		return false, err
	}
	st, err := scanStudy(tx.QueryRowContext(ctx, s.f.rebind(`SELECT `+studyColumns+` FROM gw_studies WHERE study_uid = ?`+s.f.forUpdate), in.StudyUID))
	if err != nil {
		return false, err
	}
	if st.Instances == 0 {
		st = facts
		st.StudyUID = in.StudyUID
		st.FirstReceived = in.ReceivedAt
		st.CallingAE = in.CallingAE
	}
	st.Modalities = mergeModalities(st.Modalities, facts.Modalities)
	st.Instances++
	st.LastReceived = in.ReceivedAt
	st.UpdatedAt = in.ReceivedAt
	// A study waiting for the quiet period, or already through, gets
	// its period restarted. A study in delivery keeps its state: the
	// delivery job notices the new instance when it finishes.
	switch st.State {
	case "", StateReceiving, StateDelivered, StateFailed:
		st.State = StateReceiving
		st.ReadyAt = readyAt
	}
	if err := s.writeStudy(ctx, tx, st); err != nil {
		return false, err
	}
	_, err = s.exec(ctx, tx, `INSERT INTO gw_instances (sop_instance_uid, sop_class_uid, study_uid, series_uid,
			transfer_syntax, path, size, calling_ae, peer_addr, received_at, facts, delivered) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`,
		in.SOPInstanceUID, in.SOPClassUID, in.StudyUID, in.SeriesUID, in.TransferSyntax, in.Path, in.Size,
		in.CallingAE, in.PeerAddr, nanos(in.ReceivedAt), string(in.Facts), boolInt(in.Delivered))
	if err != nil {
		return false, err
	}
	return true, nil
}

func mergeModalities(have, add []string) []string {
	for _, m := range add {
		found := false
		for _, h := range have {
			if h == m {
				found = true
				break
			}
		}
		if !found && m != "" {
			have = append(have, m)
		}
	}
	return have
}

func (s *SQL) writeStudy(ctx context.Context, q querier, st Study) error {
	_, err := s.exec(ctx, q, `UPDATE gw_studies SET patient_id=?, issuer=?, patient_name=?, study_date=?, description=?,
		accession=?, referring=?, modalities=?, calling_ae=?, state=?, route=?, route_reason=?, error=?, instances=?,
		delivered=?, blobs_done=?, blobs_total=?, attempts=?, first_received=?, last_received=?, ready_at=?,
		delivered_at=?, updated_at=?, thing_id=?, version_stamp=?, person_id=?, record_id=?, package_code=?, pickup_id=?
		WHERE study_uid=?`, append(studyArgs(st), st.StudyUID)...)
	return err
}

const instanceColumns = `sop_instance_uid, sop_class_uid, study_uid, series_uid, transfer_syntax, path, size,
calling_ae, peer_addr, received_at, facts, delivered`

func scanInstance(r scanner) (Instance, error) {
	var (
		in        Instance
		received  int64
		facts     string
		delivered int
	)
	err := r.Scan(&in.SOPInstanceUID, &in.SOPClassUID, &in.StudyUID, &in.SeriesUID, &in.TransferSyntax, &in.Path,
		&in.Size, &in.CallingAE, &in.PeerAddr, &received, &facts, &delivered)
	in.ReceivedAt = fromNanos(received)
	in.Facts = []byte(facts)
	in.Delivered = delivered != 0
	return in, err
}

// Instance implements Store.
func (s *SQL) Instance(ctx context.Context, uid string) (Instance, error) {
	in, err := scanInstance(s.db.QueryRowContext(ctx, s.f.rebind(`SELECT `+instanceColumns+` FROM gw_instances WHERE sop_instance_uid = ?`), uid))
	return in, notFound(err, "instance "+uid)
}

// StudyInstances implements Store.
func (s *SQL) StudyInstances(ctx context.Context, studyUID string) ([]Instance, error) {
	rows, err := s.db.QueryContext(ctx, s.f.rebind(`SELECT `+instanceColumns+` FROM gw_instances WHERE study_uid = ? ORDER BY received_at, sop_instance_uid`), studyUID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Instance
	for rows.Next() {
		in, err := scanInstance(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	return out, rows.Err()
}

// MarkDelivered implements Store.
func (s *SQL) MarkDelivered(ctx context.Context, uids []string) error {
	if len(uids) == 0 {
		return nil
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, u := range uids {
			if _, err := s.exec(ctx, tx, `UPDATE gw_instances SET delivered = 1 WHERE sop_instance_uid = ?`, u); err != nil {
				return err
			}
		}
		return nil
	})
}

// Study implements Store.
func (s *SQL) Study(ctx context.Context, uid string) (Study, error) {
	st, err := scanStudy(s.db.QueryRowContext(ctx, s.f.rebind(`SELECT `+studyColumns+` FROM gw_studies WHERE study_uid = ?`), uid))
	return st, notFound(err, "study "+uid)
}

// Studies implements Store.
func (s *SQL) Studies(ctx context.Context, f StudyFilter) ([]Study, error) {
	q := `SELECT ` + studyColumns + ` FROM gw_studies WHERE 1=1`
	var args []any
	if len(f.States) > 0 {
		q += ` AND state IN (` + strings.TrimSuffix(strings.Repeat("?,", len(f.States)), ",") + `)`
		for _, st := range f.States {
			args = append(args, string(st))
		}
	}
	if f.PatientID != "" {
		q += ` AND patient_id = ?`
		args = append(args, f.PatientID)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 200
	}
	q += ` ORDER BY last_received DESC, study_uid LIMIT ?`
	args = append(args, limit)
	return s.queryStudies(ctx, q, args...)
}

func (s *SQL) queryStudies(ctx context.Context, q string, args ...any) ([]Study, error) {
	rows, err := s.db.QueryContext(ctx, s.f.rebind(q), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Study
	for rows.Next() {
		st, err := scanStudy(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

// UpdateStudy implements Store.
func (s *SQL) UpdateStudy(ctx context.Context, uid string, fn func(*Study) error) (Study, error) {
	var st Study
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		st, err = scanStudy(tx.QueryRowContext(ctx, s.f.rebind(`SELECT `+studyColumns+` FROM gw_studies WHERE study_uid = ?`+s.f.forUpdate), uid))
		if err != nil {
			return notFound(err, "study "+uid)
		}
		if err := fn(&st); err != nil {
			return err
		}
		st.StudyUID = uid
		st.UpdatedAt = time.Now()
		return s.writeStudy(ctx, tx, st)
	})
	return st, err
}

// NextReadyAt implements Store.
func (s *SQL) NextReadyAt(ctx context.Context) (time.Time, error) {
	var n sql.NullInt64
	err := s.db.QueryRowContext(ctx, s.f.rebind(`SELECT MIN(ready_at) FROM gw_studies WHERE state = ?`),
		string(StateReceiving)).Scan(&n)
	if err != nil {
		return time.Time{}, err
	}
	return fromNanos(n.Int64), nil
}

// DueStudies implements Store.
func (s *SQL) DueStudies(ctx context.Context, now time.Time) ([]Study, error) {
	return s.queryStudies(ctx, `SELECT `+studyColumns+` FROM gw_studies WHERE state = ? AND ready_at <= ? ORDER BY ready_at`,
		string(StateReceiving), now.UnixNano())
}
