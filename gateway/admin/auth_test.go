package admin_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"dicomgate/gateway/admin"
	"dicomgate/gateway/store"
)

func TestPasswordHash(t *testing.T) {
	h, err := admin.HashPassword("correct horse battery", testArgon2)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=1024,t=1,p=1$") || strings.Count(h, "$") != 5 {
		t.Fatalf("hash %q is not a PHC argon2id string", h)
	}
	h2, _ := admin.HashPassword("correct horse battery", testArgon2)
	if h == h2 {
		t.Fatal("two hashes of one password are equal: no random salt")
	}
	for _, tt := range []struct {
		hash, pw string
		ok       bool
		err      bool
	}{
		{h, "correct horse battery", true, false},
		{h, "correct horse batterY", false, false},
		{h, "", false, false},
		{"", "x", false, true},
		{"$argon2i$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$" + strings.Repeat("A", 43), "x", false, true},
		{"$argon2id$v=16$m=1024,t=1,p=1$c2FsdHNhbHQ$" + strings.Repeat("A", 43), "x", false, true},
		{"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$" + strings.Repeat("A", 43), "x", false, true},
		{"$argon2id$v=19$m=1024,t=1000,p=1$c2FsdHNhbHQ$" + strings.Repeat("A", 43), "x", false, true},
		{"$argon2id$v=19$m=1024,t=1,p=1$!!$" + strings.Repeat("A", 43), "x", false, true},
		{"$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$AAAA", "x", false, true},
	} {
		ok, err := admin.CheckPassword(tt.hash, tt.pw)
		if ok != tt.ok || (err != nil) != tt.err {
			t.Errorf("CheckPassword(%q, %q) = %v, %v", tt.hash, tt.pw, ok, err)
		}
	}
	if _, err := admin.HashPassword("x", admin.Argon2Params{Memory: 1, Time: 1, Threads: 1, SaltLen: 4, KeyLen: 32}); err == nil {
		t.Fatal("weak parameters accepted")
	}
}

func TestLoginLogout(t *testing.T) {
	e := newEnv(t)
	e.user("alice", store.RoleStaff)
	b := e.browser()

	// Not signed in: pages send to the sign-in page.
	if r := b.get("/"); r.code != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/login") {
		t.Fatalf("anonymous dashboard: %d %s", r.code, r.header.Get("Location"))
	}
	r := b.get("/login")
	mustContain(t, r, `name="username"`, `name="csrf"`)
	if len(r.header.Values("Set-Cookie")) == 0 {
		t.Fatal("the sign-in form set no CSRF cookie")
	}
	for _, cookie := range r.header.Values("Set-Cookie") {
		if !strings.Contains(cookie, "HttpOnly") || !strings.Contains(cookie, "SameSite=Strict") {
			t.Fatalf("cookie %q lacks HttpOnly or SameSite=Strict", cookie)
		}
	}
	if r.header.Get("Content-Security-Policy") == "" || r.header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("security headers missing: %v", r.header)
	}

	r = b.post("/login", url.Values{"username": {"alice"}, "password": {"wrong password!"}})
	if r.code != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", r.code)
	}
	mustContain(t, r, `id="err-form"`, "Wrong user name or password.")
	r = b.post("/login", url.Values{"username": {"nobody"}, "password": {"correct horse battery"}})
	if r.code != http.StatusUnauthorized {
		t.Fatalf("unknown user: %d", r.code)
	}
	if n := e.auditCount("login-failed"); n != 2 {
		t.Fatalf("%d login-failed audit rows, want 2", n)
	}

	r = b.post("/login", url.Values{"username": {"alice"}, "password": {"correct horse battery"}, "next": {"/patients"}})
	if r.code != http.StatusSeeOther || r.header.Get("Location") != "/patients" {
		t.Fatalf("login: %d %s", r.code, r.header.Get("Location"))
	}
	var sessionCookie string
	for _, c := range r.header.Values("Set-Cookie") {
		if strings.HasPrefix(c, "dg_session=") {
			sessionCookie = c
		}
	}
	if !strings.Contains(sessionCookie, "HttpOnly") || !strings.Contains(sessionCookie, "SameSite=Strict") || strings.Contains(sessionCookie, "Secure") {
		t.Fatalf("session cookie %q: want HttpOnly, SameSite=Strict, not Secure over plain HTTP", sessionCookie)
	}
	if !e.audited("login", "") {
		t.Fatal("login not audited")
	}
	r = b.get("/")
	mustContain(t, r, "alice (staff)", "Sign out")

	r = b.post("/logout", nil)
	if r.code != http.StatusSeeOther || r.header.Get("Location") != "/login" {
		t.Fatalf("logout: %d", r.code)
	}
	if !e.audited("logout", "") {
		t.Fatal("logout not audited")
	}
	if r := b.get("/"); r.code != http.StatusSeeOther {
		t.Fatalf("dashboard after logout: %d", r.code)
	}
	// An open redirect is refused.
	b.get("/login")
	r = b.post("/login", url.Values{"username": {"alice"}, "password": {"correct horse battery"}, "next": {"//evil.example/"}})
	if r.header.Get("Location") != "/" {
		t.Fatalf("next=//evil.example/ redirected to %q", r.header.Get("Location"))
	}
}

