package admin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"dicomgate/gateway/store"
)

// Cookie and form field names.
const (
	sessionCookie = "dg_session"
	// anonCookie carries the double-submit CSRF token of the forms shown
	// before there is a session (sign-in, setup).
	anonCookie = "dg_pre"
	csrfField  = "csrf"
	csrfHeader = "X-CSRF-Token"
	ctxSession = "admin.session"
)

// maxUsernameLen bounds user names.
const maxUsernameLen = 64

// What a refused form says.
const (
	csrfRefused    = "The form's security token is missing or invalid (CSRF). Reload the page and try again."
	setupDone      = "The gateway is set up already; sign in instead."
	setupLinkStale = "This setup link is invalid, used or expired. Restart the gateway for a new one."
)

// session is the signed-in user of a request.
type session struct {
	store.AdminSession
	user store.AdminUser
}

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// digest is what the database keeps of a session cookie or setup token.
func digest(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

func (s *Server) secure(c *gin.Context) bool {
	return s.cfg.SecureCookies || c.Request.TLS != nil
}

func (s *Server) setCookie(c *gin.Context, name, value string, maxAge int) {
	http.SetCookie(c.Writer, &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: s.secure(c), MaxAge: maxAge})
}

// requireSession loads the session of the cookie; without a live one it
// sends the browser to the sign-in page (htmx requests get HX-Redirect so
// a polling dashboard leaves too).
func (s *Server) requireSession(c *gin.Context) {
	ck, err := c.Request.Cookie(sessionCookie)
	if err != nil || ck.Value == "" || len(ck.Value) > 128 {
		s.toLogin(c)
		return
	}
	ctx := c.Request.Context()
	now := s.cfg.Now()
	as, err := s.db.AdminSession(ctx, digest(ck.Value), now)
	if errors.Is(err, store.ErrNotFound) {
		s.setCookie(c, sessionCookie, "", -1)
		s.toLogin(c)
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	u, err := s.db.AdminUser(ctx, as.UserID)
	if err != nil || u.Disabled {
		s.db.DeleteAdminSession(ctx, as.ID)
		s.setCookie(c, sessionCookie, "", -1)
		s.toLogin(c)
		return
	}
	// Sliding expiry, capped by the absolute lifetime. Written at most
	// once a minute: the dashboard polls every 2 s.
	if now.Sub(as.LastSeen) >= touchEvery(s.cfg.SessionIdle) {
		exp := now.Add(s.cfg.SessionIdle)
		if max := as.CreatedAt.Add(s.cfg.SessionMax); exp.After(max) {
			exp = max
		}
		if err := s.db.TouchAdminSession(ctx, as.ID, now, exp); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.fail(c, err)
			return
		}
		as.LastSeen, as.ExpiresAt = now, exp
	}
	c.Set(ctxSession, &session{AdminSession: as, user: u})
	c.Next()
}

// touchEvery is how stale LastSeen may be before a request refreshes
// the session: a minute, less for short idle timeouts.
func touchEvery(idle time.Duration) time.Duration {
	if d := idle / 30; d < time.Minute {
		return d
	}
	return time.Minute
}

func (s *Server) toLogin(c *gin.Context) {
	if isHTMX(c) {
		c.Header("HX-Redirect", "/login")
		c.AbortWithStatus(http.StatusUnauthorized)
		return
	}
	if c.Request.Method != http.MethodGet {
		s.errorPage(c, http.StatusUnauthorized, "Your session has ended. Sign in again.")
		return
	}
	c.Redirect(http.StatusSeeOther, "/login?next="+url.QueryEscape(c.Request.URL.RequestURI()))
	c.Abort()
}

func sessionOf(c *gin.Context) *session {
	v, _ := c.Get(ctxSession)
	ss, _ := v.(*session)
	return ss
}

// checkCSRF refuses a non-GET request whose synchronizer token is missing
// or is not its session's.
func (s *Server) checkCSRF(c *gin.Context) {
	switch c.Request.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		c.Next()
		return
	}
	ss := sessionOf(c)
	got := c.GetHeader(csrfHeader)
	if got == "" {
		got = c.PostForm(csrfField)
	}
	if ss == nil || got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(ss.CSRFToken)) != 1 {
		s.errorPage(c, http.StatusForbidden, csrfRefused)
		return
	}
	c.Next()
}

