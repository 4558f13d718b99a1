// Package web serves the patient pages of dicomgate's platform: sign-up and
// sign-in (argon2id passwords, rate limited), records (several per person),
// HealthVault's shell redirect interface (/redirect.aspx with target PICKUP
// for drop-off/pick-up and CONNECT for Patient Connect, see
// healthvault/docs/connectivity-shell-redirect-interface.md), the pick-up
// and connect steps (code, friendly name and question, answer, record,
// success message), and the record pages that show medical image studies
// (medical-image-study.xsd / .2.xsd) with their previews, stream a zip of
// the original DICOM files and remove a study.
//
// Pages are server-rendered html/template with one embedded stylesheet and
// no JavaScript. Every form carries a CSRF token (the session's, or a
// double-submit cookie before sign-in); cookies are HttpOnly, SameSite,
// Secure when the public URL is https, and expire. Identity codes and
// answers are never logged; pick-ups, connects, views and downloads are
// audited in the store.
package web

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"dicomgate/platform/provision"
	"dicomgate/platform/server"
	"dicomgate/platform/store"
	"dicomgate/platform/thing"
)

//go:embed templates/*.html static/style.css
var assets embed.FS

// Medical image study thing types (medical-image-study.xsd, .2.xsd).
const (
	misTypeV1 = "c75651c8-548e-449f-8942-9e6379b0b88a"
	misTypeV2 = "cdfc0a9b-6d3b-4d16-afa8-02b86d621a8d"
)

// Config configures the patient pages.
type Config struct {
	// Server is the platform server the pages act on. Required.
	Server *server.Server
	// PublicURL is the platform's public base URL; https makes cookies Secure. Required.
	PublicURL string
	// Logger (default slog.Default()).
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// SessionTTL is how long a sign-in lasts (12 h).
	SessionTTL time.Duration
	// MaxSignInFailures per login within SignInWindow before sign-in is
	// refused for the rest of the window (5 in 15 min).
	MaxSignInFailures int
	SignInWindow      time.Duration
	// MaxSignInFailuresPerAddress per client address within SignInWindow
	// (default 4×MaxSignInFailures): one address spraying many logins is
	// stopped too, not only one login tried too often.
	MaxSignInFailuresPerAddress int
}

// Handler serves the patient pages.
type Handler struct {
	cfg    Config
	srv    *server.Server
	st     store.Store
	log    *slog.Logger
	tmpl   map[string]*template.Template
	secure bool
	mux    *http.ServeMux

	mu           sync.Mutex
	failures     *failureLog         // sign-in failures by login
	addrFailures *failureLog         // sign-in failures by client address
	unlocked     map[string]unlocked // session+code -> answered package or request
	// argon2 bounds concurrent password hashing (19 MiB each).
	argon2 chan struct{}
	// dummyHash is checked for unknown logins, so that timing does not
	// tell them apart; computed once in New, not at package init.
	dummyHash string
}

// unlocked remembers, in memory only, that a session answered a code
// correctly: the package key (never persisted) or the connect request.
type unlocked struct {
	pkg     *server.UnlockedPackage
	expires time.Time
}

// Cookie names.
const (
	sessionCookie = "dg_session"
	csrfCookie    = "dg_csrf"
)

