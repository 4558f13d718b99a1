package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"dicomgate/gateway/store"
)

// RunAdmin runs the conformance tests of the admin UI's tables (users,
// sessions, setup tokens, audit log); open returns a fresh, empty store
// each call.
func RunAdmin(t *testing.T, open func(t *testing.T) store.Store) {
	runAll(t, open, []suiteTest{
		{"AdminUsers", testAdminUsers},
		{"AdminSessions", testAdminSessions},
		{"SetupTokens", testSetupTokens},
		{"SetupTokenOnceConcurrently", testSetupTokenOnce},
		{"Audit", testAudit},
		{"Counts", testCounts},
	})
}

func testAdminUsers(t *testing.T, s store.Store) {
	ctx := context.Background()
	if n, err := s.CountAdminUsers(ctx); err != nil || n != 0 {
		t.Fatalf("CountAdminUsers on empty store = %d, %v", n, err)
	}
	u, err := s.CreateAdminUser(ctx, store.AdminUser{Username: "alice", Role: store.RoleAdmin, PasswordHash: "$argon2id$x", CreatedAt: t0})
	if err != nil || u.ID == 0 {
		t.Fatalf("CreateAdminUser = %+v, %v", u, err)
	}
	if _, err := s.CreateAdminUser(ctx, store.AdminUser{Username: "alice", Role: store.RoleStaff, PasswordHash: "h"}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate username: %v, want ErrConflict", err)
	}
	for _, bad := range []store.AdminUser{
		{Username: "", Role: store.RoleStaff, PasswordHash: "h"},
		{Username: "bob", Role: "root", PasswordHash: "h"},
		{Username: "bob", Role: store.RoleStaff},
	} {
		if _, err := s.CreateAdminUser(ctx, bad); err == nil {
			t.Fatalf("CreateAdminUser(%+v) accepted", bad)
		}
	}
	b, err := s.CreateAdminUser(ctx, store.AdminUser{Username: "bob", Role: store.RoleStaff, PasswordHash: "h2"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.AdminUser(ctx, u.ID)
	if err != nil || got.Username != "alice" || got.Role != store.RoleAdmin || got.PasswordHash != "$argon2id$x" || !got.CreatedAt.Equal(t0) || got.Disabled {
		t.Fatalf("AdminUser = %+v, %v", got, err)
	}
	got, err = s.AdminUserByName(ctx, "bob")
	if err != nil || got.ID != b.ID {
		t.Fatalf("AdminUserByName = %+v, %v", got, err)
	}
	if _, err := s.AdminUserByName(ctx, "carol"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing user: %v", err)
	}
	if _, err := s.AdminUser(ctx, 9999); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing user id: %v", err)
	}
	got.Role, got.Disabled, got.PasswordHash = store.RoleAdmin, true, "h3"
	if err := s.UpdateAdminUser(ctx, got); err != nil {
		t.Fatal(err)
	}
	got, _ = s.AdminUser(ctx, b.ID)
	if got.Role != store.RoleAdmin || !got.Disabled || got.PasswordHash != "h3" {
		t.Fatalf("after update: %+v", got)
	}
	if err := s.UpdateAdminUser(ctx, store.AdminUser{ID: 9999, Role: store.RoleStaff, PasswordHash: "h"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update missing: %v", err)
	}
	all, err := s.AdminUsers(ctx)
	if err != nil || len(all) != 2 || all[0].Username != "alice" || all[1].Username != "bob" {
		t.Fatalf("AdminUsers = %+v, %v", all, err)
	}
	if n, _ := s.CountAdminUsers(ctx); n != 2 {
		t.Fatalf("CountAdminUsers = %d", n)
	}
}

func testAdminSessions(t *testing.T, s store.Store) {
	ctx := context.Background()
	u, err := s.CreateAdminUser(ctx, store.AdminUser{Username: "alice", Role: store.RoleStaff, PasswordHash: "h"})
	if err != nil {
		t.Fatal(err)
	}
	a := store.AdminSession{ID: "digest1", UserID: u.ID, CSRFToken: "csrf1", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour), RemoteAddr: "127.0.0.1"}
	if err := s.CreateAdminSession(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAdminSession(ctx, a); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate session: %v", err)
	}
	got, err := s.AdminSession(ctx, "digest1", t0.Add(time.Minute))
	if err != nil || got.UserID != u.ID || got.CSRFToken != "csrf1" || !got.LastSeen.Equal(t0) || !got.ExpiresAt.Equal(t0.Add(time.Hour)) || got.RemoteAddr != "127.0.0.1" {
		t.Fatalf("AdminSession = %+v, %v", got, err)
	}
	if _, err := s.AdminSession(ctx, "digest1", t0.Add(time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired session: %v, want ErrNotFound", err)
	}
	if err := s.TouchAdminSession(ctx, "digest1", t0.Add(50*time.Minute), t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, err = s.AdminSession(ctx, "digest1", t0.Add(90*time.Minute)); err != nil || !got.LastSeen.Equal(t0.Add(50*time.Minute)) {
		t.Fatalf("after touch: %+v, %v", got, err)
	}
	if err := s.TouchAdminSession(ctx, "nope", t0, t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("touch missing: %v", err)
	}
	s.CreateAdminSession(ctx, store.AdminSession{ID: "digest2", UserID: u.ID, CSRFToken: "c2", ExpiresAt: t0.Add(time.Minute)})
	s.CreateAdminSession(ctx, store.AdminSession{ID: "digest3", UserID: u.ID, CSRFToken: "c3", ExpiresAt: t0.Add(3 * time.Hour)})
	n, err := s.PurgeAdminSessions(ctx, t0.Add(10*time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("PurgeAdminSessions = %d, %v", n, err)
	}
	if err := s.DeleteAdminSession(ctx, "digest1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AdminSession(ctx, "digest1", t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted session: %v", err)
	}
	if err := s.DeleteAdminSessions(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AdminSession(ctx, "digest3", t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("session of user after DeleteAdminSessions: %v", err)
	}
}

func testSetupTokens(t *testing.T, s store.Store) {
	ctx := context.Background()
	if err := s.CreateSetupToken(ctx, "tok", t0, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSetupToken(ctx, "tok", t0, t0.Add(time.Hour)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate token: %v", err)
	}
	if err := s.UseSetupToken(ctx, "other", t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown token: %v", err)
	}
	if err := s.UseSetupToken(ctx, "tok", t0.Add(time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired token: %v", err)
	}
	if err := s.UseSetupToken(ctx, "tok", t0.Add(time.Minute)); err != nil {
		t.Fatalf("first use: %v", err)
	}
	if err := s.UseSetupToken(ctx, "tok", t0.Add(2*time.Minute)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second use: %v, want ErrNotFound", err)
	}
}

func testSetupTokenOnce(t *testing.T, s store.Store) {
	ctx := context.Background()
	if err := s.CreateSetupToken(ctx, "race", t0, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	const n = 8
	var (
		wg sync.WaitGroup
		mu sync.Mutex
		ok int
	)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.UseSetupToken(ctx, "race", t0.Add(time.Minute))
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				t.Errorf("use: %v", err)
			}
			if err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if ok != 1 {
		t.Fatalf("%d concurrent uses succeeded, want 1", ok)
	}
}

func testAudit(t *testing.T, s store.Store) {
	ctx := context.Background()
	if err := s.AddAudit(ctx, store.AuditEntry{}); err == nil {
		t.Fatal("audit entry without action accepted")
	}
	for i := 0; i < 5; i++ {
		e := store.AuditEntry{At: t0.Add(time.Duration(i) * time.Second), UserID: 1, Username: "alice",
			Action: fmt.Sprintf("action-%d", i), StudyUID: "1.2.3", PatientID: "P1", Detail: "d", RemoteAddr: "127.0.0.1"}
		if i%2 == 1 {
			e.StudyUID, e.Username = "1.2.4", "bob"
		}
		if err := s.AddAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.Audit(ctx, store.AuditFilter{})
	if err != nil || len(all) != 5 || all[0].Action != "action-4" || !all[0].At.Equal(t0.Add(4*time.Second)) || all[0].PatientID != "P1" || all[0].RemoteAddr != "127.0.0.1" {
		t.Fatalf("Audit = %+v, %v", all, err)
	}
	byStudy, err := s.Audit(ctx, store.AuditFilter{StudyUID: "1.2.4"})
	if err != nil || len(byStudy) != 2 || byStudy[0].Action != "action-3" || byStudy[1].Action != "action-1" {
		t.Fatalf("Audit(study) = %+v, %v", byStudy, err)
	}
	byUser, err := s.Audit(ctx, store.AuditFilter{Username: "alice", Limit: 2})
	if err != nil || len(byUser) != 2 || byUser[0].Action != "action-4" || byUser[1].Action != "action-2" {
		t.Fatalf("Audit(user, limit) = %+v, %v", byUser, err)
	}
}

func testCounts(t *testing.T, s store.Store) {
	ctx := context.Background()
	if c, err := s.StudyCounts(ctx); err != nil || len(c) != 0 {
		t.Fatalf("StudyCounts on empty store = %v, %v", c, err)
	}
	putInstance(ctx, s, instance("2.1", "2.1.1", "2.1.1.1", t0), facts("CT"), t0)
	putInstance(ctx, s, instance("2.2", "2.2.1", "2.2.1.1", t0), facts("CT"), t0)
	putInstance(ctx, s, instance("2.3", "2.3.1", "2.3.1.1", t0), facts("CT"), t0)
	s.UpdateStudy(ctx, "2.3", func(st *store.Study) error { st.State = store.StateFailed; return nil })
	c, err := s.StudyCounts(ctx)
	if err != nil || len(c) != 2 || c[store.StateReceiving] != 2 || c[store.StateFailed] != 1 {
		t.Fatalf("StudyCounts = %v, %v", c, err)
	}
	s.EnqueueJob(ctx, "deliver", "2.1", t0, 3)
	s.EnqueueJob(ctx, "deliver", "2.2", t0, 3)
	s.EnqueueJob(ctx, "mail", "m1", t0, 3)
	if _, err := s.ClaimJob(ctx, []string{"mail"}, t0, time.Minute); err != nil {
		t.Fatal(err)
	}
	j, err := s.JobCounts(ctx)
	if err != nil || j["deliver"][store.JobAvailable] != 2 || j["mail"][store.JobRunning] != 1 || len(j["mail"]) != 1 {
		t.Fatalf("JobCounts = %v, %v", j, err)
	}
}