// anonToken returns the double-submit token of the forms shown without a
// session, setting its cookie when missing.
func (s *Server) anonToken(c *gin.Context) (string, error) {
	if ck, err := c.Request.Cookie(anonCookie); err == nil && len(ck.Value) >= 40 && len(ck.Value) <= 64 {
		return ck.Value, nil
	}
	t, err := randomToken()
	if err != nil {
		return "", err
	}
	s.setCookie(c, anonCookie, t, 3600)
	return t, nil
}

func (s *Server) checkAnonCSRF(c *gin.Context) {
	ck, err := c.Request.Cookie(anonCookie)
	got := c.PostForm(csrfField)
	if err != nil || ck.Value == "" || got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(ck.Value)) != 1 {
		s.errorPage(c, http.StatusForbidden, csrfRefused)
		return
	}
	c.Next()
}

// requireRole refuses users without one of roles with a 403 page.
func (s *Server) requireRole(roles ...store.AdminRole) gin.HandlerFunc {
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = string(r)
	}
	return func(c *gin.Context) {
		ss := sessionOf(c)
		if ss == nil || !slices.Contains(roles, ss.user.Role) {
			s.errorPage(c, http.StatusForbidden, fmt.Sprintf("This needs the %s role.", strings.Join(names, " or ")))
			return
		}
		c.Next()
	}
}

// startSession signs u in: a new session row and its cookie. A session
// id existing before sign-in is never reused (session fixation).
func (s *Server) startSession(c *gin.Context, u store.AdminUser) error {
	tok, err := randomToken()
	if err != nil {
		return err
	}
	csrf, err := randomToken()
	if err != nil {
		return err
	}
	now := s.cfg.Now()
	exp := now.Add(s.cfg.SessionIdle)
	if max := now.Add(s.cfg.SessionMax); exp.After(max) {
		exp = max
	}
	if err := s.db.CreateAdminSession(c.Request.Context(), store.AdminSession{ID: digest(tok), UserID: u.ID, CSRFToken: csrf,
		CreatedAt: now, LastSeen: now, ExpiresAt: exp, RemoteAddr: c.ClientIP()}); err != nil {
		return err
	}
	s.setCookie(c, sessionCookie, tok, int(s.cfg.SessionMax.Seconds()))
	s.setCookie(c, anonCookie, "", -1)
	return nil
}

type loginView struct {
	page
	Token    string
	Next     string
	Username string
	Errors   map[string]string
}

func (s *Server) loginForm(c *gin.Context) {
	tok, err := s.anonToken(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.render(c, http.StatusOK, "login", loginView{page: s.pageFor(c, ""), Token: tok, Next: safeNext(c.Query("next"))})
}

// safeNext keeps a post-login redirect on this site.
func safeNext(n string) string {
	if !strings.HasPrefix(n, "/") || strings.HasPrefix(n, "//") || strings.HasPrefix(n, "/\\") || len(n) > 512 {
		return "/"
	}
	return n
}

func (s *Server) login(c *gin.Context) {
	ctx := c.Request.Context()
	username := strings.TrimSpace(c.PostForm("username"))
	password := c.PostForm("password")
	v := loginView{page: s.pageFor(c, ""), Token: c.PostForm(csrfField), Next: safeNext(c.PostForm("next")), Username: username}
	if username == "" || password == "" || len(username) > maxUsernameLen || len(password) > MaxPasswordLen {
		v.Errors = map[string]string{"form": "Enter your user name and password."}
		s.render(c, http.StatusUnprocessableEntity, "login", v)
		return
	}
	// Limits are checked before the password so a locked-out guesser
	// learns nothing and costs no argon2 run.
	userKey, ipKey := strings.ToLower(username), c.ClientIP()
	now := s.cfg.Now()
	if s.userFails.blocked(userKey, now) || s.ipFails.blocked(ipKey, now) {
		v.Errors = map[string]string{"form": loginLockMessage}
		c.Header("Retry-After", strconv.Itoa(int(loginFailWindow.Seconds())))
		s.render(c, http.StatusTooManyRequests, "login", v)
		return
	}
	u, err := s.db.AdminUserByName(ctx, username)
	hash := u.PasswordHash
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.fail(c, err)
			return
		}
		// Verify anyway so a missing user takes as long as a wrong password.
		hash = s.dummyHash
	}
	ok, herr := s.checkPassword(hash, password)
	if herr != nil {
		s.log.Error("admin: stored password hash", "user", username, "err", herr)
	}
	if err != nil || !ok || u.Disabled {
		s.auditAs(ctx, c, store.AuditEntry{Username: username, Action: "login-failed"})
		if s.userFails.fail(userKey, now) {
			s.auditAs(ctx, c, store.AuditEntry{Username: username, Action: "login-locked",
				Detail: fmt.Sprintf("user name locked for %v after %d failed sign-ins", loginFailWindow, maxUserFailures)})
		}
		if s.ipFails.fail(ipKey, now) {
			s.auditAs(ctx, c, store.AuditEntry{Username: username, Action: "login-locked",
				Detail: fmt.Sprintf("client %s locked for %v after %d failed sign-ins", ipKey, loginFailWindow, maxIPFailures)})
		}
		v.Errors = map[string]string{"form": "Wrong user name or password."}
		s.render(c, http.StatusUnauthorized, "login", v)
		return
	}
	s.userFails.reset(userKey)
	if err := s.startSession(c, u); err != nil {
		s.fail(c, err)
		return
	}
	if err := s.auditAs(ctx, c, store.AuditEntry{UserID: u.ID, Username: u.Username, Action: "login"}); err != nil {
		s.fail(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, v.Next)
}

