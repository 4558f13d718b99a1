package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// AdminRole is what an admin UI user may do.
type AdminRole string

// The admin UI's roles.
const (
	// RoleAdmin may do everything, including settings and users.
	RoleAdmin AdminRole = "admin"
	// RoleStaff sees studies and patients and acts on studies.
	RoleStaff AdminRole = "staff"
)

// Valid reports whether r is one of the defined roles.
func (r AdminRole) Valid() bool { return r == RoleAdmin || r == RoleStaff }

// AdminUser is a person who may sign in to the admin UI.
type AdminUser struct {
	ID       int64
	Username string
	Role     AdminRole
	// PasswordHash is the encoded argon2id hash (PHC string format) with
	// its parameters and salt; never the password.
	PasswordHash string
	Disabled     bool
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// AdminSession is a signed-in browser. ID is a digest of the session
// cookie, so the database alone cannot be used to sign in.
type AdminSession struct {
	ID     string
	UserID int64
	// CSRFToken is the synchronizer token every form of this session
	// must carry.
	CSRFToken  string
	CreatedAt  time.Time
	LastSeen   time.Time
	ExpiresAt  time.Time
	RemoteAddr string
}

// AuditEntry is one line of the audit log: who did or saw what, when, and
// which study or patient it concerned.
type AuditEntry struct {
	ID         int64
	At         time.Time
	UserID     int64
	Username   string
	Action     string
	StudyUID   string
	PatientID  string
	Detail     string
	RemoteAddr string
}

// AuditFilter selects audit entries. Zero fields select everything.
type AuditFilter struct {
	StudyUID string
	Username string
	Limit    int // 0 means 200
}

// Admin is what the admin UI keeps: its users, their sessions, the
// one-time setup tokens that create the first admin, and the audit log.
type Admin interface {
	// CreateAdminUser stores a user and returns it with its ID;
	// ErrConflict when the username is taken.
	CreateAdminUser(ctx context.Context, u AdminUser) (AdminUser, error)
	// AdminUser returns one user by ID.
	AdminUser(ctx context.Context, id int64) (AdminUser, error)
	// AdminUserByName returns one user by username.
	AdminUserByName(ctx context.Context, username string) (AdminUser, error)
	// AdminUsers lists every user by username.
	AdminUsers(ctx context.Context) ([]AdminUser, error)
	// CountAdminUsers counts the users, disabled ones included.
	CountAdminUsers(ctx context.Context) (int, error)
	// UpdateAdminUser writes a user's role, password hash and disabled
	// flag back.
	UpdateAdminUser(ctx context.Context, u AdminUser) error

	// CreateAdminSession stores a new session.
	CreateAdminSession(ctx context.Context, s AdminSession) error
	// AdminSession returns a session that has not expired by now;
	// ErrNotFound when it is unknown or expired.
	AdminSession(ctx context.Context, id string, now time.Time) (AdminSession, error)
	// TouchAdminSession records activity and moves the expiry.
	TouchAdminSession(ctx context.Context, id string, lastSeen, expiresAt time.Time) error
	// DeleteAdminSession ends one session (sign-out).
	DeleteAdminSession(ctx context.Context, id string) error
	// DeleteAdminSessions ends every session of a user (password change,
	// disabled account).
	DeleteAdminSessions(ctx context.Context, userID int64) error
	// PurgeAdminSessions deletes sessions expired by now and reports how
	// many.
	PurgeAdminSessions(ctx context.Context, now time.Time) (int64, error)

	// CreateSetupToken stores the digest of a one-time setup token.
	CreateSetupToken(ctx context.Context, tokenHash string, createdAt, expiresAt time.Time) error
	// UseSetupToken marks an unused, unexpired token used, atomically, so
	// that it works once; ErrNotFound when it is unknown, used or expired.
	UseSetupToken(ctx context.Context, tokenHash string, now time.Time) error

	// StudyCounts counts studies by state, for the dashboard and metrics.
	StudyCounts(ctx context.Context) (map[StudyState]int, error)
	// JobCounts counts jobs by kind and state, for metrics.
	JobCounts(ctx context.Context) (map[string]map[JobState]int, error)

	// AddAudit appends to the audit log.
	AddAudit(ctx context.Context, e AuditEntry) error
	// Audit lists audit entries, newest first.
	Audit(ctx context.Context, f AuditFilter) ([]AuditEntry, error)
}

const adminUserColumns = `id, username, role, password_hash, disabled, created_at, updated_at`

func scanAdminUser(r scanner) (AdminUser, error) {
	var (
		u                AdminUser
		role             string
		disabled         int
		created, updated int64
	)
	if err := r.Scan(&u.ID, &u.Username, &role, &u.PasswordHash, &disabled, &created, &updated); err != nil {
		return AdminUser{}, err
	}
	u.Role, u.Disabled = AdminRole(role), disabled != 0
	u.CreatedAt, u.UpdatedAt = fromNanos(created), fromNanos(updated)
	return u, nil
}

// CreateAdminUser implements Admin.
func (s *SQL) CreateAdminUser(ctx context.Context, u AdminUser) (AdminUser, error) {
	if u.Username == "" || !u.Role.Valid() || u.PasswordHash == "" {
		return AdminUser{}, fmt.Errorf("store: admin user needs a username, a valid role and a password hash")
	}
	if u.CreatedAt.IsZero() {
		u.CreatedAt = time.Now()
	}
	if u.UpdatedAt.IsZero() {
		u.UpdatedAt = u.CreatedAt
	}
	err := s.db.QueryRowContext(ctx, s.f.rebind(`INSERT INTO gw_admin_users (username, role, password_hash, disabled,
		created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`),
		u.Username, string(u.Role), u.PasswordHash, boolInt(u.Disabled), nanos(u.CreatedAt), nanos(u.UpdatedAt)).Scan(&u.ID)
	if err != nil {
		if isUnique(err) {
			return AdminUser{}, fmt.Errorf("%w: username %q is taken", ErrConflict, u.Username)
		}
		return AdminUser{}, fmt.Errorf("store: create admin user: %w", err)
	}
	return u, nil
}

// AdminUser implements Admin.
func (s *SQL) AdminUser(ctx context.Context, id int64) (AdminUser, error) {
	u, err := scanAdminUser(s.db.QueryRowContext(ctx, s.f.rebind(`SELECT `+adminUserColumns+` FROM gw_admin_users WHERE id = ?`), id))
	return u, notFound(err, fmt.Sprintf("admin user %d", id))
}

// AdminUserByName implements Admin.
func (s *SQL) AdminUserByName(ctx context.Context, username string) (AdminUser, error) {
	u, err := scanAdminUser(s.db.QueryRowContext(ctx, s.f.rebind(`SELECT `+adminUserColumns+` FROM gw_admin_users WHERE username = ?`), username))
	return u, notFound(err, "admin user")
}

// AdminUsers implements Admin.
func (s *SQL) AdminUsers(ctx context.Context) ([]AdminUser, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+adminUserColumns+` FROM gw_admin_users ORDER BY username`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AdminUser
	for rows.Next() {
		u, err := scanAdminUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// CountAdminUsers implements Admin.
func (s *SQL) CountAdminUsers(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM gw_admin_users`).Scan(&n)
	return n, err
}

// UpdateAdminUser implements Admin.
func (s *SQL) UpdateAdminUser(ctx context.Context, u AdminUser) error {
	if !u.Role.Valid() || u.PasswordHash == "" {
		return fmt.Errorf("store: admin user needs a valid role and a password hash")
	}
	if u.UpdatedAt.IsZero() {
		u.UpdatedAt = time.Now()
	}
	res, err := s.exec(ctx, s.db, `UPDATE gw_admin_users SET role = ?, password_hash = ?, disabled = ?, updated_at = ? WHERE id = ?`,
		string(u.Role), u.PasswordHash, boolInt(u.Disabled), nanos(u.UpdatedAt), u.ID)
	return checkOne(res, err, fmt.Sprintf("admin user %d", u.ID))
}

// CreateAdminSession implements Admin.
func (s *SQL) CreateAdminSession(ctx context.Context, a AdminSession) error {
	if a.ID == "" || a.UserID == 0 || a.CSRFToken == "" || a.ExpiresAt.IsZero() {
		return fmt.Errorf("store: admin session needs an id, a user, a CSRF token and an expiry")
	}
	if a.CreatedAt.IsZero() {
		a.CreatedAt = time.Now()
	}
	if a.LastSeen.IsZero() {
		a.LastSeen = a.CreatedAt
	}
	_, err := s.exec(ctx, s.db, `INSERT INTO gw_admin_sessions (id, user_id, csrf_token, created_at, last_seen, expires_at, remote_addr)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, a.ID, a.UserID, a.CSRFToken, nanos(a.CreatedAt), nanos(a.LastSeen), nanos(a.ExpiresAt), a.RemoteAddr)
	if err != nil {
		if isUnique(err) {
			return fmt.Errorf("%w: session exists", ErrConflict)
		}
		return fmt.Errorf("store: create admin session: %w", err)
	}
	return nil
}

// AdminSession implements Admin.
func (s *SQL) AdminSession(ctx context.Context, id string, now time.Time) (AdminSession, error) {
	var (
		a                        AdminSession
		created, seen, expiresAt int64
	)
	err := s.db.QueryRowContext(ctx, s.f.rebind(`SELECT id, user_id, csrf_token, created_at, last_seen, expires_at, remote_addr
		FROM gw_admin_sessions WHERE id = ? AND expires_at > ?`), id, now.UnixNano()).
		Scan(&a.ID, &a.UserID, &a.CSRFToken, &created, &seen, &expiresAt, &a.RemoteAddr)
	if err != nil {
		return AdminSession{}, notFound(err, "admin session")
	}
	a.CreatedAt, a.LastSeen, a.ExpiresAt = fromNanos(created), fromNanos(seen), fromNanos(expiresAt)
	return a, nil
}

// TouchAdminSession implements Admin.
func (s *SQL) TouchAdminSession(ctx context.Context, id string, lastSeen, expiresAt time.Time) error {
	res, err := s.exec(ctx, s.db, `UPDATE gw_admin_sessions SET last_seen = ?, expires_at = ? WHERE id = ?`,
		nanos(lastSeen), nanos(expiresAt), id)
	return checkOne(res, err, "admin session")
}

// DeleteAdminSession implements Admin.
func (s *SQL) DeleteAdminSession(ctx context.Context, id string) error {
	_, err := s.exec(ctx, s.db, `DELETE FROM gw_admin_sessions WHERE id = ?`, id)
	return err
}

// DeleteAdminSessions implements Admin.
func (s *SQL) DeleteAdminSessions(ctx context.Context, userID int64) error {
	_, err := s.exec(ctx, s.db, `DELETE FROM gw_admin_sessions WHERE user_id = ?`, userID)
	return err
}

// PurgeAdminSessions implements Admin.
func (s *SQL) PurgeAdminSessions(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.exec(ctx, s.db, `DELETE FROM gw_admin_sessions WHERE expires_at <= ?`, now.UnixNano())
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// CreateSetupToken implements Admin.
func (s *SQL) CreateSetupToken(ctx context.Context, tokenHash string, createdAt, expiresAt time.Time) error {
	if tokenHash == "" || expiresAt.IsZero() {
		return fmt.Errorf("store: setup token needs a digest and an expiry")
	}
	_, err := s.exec(ctx, s.db, `INSERT INTO gw_admin_setup_tokens (token_hash, created_at, expires_at) VALUES (?, ?, ?)`,
		tokenHash, nanos(createdAt), nanos(expiresAt))
	if err != nil && isUnique(err) {
		return fmt.Errorf("%w: setup token exists", ErrConflict)
	}
	return err
}

// UseSetupToken implements Admin. One UPDATE guarded by used_at = 0 makes
// two concurrent uses of one token succeed once.
func (s *SQL) UseSetupToken(ctx context.Context, tokenHash string, now time.Time) error {
	res, err := s.exec(ctx, s.db, `UPDATE gw_admin_setup_tokens SET used_at = ? WHERE token_hash = ? AND used_at = 0 AND expires_at > ?`,
		now.UnixNano(), tokenHash, now.UnixNano())
	return checkOne(res, err, "usable setup token")
}

// AddAudit implements Admin.
func (s *SQL) AddAudit(ctx context.Context, e AuditEntry) error {
	if e.Action == "" {
		return fmt.Errorf("store: audit entry needs an action")
	}
	if e.At.IsZero() {
		e.At = time.Now()
	}
	_, err := s.exec(ctx, s.db, `INSERT INTO gw_admin_audit (at, user_id, username, action, study_uid, patient_id, detail, remote_addr)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, nanos(e.At), e.UserID, e.Username, e.Action, e.StudyUID, e.PatientID, e.Detail, e.RemoteAddr)
	if err != nil {
		return fmt.Errorf("store: audit: %w", err)
	}
	return nil
}

// Audit implements Admin.
func (s *SQL) Audit(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	var (
		where []string
		args  []any
	)
	if f.StudyUID != "" {
		where, args = append(where, "study_uid = ?"), append(args, f.StudyUID)
	}
	if f.Username != "" {
		where, args = append(where, "username = ?"), append(args, f.Username)
	}
	q := `SELECT id, at, user_id, username, action, study_uid, patient_id, detail, remote_addr FROM gw_admin_audit`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 200
	}
	q += " ORDER BY id DESC LIMIT ?"
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, s.f.rebind(q), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var (
			e  AuditEntry
			at int64
		)
		if err := rows.Scan(&e.ID, &at, &e.UserID, &e.Username, &e.Action, &e.StudyUID, &e.PatientID, &e.Detail, &e.RemoteAddr); err != nil {
			return nil, err
		}
		e.At = fromNanos(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// StudyCounts implements Admin.
func (s *SQL) StudyCounts(ctx context.Context) (map[StudyState]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT state, COUNT(*) FROM gw_studies GROUP BY state`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[StudyState]int{}
	for rows.Next() {
		var (
			state string
			n     int
		)
		if err := rows.Scan(&state, &n); err != nil {
			return nil, err
		}
		out[StudyState(state)] = n
	}
	return out, rows.Err()
}

// JobCounts implements Admin.
func (s *SQL) JobCounts(ctx context.Context) (map[string]map[JobState]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT kind, state, COUNT(*) FROM gw_jobs GROUP BY kind, state`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]map[JobState]int{}
	for rows.Next() {
		var (
			kind, state string
			n           int
		)
		if err := rows.Scan(&kind, &state, &n); err != nil {
			return nil, err
		}
		if out[kind] == nil {
			out[kind] = map[JobState]int{}
		}
		out[kind][JobState(state)] = n
	}
	return out, rows.Err()
}