func TestSecureCookies(t *testing.T) {
	e := newEnv(t, func(_ *env, _ *gatewayConfig, c *admin.Config) { c.SecureCookies = true })
	e.user("alice", store.RoleStaff)
	b := e.browser()
	r := b.get("/login")
	if len(r.header.Values("Set-Cookie")) == 0 {
		t.Fatal("the sign-in form set no CSRF cookie")
	}
	for _, c := range r.header.Values("Set-Cookie") {
		if !strings.Contains(c, "Secure") {
			t.Fatalf("cookie %q not Secure with SecureCookies", c)
		}
	}
}

func TestLoginCSRF(t *testing.T) {
	e := newEnv(t)
	e.user("alice", store.RoleStaff)
	b := e.browser()
	b.get("/login")
	r := b.post("/login", url.Values{"csrf": {""}, "username": {"alice"}, "password": {"correct horse battery"}})
	if r.code != http.StatusForbidden {
		t.Fatalf("login without CSRF token: %d", r.code)
	}
	mustContain(t, r, "CSRF")
	r = b.post("/login", url.Values{"csrf": {"forged-token-forged-token-forged-token-forged"}, "username": {"alice"}, "password": {"correct horse battery"}})
	if r.code != http.StatusForbidden {
		t.Fatalf("login with a forged CSRF token: %d", r.code)
	}
}

func TestSessionCSRF(t *testing.T) {
	e := newEnv(t)
	e.user("alice", store.RoleAdmin)
	b := e.signIn("alice")
	for _, tok := range []string{"", "wrong"} {
		r := b.post("/logout", url.Values{"csrf": {tok}})
		if r.code != http.StatusForbidden {
			t.Fatalf("POST with csrf %q: %d", tok, r.code)
		}
		mustContain(t, r, "security token is missing or invalid (CSRF)")
	}
	// The token of another session is refused too.
	other := e.signIn("alice")
	r := b.post("/settings/previews", url.Values{"csrf": {other.csrf}, "preview_size": {"512"}, "thumbnail_size": {"64"}, "quality": {"80"}})
	if r.code != http.StatusForbidden {
		t.Fatalf("POST with another session's token: %d", r.code)
	}
	if _, err := e.db.Setting(context.Background(), admin.SettingPreviews); err == nil {
		t.Fatal("a refused request changed a setting")
	}
}

func TestSessionExpiry(t *testing.T) {
	e := newEnv(t, func(_ *env, _ *gatewayConfig, c *admin.Config) {
		c.SessionIdle, c.SessionMax = 30*time.Minute, 2*time.Hour
	})
	e.user("alice", store.RoleStaff)
	b := e.signIn("alice")

	// Activity keeps the session alive past the first idle period …
	for i := 0; i < 3; i++ {
		e.clock.Advance(20 * time.Minute)
		if r := b.get("/"); r.code != http.StatusOK {
			t.Fatalf("active session ended after %d×20 min: %d", i+1, r.code)
		}
	}
	// … but not past the absolute lifetime.
	e.clock.Advance(20 * time.Minute)
	b.get("/")
	e.clock.Advance(20 * time.Minute)
	b.get("/")
	e.clock.Advance(20 * time.Minute)
	if r := b.get("/"); r.code != http.StatusSeeOther {
		t.Fatalf("session older than SessionMax: %d", r.code)
	}

	// Idle expiry; the polling dashboard is told to go to the sign-in page.
	b.login("alice")
	e.clock.Advance(31 * time.Minute)
	r := b.get("/fragments/dashboard", "HX-Request", "true")
	if r.code != http.StatusUnauthorized || r.header.Get("HX-Redirect") != "/login" {
		t.Fatalf("idle session, htmx poll: %d, HX-Redirect %q", r.code, r.header.Get("HX-Redirect"))
	}
	if r := b.get("/"); r.code != http.StatusSeeOther {
		t.Fatalf("idle session: %d", r.code)
	}
	if n, err := e.db.PurgeAdminSessions(context.Background(), e.clock.Now()); err != nil || n != 2 {
		t.Fatalf("PurgeAdminSessions = %d, %v; want the 2 expired sessions", n, err)
	}
}

