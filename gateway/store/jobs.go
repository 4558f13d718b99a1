package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

const jobColumns = `id, kind, job_key, state, attempts, max_attempts, run_at, lease_until, last_error, created_at, updated_at`

func scanJob(r scanner) (Job, error) {
	var (
		j                                Job
		state                            string
		runAt, lease, created, updatedAt int64
	)
	err := r.Scan(&j.ID, &j.Kind, &j.Key, &state, &j.Attempts, &j.MaxAttempts, &runAt, &lease, &j.LastError, &created, &updatedAt)
	j.State = JobState(state)
	j.RunAt, j.LeaseUntil, j.CreatedAt, j.UpdatedAt = fromNanos(runAt), fromNanos(lease), fromNanos(created), fromNanos(updatedAt)
	return j, err
}

// EnqueueJob implements Store.
func (s *SQL) EnqueueJob(ctx context.Context, kind, key string, runAt time.Time, maxAttempts int) (Job, error) {
	if maxAttempts < 1 {
		maxAttempts = 1
	}
	var j Job
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		j, err = scanJob(tx.QueryRowContext(ctx, s.f.rebind(`SELECT `+jobColumns+` FROM gw_jobs
			WHERE kind = ? AND job_key = ? AND state IN (?, ?) ORDER BY id DESC LIMIT 1`+s.f.forUpdate),
			kind, key, string(JobAvailable), string(JobRunning)))
		switch {
		case err == nil:
			if j.State == JobAvailable && runAt.Before(j.RunAt) {
				j.RunAt = runAt
				_, err = s.exec(ctx, tx, `UPDATE gw_jobs SET run_at = ?, updated_at = ? WHERE id = ?`, nanos(runAt), time.Now().UnixNano(), j.ID)
			}
			return err
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		now := time.Now()
		err = tx.QueryRowContext(ctx, s.f.rebind(`INSERT INTO gw_jobs (kind, job_key, state, attempts, max_attempts, run_at, created_at, updated_at)
			VALUES (?, ?, ?, 0, ?, ?, ?, ?) RETURNING id`), kind, key, string(JobAvailable), maxAttempts, nanos(runAt), now.UnixNano(), now.UnixNano()).Scan(&j.ID)
		if err != nil {
			return err
		}
		j = Job{ID: j.ID, Kind: kind, Key: key, State: JobAvailable, MaxAttempts: maxAttempts, RunAt: runAt, CreatedAt: now, UpdatedAt: now}
		return nil
	})
	if err != nil {
		return Job{}, fmt.Errorf("store: enqueue %s %s: %w", kind, key, err)
	}
	return j, nil
}

// ClaimJob implements Store. A running job whose lease lapsed counts as
// due: its worker died.
func (s *SQL) ClaimJob(ctx context.Context, kinds []string, now time.Time, lease time.Duration) (Job, error) {
	if len(kinds) == 0 {
		return Job{}, ErrNoJob
	}
	in := strings.TrimSuffix(strings.Repeat("?,", len(kinds)), ",")
	args := []any{string(JobRunning), now.Add(lease).UnixNano(), now.UnixNano()}
	var sub []any
	for _, k := range kinds {
		sub = append(sub, k)
	}
	sub = append(sub, string(JobAvailable), now.UnixNano(), string(JobRunning), now.UnixNano())
	q := `UPDATE gw_jobs SET state = ?, attempts = attempts + 1, lease_until = ?, updated_at = ?
		WHERE id = (SELECT id FROM gw_jobs WHERE kind IN (` + in + `)
			AND ((state = ? AND run_at <= ?) OR (state = ? AND lease_until <= ?))
			ORDER BY run_at, id LIMIT 1` + s.f.skipLock + `)
		RETURNING ` + jobColumns
	j, err := scanJob(s.db.QueryRowContext(ctx, s.f.rebind(q), append(args, sub...)...))
	if errors.Is(err, sql.ErrNoRows) {
		return Job{}, ErrNoJob
	}
	if err != nil {
		return Job{}, fmt.Errorf("store: claim job: %w", err)
	}
	return j, nil
}

// ExtendLease implements Store.
func (s *SQL) ExtendLease(ctx context.Context, id int64, until time.Time) error {
	res, err := s.exec(ctx, s.db, `UPDATE gw_jobs SET lease_until = ?, updated_at = ? WHERE id = ? AND state = ?`,
		nanos(until), time.Now().UnixNano(), id, string(JobRunning))
	return checkOne(res, err, fmt.Sprintf("running job %d", id))
}

// FinishJob implements Store.
func (s *SQL) FinishJob(ctx context.Context, id int64) error {
	res, err := s.exec(ctx, s.db, `UPDATE gw_jobs SET state = ?, lease_until = 0, last_error = '', updated_at = ? WHERE id = ?`,
		string(JobDone), time.Now().UnixNano(), id)
	return checkOne(res, err, fmt.Sprintf("job %d", id))
}

// RetryJob implements Store.
func (s *SQL) RetryJob(ctx context.Context, id int64, reason string, runAt time.Time) (bool, error) {
	var failed bool
	err := s.tx(ctx, func(tx *sql.Tx) error {
		j, err := scanJob(tx.QueryRowContext(ctx, s.f.rebind(`SELECT `+jobColumns+` FROM gw_jobs WHERE id = ?`+s.f.forUpdate), id))
		if err != nil {
			return notFound(err, fmt.Sprintf("job %d", id))
		}
		state := JobAvailable
		if j.Attempts >= j.MaxAttempts {
			state, failed = JobFailed, true
		}
		_, err = s.exec(ctx, tx, `UPDATE gw_jobs SET state = ?, run_at = ?, lease_until = 0, last_error = ?, updated_at = ? WHERE id = ?`,
			string(state), nanos(runAt), reason, time.Now().UnixNano(), id)
		return err
	})
	return failed, err
}

// ReleaseRunning implements Store.
func (s *SQL) ReleaseRunning(ctx context.Context) (int64, error) {
	res, err := s.exec(ctx, s.db, `UPDATE gw_jobs SET state = ?, lease_until = 0, updated_at = ? WHERE state = ?`,
		string(JobAvailable), time.Now().UnixNano(), string(JobRunning))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// FailJob implements Store.
func (s *SQL) FailJob(ctx context.Context, id int64, reason string) error {
	res, err := s.exec(ctx, s.db, `UPDATE gw_jobs SET state = ?, lease_until = 0, last_error = ?, updated_at = ? WHERE id = ?`,
		string(JobFailed), reason, time.Now().UnixNano(), id)
	return checkOne(res, err, fmt.Sprintf("job %d", id))
}

// Jobs implements Store.
func (s *SQL) Jobs(ctx context.Context, key string) ([]Job, error) {
	rows, err := s.db.QueryContext(ctx, s.f.rebind(`SELECT `+jobColumns+` FROM gw_jobs WHERE job_key = ? ORDER BY id DESC`), key)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

func checkOne(res sql.Result, err error, what string) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%w: %s", ErrNotFound, what)
	}
	return nil
}