// New returns the patient pages handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Server == nil || cfg.PublicURL == "" {
		return nil, errors.New("web: Config.Server and PublicURL are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	if cfg.MaxSignInFailures <= 0 {
		cfg.MaxSignInFailures = 5
	}
	if cfg.SignInWindow <= 0 {
		cfg.SignInWindow = 15 * time.Minute
	}
	if cfg.MaxSignInFailuresPerAddress <= 0 {
		cfg.MaxSignInFailuresPerAddress = 4 * cfg.MaxSignInFailures
	}
	h := &Handler{cfg: cfg, srv: cfg.Server, st: cfg.Server.Store(), log: cfg.Logger,
		secure: strings.HasPrefix(strings.ToLower(cfg.PublicURL), "https://"),
		tmpl:   map[string]*template.Template{}, unlocked: map[string]unlocked{},
		argon2:       make(chan struct{}, 2),
		dummyHash:    provision.DummyHash(),
		failures:     newFailureLog(cfg.SignInWindow, cfg.MaxSignInFailures, maxFailureKeys),
		addrFailures: newFailureLog(cfg.SignInWindow, cfg.MaxSignInFailuresPerAddress, maxFailureKeys)}
	funcs := template.FuncMap{"inc": func(i int) int { return i + 1 }}
	for _, page := range []string{"home", "signup", "signin", "code", "question", "choose", "done", "message", "record", "study"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/"+page+".html")
		if err != nil {
			return nil, fmt.Errorf("web: template %s: %w", page, err)
		}
		h.tmpl[page] = t
	}
	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", h.home)
	m.HandleFunc("GET /static/style.css", h.style)
	m.HandleFunc("GET /signup", h.signupForm)
	m.HandleFunc("POST /signup", h.signup)
	m.HandleFunc("GET /signin", h.signinForm)
	m.HandleFunc("POST /signin", h.signin)
	m.HandleFunc("POST /signout", h.signout)
	m.HandleFunc("GET /redirect.aspx", h.redirect)
	for _, kind := range []string{"pickup", "connect"} {
		m.HandleFunc("GET /"+kind, h.codeForm)
		m.HandleFunc("POST /"+kind, h.question)
		m.HandleFunc("POST /"+kind+"/answer", h.answer)
		m.HandleFunc("POST /"+kind+"/finish", h.finish)
	}
	m.HandleFunc("POST /records", h.addRecord)
	m.HandleFunc("GET /records/{rec}", h.recordPage)
	m.HandleFunc("GET /records/{rec}/studies/{thing}", h.studyPage)
	m.HandleFunc("GET /records/{rec}/studies/{thing}/dicom.zip", h.studyZip)
	m.HandleFunc("POST /records/{rec}/studies/{thing}/remove", h.removeStudy)
	h.mux = m
	return h, nil
}

// Patterns returns the paths Mount routes to the handler (a new slice on
// each call: no shared mutable state).
func Patterns() []string {
	return []string{"GET /{$}", "/static/", "/signup", "/signin", "/signout", "/redirect.aspx", "/pickup", "/pickup/",
		"/connect", "/connect/", "/records", "/records/"}
}

// Mount routes the patient pages on the platform server's mux.
func (h *Handler) Mount(s *server.Server) {
	for _, p := range Patterns() {
		s.Handle(p, h)
	}
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Referrer-Policy", "same-origin")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self'; style-src 'self'; form-action 'self'; frame-ancestors 'none'")
	w.Header().Set("Cache-Control", "no-store")
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	h.mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), visitKey{}, &visit{})))
}

// visit remembers, for one request, who is signed in: the CSRF check, the
// handler and the page layout each ask, and each answer is a store query.
type visit struct {
	looked   bool // session and signedIn are set
	session  store.WebSession
	signedIn bool
	person   *store.Person // once looked up
}

type visitKey struct{}

func (h *Handler) style(w http.ResponseWriter, r *http.Request) {
	b, _ := assets.ReadFile("static/style.css")
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Write(b)
}

// page is what every template gets.
type page struct {
	Title  string
	CSRF   string
	Person *store.Person
	Error  string
	Data   any
}

func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	if p.CSRF == "" {
		p.CSRF = h.csrfToken(w, r)
	}
	if p.Person == nil {
		if _, per, ok := h.signedIn(r); ok {
			p.Person = &per
		}
	}
	var b bytes.Buffer
	if err := h.tmpl[name].Execute(&b, p); err != nil {
		h.log.Error("render page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

func (h *Handler) message(w http.ResponseWriter, r *http.Request, status int, title, msg string) {
	h.render(w, r, status, "message", page{Title: title, Data: msg})
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails: crypto/rand crashes the program instead
	return base64.RawURLEncoding.EncodeToString(b)
}

func (h *Handler) cookie(name, value string, maxAge time.Duration, sameSite http.SameSite) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, Secure: h.secure, SameSite: sameSite,
		MaxAge: int(maxAge.Seconds()), Expires: h.cfg.Now().Add(maxAge)}
}

// session returns the signed-in session of the request (looked up once per
// request).
func (h *Handler) session(r *http.Request) (store.WebSession, bool) {
	v, _ := r.Context().Value(visitKey{}).(*visit)
	if v == nil {
		return h.lookupSession(r)
	}
	if !v.looked {
		v.session, v.signedIn = h.lookupSession(r)
		v.looked = true
	}
	return v.session, v.signedIn
}