func TestDisabledUserLosesSession(t *testing.T) {
	e := newEnv(t)
	e.user("root", store.RoleAdmin)
	bob := e.user("bob", store.RoleStaff)
	a, b := e.signIn("root"), e.signIn("bob")
	if r := a.post("/users/"+itoa(bob.ID)+"/disable", nil); r.code != http.StatusSeeOther {
		t.Fatalf("disable: %d %s", r.code, r.body)
	}
	if r := b.get("/"); r.code != http.StatusSeeOther {
		t.Fatalf("disabled user's session still works: %d", r.code)
	}
	b.get("/login")
	if r := b.post("/login", url.Values{"username": {"bob"}, "password": {"correct horse battery"}}); r.code != http.StatusUnauthorized {
		t.Fatalf("disabled user signed in: %d", r.code)
	}
	if !e.audited("user-disabled", "") {
		t.Fatal("disable not audited")
	}
	if r := a.post("/users/"+itoa(bob.ID)+"/enable", nil); r.code != http.StatusSeeOther {
		t.Fatalf("enable: %d", r.code)
	}
	b.login("bob")
}

func TestSetupToken(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	link, err := e.srv.SetupURL(ctx, "http://gw.example:8081/")
	if err != nil || !strings.HasPrefix(link, "http://gw.example:8081/setup?token=") {
		t.Fatalf("SetupURL = %q, %v", link, err)
	}
	u, _ := url.Parse(link)
	token := u.Query().Get("token")
	b := e.browser()

	r := b.get("/setup?token=" + url.QueryEscape(token))
	mustContain(t, r, "Create the first admin")
	// Invalid input: errors next to the fields, token not used up.
	r = b.post("/setup", url.Values{"token": {token}, "username": {"bad name!"}, "password": {"short"}, "password2": {"short"}})
	if r.code != http.StatusUnprocessableEntity {
		t.Fatalf("invalid setup form: %d", r.code)
	}
	mustContain(t, r, `id="err-username"`, `id="err-password"`, "At least 10 characters.")
	r = b.post("/setup", url.Values{"token": {token}, "username": {"root"}, "password": {"correct horse battery"}, "password2": {"correct horse batterx"}})
	mustContain(t, r, "The two passwords differ.")
	// A wrong token creates nobody.
	r = b.post("/setup", url.Values{"token": {"not-the-token"}, "username": {"root"}, "password": {"correct horse battery"}, "password2": {"correct horse battery"}})
	if r.code != http.StatusForbidden {
		t.Fatalf("wrong token: %d", r.code)
	}
	if n, _ := e.db.CountAdminUsers(ctx); n != 0 {
		t.Fatal("wrong token created a user")
	}

	r = b.post("/setup", url.Values{"token": {token}, "username": {"root"}, "password": {"correct horse battery"}, "password2": {"correct horse battery"}})
	if r.code != http.StatusSeeOther {
		t.Fatalf("setup: %d %s", r.code, r.body)
	}
	root, err := e.db.AdminUserByName(ctx, "root")
	if err != nil || root.Role != store.RoleAdmin {
		t.Fatalf("first admin = %+v, %v", root, err)
	}
	if r := b.get("/settings"); r.code != http.StatusOK {
		t.Fatalf("setup did not sign the admin in: %d", r.code)
	}
	if !e.audited("setup", "") {
		t.Fatal("setup not audited")
	}
	// The token worked once: a second use is refused.
	other := e.browser()
	other.get("/login")
	r = other.post("/setup", url.Values{"token": {token}, "username": {"root2"}, "password": {"correct horse battery"}, "password2": {"correct horse battery"}})
	if r.code != http.StatusForbidden {
		t.Fatalf("second use of the setup token: %d", r.code)
	}
	if link, err := e.srv.SetupURL(ctx, "http://x"); err != nil || link != "" {
		t.Fatalf("SetupURL with a user = %q, %v; want none", link, err)
	}
}