func (s *Server) logout(c *gin.Context) {
	ss := sessionOf(c)
	if err := s.db.DeleteAdminSession(c.Request.Context(), ss.ID); err != nil {
		s.fail(c, err)
		return
	}
	s.audit(c, "logout", "", "", "")
	s.setCookie(c, sessionCookie, "", -1)
	c.Redirect(http.StatusSeeOther, "/login")
}

// SetupURL returns the one-time link that creates the first admin, when
// no user exists yet (else ""). base is the UI's external URL, e.g.
// http://gateway.example:8081. Each call makes a new token; the token
// expires after Config.SetupTokenTTL and works once.
func (s *Server) SetupURL(ctx context.Context, base string) (string, error) {
	n, err := s.db.CountAdminUsers(ctx)
	if err != nil {
		return "", err
	}
	if n > 0 {
		return "", nil
	}
	tok, err := randomToken()
	if err != nil {
		return "", err
	}
	now := s.cfg.Now()
	if err := s.db.CreateSetupToken(ctx, digest(tok), now, now.Add(s.cfg.SetupTokenTTL)); err != nil {
		return "", err
	}
	return strings.TrimRight(base, "/") + "/setup?token=" + url.QueryEscape(tok), nil
}

type setupView struct {
	page
	Token      string
	SetupToken string
	Username   string
	Errors     map[string]string
}

// refuseWhenSetUp answers a setup request once a user exists (403), or
// with the store's error, and reports whether it did.
func (s *Server) refuseWhenSetUp(c *gin.Context) bool {
	n, err := s.db.CountAdminUsers(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return true
	}
	if n > 0 {
		s.errorPage(c, http.StatusForbidden, setupDone)
		return true
	}
	return false
}

func (s *Server) setupForm(c *gin.Context) {
	if s.refuseWhenSetUp(c) {
		return
	}
	tok, err := s.anonToken(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	st := c.Query("token")
	if st == "" || len(st) > 128 {
		s.errorPage(c, http.StatusForbidden, "This setup link has no valid token. Use the link from the gateway's log.")
		return
	}
	s.render(c, http.StatusOK, "setup", setupView{page: s.pageFor(c, ""), Token: tok, SetupToken: st})
}

func (s *Server) setup(c *gin.Context) {
	ctx := c.Request.Context()
	v := setupView{page: s.pageFor(c, ""), Token: c.PostForm(csrfField), SetupToken: c.PostForm("token"),
		Username: strings.TrimSpace(c.PostForm("username"))}
	v.Errors = map[string]string{}
	if msg := validUsername(v.Username); msg != "" {
		v.Errors["username"] = msg
	}
	if msg := validPassword(c.PostForm("password"), c.PostForm("password2")); msg != "" {
		v.Errors["password"] = msg
	}
	if len(v.Errors) > 0 {
		s.render(c, http.StatusUnprocessableEntity, "setup", v)
		return
	}
	if s.refuseWhenSetUp(c) {
		return
	}
	if v.SetupToken == "" || len(v.SetupToken) > 128 {
		s.errorPage(c, http.StatusForbidden, setupLinkStale)
		return
	}
	if err := s.db.UseSetupToken(ctx, digest(v.SetupToken), s.cfg.Now()); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			s.auditAs(ctx, c, store.AuditEntry{Username: v.Username, Action: "setup-refused", Detail: "invalid, used or expired token"})
			s.errorPage(c, http.StatusForbidden, setupLinkStale)
			return
		}
		s.fail(c, err)
		return
	}
	hash, err := HashPassword(c.PostForm("password"), s.cfg.Argon2)
	if err != nil {
		s.fail(c, err)
		return
	}
	u, err := s.db.CreateAdminUser(ctx, store.AdminUser{Username: v.Username, Role: store.RoleAdmin, PasswordHash: hash, CreatedAt: s.cfg.Now()})
	if err != nil {
		s.fail(c, err)
		return
	}
	if err := s.auditAs(ctx, c, store.AuditEntry{UserID: u.ID, Username: u.Username, Action: "setup", Detail: "first admin created with the setup link"}); err != nil {
		s.fail(c, err)
		return
	}
	if err := s.startSession(c, u); err != nil {
		s.fail(c, err)
		return
	}
	s.redirect(c, "/", "Welcome. You are the first admin; add the staff's accounts under Users.")
}