// signedIn returns the signed-in session and its person (each looked up
// once per request).
func (h *Handler) signedIn(r *http.Request) (store.WebSession, store.Person, bool) {
	s, ok := h.session(r)
	if !ok {
		return s, store.Person{}, false
	}
	v, _ := r.Context().Value(visitKey{}).(*visit)
	if v != nil && v.person != nil {
		return s, *v.person, true
	}
	p, err := h.st.GetPerson(r.Context(), s.PersonID)
	if err != nil {
		return s, store.Person{}, false
	}
	if v != nil {
		v.person = &p
	}
	return s, p, true
}

func (h *Handler) lookupSession(r *http.Request) (store.WebSession, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || len(c.Value) > 100 {
		return store.WebSession{}, false
	}
	s, err := h.st.WebSession(r.Context(), sha256.Sum256([]byte(c.Value)))
	if err != nil || !h.cfg.Now().Before(s.Expires) {
		return store.WebSession{}, false
	}
	return s, true
}

// csrfToken is the session's token when signed in, else a double-submit
// cookie's (set if missing).
func (h *Handler) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if s, ok := h.session(r); ok {
		return s.CSRF
	}
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) == 43 {
		return c.Value
	}
	tok := randomToken()
	http.SetCookie(w, h.cookie(csrfCookie, tok, 2*time.Hour, http.SameSiteStrictMode))
	r.AddCookie(&http.Cookie{Name: csrfCookie, Value: tok})
	return tok
}

// checkCSRF verifies a POST's token (and its Origin, when the browser
// sends one).
func (h *Handler) checkCSRF(w http.ResponseWriter, r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			http.Error(w, "cross-origin form refused", http.StatusForbidden)
			return false
		}
	}
	want := ""
	if s, ok := h.session(r); ok {
		want = s.CSRF
	} else if c, err := r.Cookie(csrfCookie); err == nil {
		want = c.Value
	}
	got := r.PostFormValue("csrf")
	if want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		http.Error(w, "the form expired; go back, reload the page and try again", http.StatusForbidden)
		return false
	}
	return true
}

// requirePerson returns the signed-in person or sends the browser to sign
// in (and back here afterwards).
func (h *Handler) requirePerson(w http.ResponseWriter, r *http.Request) (store.WebSession, store.Person, bool) {
	s, p, ok := h.signedIn(r)
	if ok {
		return s, p, true
	}
	back := r.URL.RequestURI()
	if r.Method != http.MethodGet {
		back = "/"
	}
	http.Redirect(w, r, "/signin?next="+url.QueryEscape(back), http.StatusSeeOther)
	return s, store.Person{}, false
}

// safeNext keeps redirects on this site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.Contains(next, "\\") {
		return "/"
	}
	return next
}

func (h *Handler) home(w http.ResponseWriter, r *http.Request) {
	s, ok := h.session(r)
	if !ok {
		h.render(w, r, http.StatusOK, "home", page{Title: "Your health records"})
		return
	}
	recs, err := h.st.RecordsOfPerson(r.Context(), s.PersonID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.render(w, r, http.StatusOK, "home", page{Title: "Your health records", Data: recs})
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) {
		return // the browser went away
	}
	h.log.Error("patient page", "path", r.URL.Path, "err", err)
	h.message(w, r, http.StatusInternalServerError, "Something went wrong", "Please try again later.")
}

func (h *Handler) signupForm(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusOK, "signup", page{Title: "Create an account", Data: r.URL.Query().Get("next")})
}