func TestSetupTokenExpires(t *testing.T) {
	e := newEnv(t, func(_ *env, _ *gatewayConfig, c *admin.Config) { c.SetupTokenTTL = time.Hour })
	link, err := e.srv.SetupURL(context.Background(), "http://x")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(link)
	e.clock.Advance(61 * time.Minute)
	b := e.browser()
	b.get("/setup?token=" + url.QueryEscape(u.Query().Get("token")))
	r := b.post("/setup", url.Values{"token": {u.Query().Get("token")}, "username": {"root"}, "password": {"correct horse battery"}, "password2": {"correct horse battery"}})
	if r.code != http.StatusForbidden {
		t.Fatalf("expired token: %d", r.code)
	}
	mustContain(t, r, "invalid, used or expired")
	if !e.audited("setup-refused", "") {
		t.Fatal("refused setup not audited")
	}
}

func TestRoles(t *testing.T) {
	e := newEnv(t)
	e.user("bob", store.RoleStaff)
	b := e.signIn("bob")
	for _, path := range []string{"/settings", "/users", "/audit"} {
		r := b.get(path)
		if r.code != http.StatusForbidden {
			t.Fatalf("staff GET %s: %d", path, r.code)
		}
		mustContain(t, r, "403 Forbidden", "needs the admin role")
	}
	for _, path := range []string{"/settings/dicom", "/settings/routing", "/users"} {
		if r := b.post(path, url.Values{"ae_title": {"X"}}); r.code != http.StatusForbidden {
			t.Fatalf("staff POST %s: %d", path, r.code)
		}
	}
	if _, err := e.db.Setting(context.Background(), admin.SettingDICOM); err == nil {
		t.Fatal("staff changed a setting")
	}
	// Staff pages work.
	for _, path := range []string{"/", "/patients", "/outbox"} {
		if r := b.get(path); r.code != http.StatusOK {
			t.Fatalf("staff GET %s: %d", path, r.code)
		}
	}
}

func TestUsersPage(t *testing.T) {
	e := newEnv(t)
	e.user("root", store.RoleAdmin)
	b := e.signIn("root")
	for _, tt := range []struct {
		form  url.Values
		field string
	}{
		{url.Values{"username": {""}, "role": {"staff"}, "password": {"correct horse battery"}, "password2": {"correct horse battery"}}, "err-username"},
		{url.Values{"username": {"carol"}, "role": {"root"}, "password": {"correct horse battery"}, "password2": {"correct horse battery"}}, "err-role"},
		{url.Values{"username": {"carol"}, "role": {"staff"}, "password": {"short"}, "password2": {"short"}}, "err-password"},
		{url.Values{"username": {"root"}, "role": {"staff"}, "password": {"correct horse battery"}, "password2": {"correct horse battery"}}, "err-username"},
	} {
		r := b.post("/users", tt.form)
		if r.code != http.StatusUnprocessableEntity {
			t.Fatalf("POST /users %v: %d", tt.form, r.code)
		}
		mustContain(t, r, `id="`+tt.field+`"`)
	}
	r := b.post("/users", url.Values{"username": {"carol"}, "role": {"staff"}, "password": {"correct horse battery"}, "password2": {"correct horse battery"}})
	if r.code != http.StatusSeeOther {
		t.Fatalf("create user: %d %s", r.code, r.body)
	}
	if u, err := e.db.AdminUserByName(context.Background(), "carol"); err != nil || u.Role != store.RoleStaff {
		t.Fatalf("carol = %+v, %v", u, err)
	}
	if !e.audited("user-created", "") {
		t.Fatal("user creation not audited")
	}
	mustContain(t, b.get("/users"), "carol", "User carol created.")
	e.signIn("carol")
}