// validUsername says what is wrong with a user name, or "".
func validUsername(u string) string {
	switch {
	case u == "":
		return "Enter a user name."
	case len(u) > maxUsernameLen:
		return fmt.Sprintf("At most %d characters.", maxUsernameLen)
	}
	for _, r := range u {
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("._-@", r)) {
			return "Use letters, digits and . _ - @ only."
		}
	}
	return ""
}

// validPassword says what is wrong with a new password typed twice, or "".
func validPassword(p, again string) string {
	switch {
	case utf8.RuneCountInString(p) < MinPasswordLen:
		return fmt.Sprintf("At least %d characters.", MinPasswordLen)
	case len(p) > MaxPasswordLen:
		return fmt.Sprintf("At most %d bytes.", MaxPasswordLen)
	case p != again:
		return "The two passwords differ."
	}
	return ""
}

// audit records what the signed-in user did or saw. For views of patient
// data the caller must not show the data when this fails.
func (s *Server) audit(c *gin.Context, action, studyUID, patientID, detail string) error {
	e := store.AuditEntry{Action: action, StudyUID: studyUID, PatientID: patientID, Detail: detail}
	if ss := sessionOf(c); ss != nil {
		e.UserID, e.Username = ss.user.ID, ss.user.Username
	}
	return s.auditAs(c.Request.Context(), c, e)
}

func (s *Server) auditAs(ctx context.Context, c *gin.Context, e store.AuditEntry) error {
	e.At = s.cfg.Now()
	e.RemoteAddr = c.ClientIP()
	if len(e.Detail) > 1000 {
		e.Detail = e.Detail[:1000]
	}
	if err := s.db.AddAudit(ctx, e); err != nil {
		s.log.Error("admin: audit log", "action", e.Action, "err", err)
		return fmt.Errorf("audit log: %w", err)
	}
	return nil
}

// auditView audits a repeated view (the polled dashboard, a study's
// thumbnails) at most once per session, action and study per
// viewAuditEvery.
func (s *Server) auditView(c *gin.Context, action, studyUID, patientID string) error {
	ss := sessionOf(c)
	key := ss.ID + "\x00" + action + "\x00" + studyUID
	now := s.cfg.Now()
	s.viewMu.Lock()
	last, seen := s.lastView[key]
	if seen && now.Sub(last) < viewAuditEvery {
		s.viewMu.Unlock()
		return nil
	}
	s.lastView[key] = now
	for k, t := range s.lastView {
		if now.Sub(t) > viewAuditEvery {
			delete(s.lastView, k)
		}
	}
	s.viewMu.Unlock()
	if err := s.audit(c, action, studyUID, patientID, ""); err != nil {
		// Not audited: the next view must try again.
		s.viewMu.Lock()
		delete(s.lastView, key)
		s.viewMu.Unlock()
		return err
	}
	return nil
}

const maxFlashLen = 400

func encodeFlash(msg string) string {
	if len(msg) > maxFlashLen {
		msg = msg[:maxFlashLen]
	}
	return base64.RawURLEncoding.EncodeToString([]byte(msg))
}

func decodeFlash(v string) string {
	if len(v) > 2*maxFlashLen {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || !utf8.Valid(b) {
		return ""
	}
	return string(b)
}