func (h *Handler) hashSlot(ctx context.Context) (func(), error) {
	select {
	case h.argon2 <- struct{}{}:
		return func() { <-h.argon2 }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (h *Handler) signup(w http.ResponseWriter, r *http.Request) {
	if !h.checkCSRF(w, r) {
		return
	}
	login := strings.TrimSpace(r.PostFormValue("login"))
	name := strings.TrimSpace(r.PostFormValue("name"))
	pw := r.PostFormValue("password")
	next := r.PostFormValue("next")
	bad := func(msg string) {
		h.render(w, r, http.StatusBadRequest, "signup", page{Title: "Create an account", Error: msg, Data: next})
	}
	switch {
	case login == "" || len(login) > 100 || name == "" || len(name) > 100:
		bad("Give a login and a name (at most 100 characters each).")
		return
	case len(pw) < 10 || len(pw) > 200:
		bad("Choose a password of 10 to 200 characters.")
		return
	}
	release, err := h.hashSlot(r.Context())
	if err != nil {
		return
	}
	p, err := provision.CreatePerson(r.Context(), h.st, login, name, pw)
	release()
	if errors.Is(err, store.ErrExists) {
		bad("That login is taken.")
		return
	} else if err != nil {
		h.fail(w, r, err)
		return
	}
	if _, err := provision.CreateRecord(r.Context(), h.st, p.ID, name, provision.RelationshipSelf); err != nil {
		h.fail(w, r, err)
		return
	}
	h.startSession(w, r, p.ID, next)
}

func (h *Handler) startSession(w http.ResponseWriter, r *http.Request, personID, next string) {
	tok := randomToken()
	now := h.cfg.Now()
	ws := store.WebSession{TokenHash: sha256.Sum256([]byte(tok)), PersonID: personID, CSRF: randomToken(), Created: now, Expires: now.Add(h.cfg.SessionTTL)}
	if err := h.st.CreateWebSession(r.Context(), ws); err != nil {
		h.fail(w, r, err)
		return
	}
	http.SetCookie(w, h.cookie(sessionCookie, tok, h.cfg.SessionTTL, http.SameSiteLaxMode))
	http.Redirect(w, r, safeNext(next), http.StatusSeeOther)
}

func (h *Handler) signinForm(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusOK, "signin", page{Title: "Sign in", Data: r.URL.Query().Get("next")})
}

// limited reports whether login, or the client address, has used up its
// sign-in failures.
func (h *Handler) limited(login, addr string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.cfg.Now()
	return h.failures.count(login, now) >= h.cfg.MaxSignInFailures ||
		h.addrFailures.count(addr, now) >= h.cfg.MaxSignInFailuresPerAddress
}

func (h *Handler) failed(login, addr string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.cfg.Now()
	h.failures.add(login, now)
	h.addrFailures.add(addr, now)
}

// clientAddr is the address sign-in failures are counted against: the
// peer's IP (a forwarded-for header could be forged).
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (h *Handler) signin(w http.ResponseWriter, r *http.Request) {
	if !h.checkCSRF(w, r) {
		return
	}
	login := strings.TrimSpace(r.PostFormValue("login"))
	pw := r.PostFormValue("password")
	next := r.PostFormValue("next")
	if len(login) > 100 || len(pw) > 200 {
		h.render(w, r, http.StatusBadRequest, "signin", page{Title: "Sign in", Error: "Login or password is wrong.", Data: next})
		return
	}
	addr := clientAddr(r)
	if h.limited(login, addr) {
		h.render(w, r, http.StatusTooManyRequests, "signin", page{Title: "Sign in", Error: "Too many failed sign-ins. Wait 15 minutes and try again.", Data: next})
		return
	}
	release, err := h.hashSlot(r.Context())
	if err != nil {
		return
	}
	p, err := h.st.PersonByLogin(r.Context(), login)
	ok := err == nil && provision.CheckPassword(p.PasswordHash, pw)
	if err != nil {
		// Same work for an unknown login, so timing does not tell.
		provision.CheckPassword(h.dummyHash, pw)
	}
	release()
	if !ok {
		h.failed(login, addr)
		h.render(w, r, http.StatusUnauthorized, "signin", page{Title: "Sign in", Error: "Login or password is wrong.", Data: next})
		return
	}
	h.startSession(w, r, p.ID, next)
}

func (h *Handler) signout(w http.ResponseWriter, r *http.Request) {
	if !h.checkCSRF(w, r) {
		return
	}
	if c, err := r.Cookie(sessionCookie); err == nil {
		_ = h.st.DeleteWebSession(r.Context(), sha256.Sum256([]byte(c.Value)))
	}
	http.SetCookie(w, h.cookie(sessionCookie, "", -time.Hour, http.SameSiteLaxMode))
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (h *Handler) addRecord(w http.ResponseWriter, r *http.Request) {
	s, _, ok := h.requirePerson(w, r)
	if !ok || !h.checkCSRF(w, r) {
		return
	}
	name := strings.TrimSpace(r.PostFormValue("name"))
	rel := r.PostFormValue("relationship")
	if name == "" || len(name) > 100 {
		h.message(w, r, http.StatusBadRequest, "Add a record", "Give the record a name of at most 100 characters.")
		return
	}
	if _, err := provision.CreateRecord(r.Context(), h.st, s.PersonID, name, rel); err != nil {
		h.message(w, r, http.StatusBadRequest, "Add a record", "Choose who the record is for.")
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// redirect is the shell redirect interface: target=PICKUP or CONNECT with
// targetqs=packageid%3dCODE.
func (h *Handler) redirect(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	tqs, _ := url.ParseQuery(q.Get("targetqs"))
	code := tqs.Get("packageid")
	var dest string
	switch strings.ToUpper(q.Get("target")) {
	case "PICKUP":
		dest = "/pickup"
	case "CONNECT":
		dest = "/connect"
	default:
		h.message(w, r, http.StatusBadRequest, "Unknown link", "This link is not one this site understands.")
		return
	}
	if code != "" {
		dest += "?code=" + url.QueryEscape(code)
	}
	http.Redirect(w, r, dest, http.StatusSeeOther)
}

// kind tells the pick-up and connect flows apart by path.
type kind struct {
	Path, Title, Verb string
	Connect           bool
}

func kindOf(r *http.Request) kind {
	if strings.HasPrefix(r.URL.Path, "/connect") {
		return kind{Path: "/connect", Title: "Connect an application", Verb: "Authorize", Connect: true}
	}
	return kind{Path: "/pickup", Title: "Pick up your information", Verb: "Put it in this record"}
}

type codeData struct {
	Kind kind
	Code string
}

func (h *Handler) codeForm(w http.ResponseWriter, r *http.Request) {
	if _, _, ok := h.requirePerson(w, r); !ok {
		return
	}
	k := kindOf(r)
	code := r.URL.Query().Get("code")
	if len(code) > 100 {
		code = ""
	}
	h.render(w, r, http.StatusOK, "code", page{Title: k.Title, Data: codeData{Kind: k, Code: code}})
}

func (h *Handler) challenge(ctx context.Context, k kind, code string) (server.Challenge, error) {
	if k.Connect {
		return h.srv.ConnectChallenge(ctx, code)
	}
	return h.srv.PackageChallenge(ctx, code)
}

// codeError shows why a code cannot be used (never the code itself in logs).
func (h *Handler) codeError(w http.ResponseWriter, r *http.Request, k kind, code string, err error) {
	var wa *server.WrongAnswerError
	msg := ""
	switch {
	case errors.As(err, &wa):
		return // handled by the caller
	case errors.Is(err, server.ErrInvalidCode):
		msg = "We could not find this code. Check it and try again."
	case errors.Is(err, server.ErrExpired):
		msg = "This code has expired. Ask the sender for a new one."
	case errors.Is(err, server.ErrLocked):
		msg = "This code is locked after three wrong answers. Ask the sender for a new one."
	case errors.Is(err, server.ErrPickedUp):
		msg = "This package was picked up already."
	case errors.Is(err, server.ErrNotYourRecord):
		msg = "Choose one of your records."
	default:
		h.fail(w, r, err)
		return
	}
	h.render(w, r, http.StatusBadRequest, "code", page{Title: k.Title, Error: msg, Data: codeData{Kind: k, Code: code}})
}

type questionData struct {
	Kind      kind
	Challenge server.Challenge
}

func (h *Handler) question(w http.ResponseWriter, r *http.Request) {
	if _, _, ok := h.requirePerson(w, r); !ok || !h.checkCSRF(w, r) {
		return
	}
	k := kindOf(r)
	code := r.PostFormValue("code")
	ch, err := h.challenge(r.Context(), k, code)
	if err != nil {
		h.codeError(w, r, k, code, err)
		return
	}
	h.render(w, r, http.StatusOK, "question", page{Title: k.Title, Data: questionData{Kind: k, Challenge: ch}})
}

func unlockKey(s store.WebSession, code string) string {
	return string(s.TokenHash[:]) + "\x00" + code
}

type chooseData struct {
	Kind      kind
	Challenge server.Challenge
	Records   []store.Record
}

func (h *Handler) answer(w http.ResponseWriter, r *http.Request) {
	s, _, ok := h.requirePerson(w, r)
	if !ok || !h.checkCSRF(w, r) {
		return
	}
	k := kindOf(r)
	code := r.PostFormValue("code")
	ans := r.PostFormValue("answer")
	ch, err := h.challenge(r.Context(), k, code)
	if err != nil {
		h.codeError(w, r, k, code, err)
		return
	}
	// Checking an answer derives a key (argon2id or the package's key
	// derivation): bounded like password hashing, so that a burst of
	// answers cannot exhaust memory.
	release, err := h.hashSlot(r.Context())
	if err != nil {
		return
	}
	var u unlocked
	if k.Connect {
		err = h.srv.CheckConnectAnswer(r.Context(), ch.IdentityCode, ans)
	} else {
		u.pkg, err = h.srv.UnlockPackage(r.Context(), ch.IdentityCode, ans)
	}
	release()
	var wa *server.WrongAnswerError
	if errors.As(err, &wa) {
		ch.TriesLeft = wa.TriesLeft
		h.render(w, r, http.StatusBadRequest, "question", page{Title: k.Title,
			Error: fmt.Sprintf("That answer is not right. %d tries left.", wa.TriesLeft), Data: questionData{Kind: k, Challenge: ch}})
		return
	}
	if err != nil {
		h.codeError(w, r, k, code, err)
		return
	}
	u.expires = h.cfg.Now().Add(15 * time.Minute)
	h.mu.Lock()
	for key, v := range h.unlocked {
		if !h.cfg.Now().Before(v.expires) {
			delete(h.unlocked, key)
		}
	}
	h.unlocked[unlockKey(s, ch.IdentityCode)] = u
	h.mu.Unlock()
	recs, err := h.st.RecordsOfPerson(r.Context(), s.PersonID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.render(w, r, http.StatusOK, "choose", page{Title: k.Title, Data: chooseData{Kind: k, Challenge: ch, Records: recs}})
}

type doneData struct {
	Message  string
	RecordID string
}

func (h *Handler) finish(w http.ResponseWriter, r *http.Request) {
	s, _, ok := h.requirePerson(w, r)
	if !ok || !h.checkCSRF(w, r) {
		return
	}
	k := kindOf(r)
	code, _ := server.NormalizeIdentityCode(r.PostFormValue("code"))
	rec := r.PostFormValue("record")
	h.mu.Lock()
	u, ok := h.unlocked[unlockKey(s, code)]
	if ok && !h.cfg.Now().Before(u.expires) {
		ok = false
	}
	h.mu.Unlock()
	if !ok {
		h.render(w, r, http.StatusBadRequest, "code", page{Title: k.Title, Error: "Please answer the question again.", Data: codeData{Kind: k, Code: code}})
		return
	}
	var (
		msg string
		err error
	)
	if k.Connect {
		msg, err = h.srv.AuthorizeConnect(r.Context(), code, s.PersonID, rec)
	} else {
		msg, err = h.srv.DeliverPackage(r.Context(), u.pkg, s.PersonID, rec)
	}
	if err != nil {
		h.codeError(w, r, k, code, err)
		return
	}
	h.mu.Lock()
	delete(h.unlocked, unlockKey(s, code))
	h.mu.Unlock()
	h.render(w, r, http.StatusOK, "done", page{Title: k.Title, Data: doneData{Message: msg, RecordID: rec}})
}

// ownRecord returns the record in the path if it is the person's.
func (h *Handler) ownRecord(w http.ResponseWriter, r *http.Request) (store.WebSession, store.Record, bool) {
	s, _, ok := h.requirePerson(w, r)
	if !ok {
		return s, store.Record{}, false
	}
	rec, err := h.st.GetRecord(r.Context(), r.PathValue("rec"))
	if err != nil || rec.PersonID != s.PersonID {
		h.message(w, r, http.StatusNotFound, "Not found", "There is no such record.")
		return s, rec, false
	}
	return s, rec, true
}

// The parts of a medical image study the pages show (same element names
// in versions 1 and 2).
type misStudy struct {
	When struct {
		Date struct {
			Y int `xml:"y"`
			M int `xml:"m"`
			D int `xml:"d"`
		} `xml:"date"`
	} `xml:"when"`
	Description string      `xml:"description"`
	Series      []misSeries `xml:"series"`
	Preview     string      `xml:"preview-blob-name"`
	UID         string      `xml:"study-instance-uid"`
}

type misSeries struct {
	Description string `xml:"description"`
	Images      []struct {
		Blob    string `xml:"image-blob-name"`
		Preview string `xml:"image-preview-blob-name"`
	} `xml:"images"`
	Modality struct {
		Text string `xml:"text"`
	} `xml:"modality"`
	Preview string `xml:"preview-blob-name"`
}

func parseStudy(t store.Thing) (misStudy, error) {
	var d struct {
		Data []struct {
			Study misStudy `xml:"medical-image-study"`
		} `xml:"data-xml"`
	}
	if err := xml.Unmarshal(append(append([]byte("<d>"), t.DataXML...), "</d>"...), &d); err != nil || len(d.Data) == 0 {
		return misStudy{}, fmt.Errorf("study %s: data-xml: %v", t.ID, err)
	}
	return d.Data[0].Study, nil
}

// image is an <img> of a blob: an expiring read URL.
type image struct {
	URL, Alt string
}

func (h *Handler) blobImage(rec string, t store.Thing, name, alt string) *image {
	if name == "" {
		return nil
	}
	for _, b := range t.Blobs {
		if b.Name == name {
			ct := b.ContentType
			if !strings.HasPrefix(ct, "image/") {
				ct = "image/jpeg"
			}
			return &image{URL: h.srv.BlobReadURL(rec, b.BlobID, ct), Alt: alt}
		}
	}
	return nil
}

type studyRow struct {
	ID, Date, Description, Modalities string
	Series, Images                    int
	Preview                           *image
}

func (h *Handler) studies(ctx context.Context, rec string, ids ...string) ([]store.Thing, error) {
	return h.st.QueryThings(ctx, store.ThingQuery{RecordID: rec, IDs: ids, TypeIDs: []string{misTypeV1, misTypeV2}, States: []string{thing.StateActive}})
}

func studyDate(s misStudy) string {
	if s.When.Date.Y == 0 {
		return ""
	}
	return fmt.Sprintf("%04d-%02d-%02d", s.When.Date.Y, s.When.Date.M, s.When.Date.D)
}

type recordData struct {
	Record  store.Record
	Studies []studyRow
}

func (h *Handler) recordPage(w http.ResponseWriter, r *http.Request) {
	s, rec, ok := h.ownRecord(w, r)
	if !ok {
		return
	}
	things, err := h.studies(r.Context(), rec.ID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	data := recordData{Record: rec}
	for _, t := range things {
		st, err := parseStudy(t)
		if err != nil {
			h.log.Warn("record page", "err", err)
			continue
		}
		row := studyRow{ID: t.ID, Date: studyDate(st), Description: st.Description, Series: len(st.Series)}
		var mods []string
		for _, se := range st.Series {
			row.Images += len(se.Images)
			if m := se.Modality.Text; m != "" && !slices.Contains(mods, m) {
				mods = append(mods, m)
			}
		}
		row.Modalities = strings.Join(mods, ", ")
		row.Preview = h.blobImage(rec.ID, t, st.Preview, "Preview of "+st.Description)
		data.Studies = append(data.Studies, row)
	}
	h.audit(r, s, rec.ID, "view", "", "record")
	h.render(w, r, http.StatusOK, "record", page{Title: rec.Name, Data: data})
}

func (h *Handler) audit(r *http.Request, s store.WebSession, rec, action, subject, detail string) {
	if err := h.st.AddAudit(r.Context(), store.AuditEvent{At: h.cfg.Now(), Action: action, PersonID: s.PersonID, RecordID: rec,
		Subject: subject, Detail: detail}); err != nil {
		h.log.Warn("audit", "action", action, "err", err)
	}
}

type seriesView struct {
	Description, Modality string
	Preview               *image
	Thumbs                []image
}

type studyData struct {
	Record store.Record
	ID     string
	Date   string
	Desc   string
	Series []seriesView
}

func (h *Handler) loadStudy(w http.ResponseWriter, r *http.Request) (store.WebSession, store.Record, store.Thing, misStudy, bool) {
	s, rec, ok := h.ownRecord(w, r)
	if !ok {
		return s, rec, store.Thing{}, misStudy{}, false
	}
	things, err := h.studies(r.Context(), rec.ID, r.PathValue("thing"))
	if err != nil || len(things) == 0 {
		h.message(w, r, http.StatusNotFound, "Not found", "There is no such study.")
		return s, rec, store.Thing{}, misStudy{}, false
	}
	st, err := parseStudy(things[0])
	if err != nil {
		h.fail(w, r, err)
		return s, rec, store.Thing{}, misStudy{}, false
	}
	return s, rec, things[0], st, true
}

func (h *Handler) studyPage(w http.ResponseWriter, r *http.Request) {
	s, rec, t, st, ok := h.loadStudy(w, r)
	if !ok {
		return
	}
	d := studyData{Record: rec, ID: t.ID, Date: studyDate(st), Desc: st.Description}
	for i, se := range st.Series {
		v := seriesView{Description: se.Description, Modality: se.Modality.Text,
			Preview: h.blobImage(rec.ID, t, se.Preview, fmt.Sprintf("Series %d", i+1))}
		for j, im := range se.Images {
			if img := h.blobImage(rec.ID, t, im.Preview, fmt.Sprintf("Image %d", j+1)); img != nil {
				v.Thumbs = append(v.Thumbs, *img)
			}
		}
		d.Series = append(d.Series, v)
	}
	h.audit(r, s, rec.ID, "view", t.ID, "study")
	h.render(w, r, http.StatusOK, "study", page{Title: st.Description, Data: d})
}

// studyZip streams the original DICOM files of the study as a zip: each
// blob is copied from its file into the archive; nothing is held whole.
func (h *Handler) studyZip(w http.ResponseWriter, r *http.Request) {
	s, rec, t, st, ok := h.loadStudy(w, r)
	if !ok {
		return
	}
	blobs := map[string]store.ThingBlob{}
	for _, b := range t.Blobs {
		blobs[b.Name] = b
	}
	h.audit(r, s, rec.ID, "download", t.ID, "dicom zip")
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", `attachment; filename="study.zip"`)
	zw := zip.NewWriter(w)
	seen := map[string]bool{}
	names := map[string]bool{}
	for i, se := range st.Series {
		for j, im := range se.Images {
			b, ok := blobs[im.Blob]
			if !ok || seen[im.Blob] {
				continue
			}
			seen[im.Blob] = true
			// Two blob names that sanitize alike must not make two
			// entries of one name.
			name := fmt.Sprintf("series-%03d/%s.dcm", i+1, safeName(im.Blob))
			if names[name] {
				name = fmt.Sprintf("series-%03d/%s-%d.dcm", i+1, safeName(im.Blob), j+1)
			}
			names[name] = true
			if err := h.zipBlob(r.Context(), zw, rec.ID, b, name); err != nil {
				// Headers are sent: the truncated archive tells the browser.
				h.log.Error("study zip", "err", err)
				return
			}
		}
	}
	if err := zw.Close(); err != nil {
		h.log.Warn("study zip", "err", err)
	}
}

func safeName(s string) string {
	s = path.Base(strings.ReplaceAll(s, "\\", "/"))
	return strings.Map(func(r rune) rune {
		if r == '.' || r == '-' || r == '_' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') {
			return r
		}
		return '_'
	}, s)
}

func (h *Handler) zipBlob(ctx context.Context, zw *zip.Writer, rec string, b store.ThingBlob, name string) error {
	rc, _, err := h.srv.OpenRecordBlob(ctx, rec, b.BlobID)
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store, Modified: h.cfg.Now()})
	if err != nil {
		return err
	}
	_, err = io.Copy(f, rc)
	return err
}

func (h *Handler) removeStudy(w http.ResponseWriter, r *http.Request) {
	s, rec, t, _, ok := h.loadStudy(w, r)
	if !ok || !h.checkCSRF(w, r) {
		return
	}
	prev := t.VersionStamp
	t.State, t.VersionStamp, t.Updated, t.UpdatedApp = thing.StateDeleted, uuid.NewString(), h.cfg.Now(), ""
	if err := h.st.PutThings(r.Context(), []store.ThingWrite{{Thing: t, PrevVersion: prev}}); err != nil {
		h.fail(w, r, err)
		return
	}
	h.audit(r, s, rec.ID, "remove", t.ID, "study")
	http.Redirect(w, r, "/records/"+rec.ID, http.StatusSeeOther)
}
