// Package admin is the radiology staff's web UI of the gateway: what
// arrived, where each study is on its way to the patient, and the actions
// that unstick it, without reading logs.
//
// It is a gin application with server-rendered html/template pages and
// assets embedded in the binary (htmx, vendored, polls the dashboard). Web
// security follows the OWASP cheat sheets: argon2id password hashes (RFC
// 9106) in the PHC string format, server-side sessions behind HttpOnly,
// SameSite=Strict cookies (RFC 6265bis), synchronizer CSRF tokens tied to
// the session and checked on every non-GET request, a restrictive Content
// Security Policy, and an audit log of every action and every view of
// patient data. Metrics are served in the Prometheus text exposition
// format.
package admin

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"dicomgate/gateway"
	"dicomgate/gateway/mail"
	"dicomgate/gateway/route"
	"dicomgate/gateway/store"
	"dicomgate/previews"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Gateway is what the admin UI asks of the delivery pipeline;
// *gateway.Gateway implements it.
type Gateway interface {
	// DB is the gateway's store.
	DB() store.Store
	// Decide routes a study with the live rules without acting.
	Decide(st store.Study) route.Decision
	// DeliverNow ends a receiving study's quiet period.
	DeliverNow(ctx context.Context, studyUID string) error
	// Release sends a held, waiting or failed study on the given way.
	Release(ctx context.Context, studyUID string, action route.Action) error
	// Retry queues a failed delivery again.
	Retry(ctx context.Context, studyUID string) error
	// Discard stops a study from being delivered.
	Discard(ctx context.Context, studyUID string) error
	// LinkPatient maps an external patient id to a record.
	LinkPatient(ctx context.Context, l store.PatientLink) error
	// SetRules replaces the live routing rules.
	SetRules(rules []route.Rule, def route.Action) error

	// RegisterPickup registers a drop-off/pick-up for a patient (code
	// allocated at once, answer sealed) and sends on a study of the
	// patient waiting for one; invalid input is a *gateway.FieldError.
	RegisterPickup(ctx context.Context, r gateway.PickupRequest) (store.Pickup, error)
	// ResendCode queues a packaged registration's code mail again.
	ResendCode(ctx context.Context, pickupID int64) error
	// PickupLetter writes a registration's printable pick-up letter.
	PickupLetter(ctx context.Context, w io.Writer, pickupID int64) error
	// DeletePickup withdraws a registration and its pending package.
	DeletePickup(ctx context.Context, pickupID int64) error
	// Invitation is what a registration's mail and letter say.
	Invitation(p store.Pickup) mail.Invitation
	// InvitePatient makes a Patient Connect request, mails its code and
	// returns it.
	InvitePatient(ctx context.Context, inv gateway.ConnectInvite) (string, error)
}

var _ Gateway = (*gateway.Gateway)(nil)

// AssociationSnapshot is one live DICOM association as the dashboard shows it.
type AssociationSnapshot struct {
	Peer      string // remote address
	CallingAE string
	CalledAE  string
	Instances int // instances received so far on this association
	Since     time.Time
}

// Associations reports the DICOM listener's live associations.
type Associations interface {
	Associations() []AssociationSnapshot
}

// Outbox lists the mail outbox; mail.Store implementations (mailsql)
// satisfy it.
type Outbox interface {
	List(ctx context.Context, limit int) ([]mail.Record, error)
}

// Sealer seals secrets kept in settings (the SMTP password): the
// gateway's own sealer, which *keyfile.Key implements.
type Sealer = gateway.Sealer

// Config configures a Server. Zero values take the defaults in comments.
type Config struct {
	// Gateway is the pipeline the UI shows and acts on. Required.
	Gateway Gateway
	// Associations reports live DICOM associations; nil shows none.
	Associations Associations
	// Outbox lists mails; nil hides the outbox page's content.
	Outbox Outbox
	// Secrets seals the SMTP password in the settings table; nil refuses
	// to store a password.
	Secrets Sealer
	// SecureCookies marks cookies Secure even when the request did not
	// arrive over TLS (behind a TLS-terminating proxy).
	SecureCookies bool
	// SessionIdle ends a session unused this long (30 min); SessionMax
	// ends any session this long after sign-in (12 h).
	SessionIdle, SessionMax time.Duration
	// SetupTokenTTL is how long the first-start setup link works (1 h).
	SetupTokenTTL time.Duration
	// Argon2 is the cost of new password hashes (DefaultArgon2Params()).
	Argon2 Argon2Params
	// Previews renders series thumbnails (previews.DefaultOptions()).
	Previews previews.Options
	// ThumbnailCacheBytes bounds the in-memory thumbnail cache (32 MiB).
	ThumbnailCacheBytes int
	// Registry receives the UI's metrics and serves /metrics; a new
	// registry when nil.
	Registry *prometheus.Registry
	// Log receives errors (slog.Default()).
	Log *slog.Logger
	// Now is the clock (time.Now).
	Now func() time.Time
}

// Server is the admin UI.
type Server struct {
	cfg     Config
	gw      Gateway
	db      store.Store
	log     *slog.Logger
	pages   map[string]*template.Template
	engine  *gin.Engine
	thumbs  *thumbCache
	metrics *metrics

	// viewMu guards lastView: the dashboard fragment, polled every 2 s,
	// is audited once per session and viewAuditEvery, not on every poll.
	viewMu   sync.Mutex
	lastView map[string]time.Time

	// dummyHash is verified for sign-ins of unknown users, so they cost
	// one argon2 run like a known user's: made once, in New.
	dummyHash string
	// checkPassword verifies a sign-in's password (CheckPassword).
	checkPassword func(hash, password string) (bool, error)
	// userFails and ipFails limit failed sign-ins per user name and
	// per client address.
	userFails, ipFails *failureLimiter
}

// viewAuditEvery is how often a polled view of patient data is audited
// again for the same session.
const viewAuditEvery = 5 * time.Minute

// New returns the admin UI over cfg.Gateway.
func New(cfg Config) (*Server, error) {
	if cfg.Gateway == nil {
		return nil, errors.New("admin: Config.Gateway is required")
	}
	if cfg.SessionIdle <= 0 {
		cfg.SessionIdle = 30 * time.Minute
	}
	if cfg.SessionMax <= 0 {
		cfg.SessionMax = 12 * time.Hour
	}
	if cfg.SetupTokenTTL <= 0 {
		cfg.SetupTokenTTL = time.Hour
	}
	if cfg.Argon2 == (Argon2Params{}) {
		cfg.Argon2 = DefaultArgon2Params()
	}
	// Zero fields of Previews take previews.DefaultOptions()'s values.
	def := previews.DefaultOptions()
	if cfg.Previews.PreviewSize <= 0 {
		cfg.Previews.PreviewSize = def.PreviewSize
	}
	if cfg.Previews.ThumbnailSize <= 0 {
		cfg.Previews.ThumbnailSize = def.ThumbnailSize
	}
	if cfg.Previews.Quality <= 0 {
		cfg.Previews.Quality = def.Quality
	}
	if cfg.ThumbnailCacheBytes <= 0 {
		cfg.ThumbnailCacheBytes = 32 << 20
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
		cfg.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg, gw: cfg.Gateway, db: cfg.Gateway.DB(), log: cfg.Log,
		thumbs: newThumbCache(cfg.ThumbnailCacheBytes), lastView: map[string]time.Time{},
		checkPassword: CheckPassword,
		userFails:     newFailureLimiter(maxUserFailures, loginFailWindow, maxLimiterKeys),
		ipFails:       newFailureLimiter(maxIPFailures, loginFailWindow, maxLimiterKeys)}
	var err error
	// A valid hash, at the configured cost, of nothing anyone types.
	if s.dummyHash, err = dummyHash(cfg.Argon2); err != nil {
		return nil, err
	}
	if s.pages, err = parsePages(); err != nil {
		return nil, err
	}
	if s.metrics, err = newMetrics(cfg.Registry, s.db); err != nil {
		return nil, err
	}
	s.engine = s.routes()
	return s, nil
}

// Handler returns the UI's HTTP handler.
func (s *Server) Handler() http.Handler { return s.engine }

func (s *Server) routes() *gin.Engine {
	r := gin.New()
	// No proxy is trusted: the client address (sign-in limits, audit rows)
	// is the connection's, never a forgeable X-Forwarded-For.
	_ = r.SetTrustedProxies(nil) // only fails on unparsable proxy lists
	r.HandleMethodNotAllowed = true
	r.Use(s.recover, s.metrics.middleware, securityHeaders, s.limitBody)
	r.NoRoute(func(c *gin.Context) { s.errorPage(c, http.StatusNotFound, "No such page.") })
	r.NoMethod(func(c *gin.Context) { s.errorPage(c, http.StatusMethodNotAllowed, "Method not allowed.") })

	static, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/static/", http.FileServer(http.FS(static)))
	r.GET("/static/*file", func(c *gin.Context) {
		c.Header("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(c.Writer, c.Request)
	})
	r.GET("/healthz", func(c *gin.Context) { c.String(http.StatusOK, "ok\n") })
	r.GET("/readyz", s.readyz)
	// /metrics stays open to the scraper, like /healthz and /readyz: it
	// carries no patient data, only counts (studies by state, jobs by
	// kind and state, store up) and request counters labelled by route
	// pattern, never by a path's UIDs (see metrics.go).
	r.GET("/metrics", gin.WrapH(s.metrics.handler()))

	r.GET("/login", s.loginForm)
	r.POST("/login", s.checkAnonCSRF, s.login)
	r.GET("/setup", s.setupForm)
	r.POST("/setup", s.checkAnonCSRF, s.setup)

	a := r.Group("/", s.requireSession, s.checkCSRF)
	a.POST("/logout", s.logout)
	a.GET("/", s.dashboard)
	a.GET("/fragments/dashboard", s.dashboardFragment)
	a.GET("/studies/:uid", s.study)
	a.GET("/studies/:uid/series/:series/thumbnail.jpg", s.thumbnail)
	a.POST("/studies/:uid/deliver-now", s.studyAction(actDeliverNow))
	a.POST("/studies/:uid/release", s.studyAction(actRelease))
	a.POST("/studies/:uid/deliver-to-patient", s.studyAction(actDeliverToPatient))
	a.POST("/studies/:uid/retry", s.studyAction(actRetry))
	a.POST("/studies/:uid/discard", s.studyAction(actDiscard))
	a.GET("/patients", s.patients)
	a.GET("/outbox", s.outbox)

	// Pick-ups and invitations: the front desk's work (see pickups.go).
	fd := a.Group("/", s.requireRole(store.RoleStaff, store.RoleAdmin))
	fd.POST("/studies/:uid/pickup", s.createStudyPickup)
	fd.POST("/patients/pickups", s.registerPickup)
	fd.POST("/patients/invite", s.invitePatient)
	fd.POST("/patients/invite/letter", s.connectLetter)
	fd.POST("/pickups/:id/resend", s.resendPickup)
	fd.GET("/pickups/:id/letter", s.pickupLetter)

	ad := a.Group("/", s.requireRole(store.RoleAdmin))
	ad.GET("/settings", s.settings)
	ad.POST("/settings/dicom", s.saveSettings(s.dicomSection))
	ad.POST("/settings/routing", s.saveSettings(s.routingSection))
	ad.POST("/settings/routing/dry-run", s.dryRun)
	ad.POST("/settings/smtp", s.saveSettings(s.smtpSection))
	ad.POST("/settings/smtp/test", s.testSMTP)
	ad.POST("/settings/platform", s.saveSettings(s.platformSection))
	ad.POST("/settings/platform/test", s.testPlatform)
	ad.POST("/settings/previews", s.saveSettings(s.previewsSection))
	ad.GET("/users", s.users)
	ad.POST("/users", s.createUser)
	ad.POST("/users/:id/disable", s.setUserDisabled(true))
	ad.POST("/users/:id/enable", s.setUserDisabled(false))
	ad.GET("/audit", s.auditLog)
	ad.POST("/pickups/:id/delete", s.deletePickup)
	return r
}

// securityHeaders keeps pages from being framed, sniffed or made to run
// anything but the embedded script.
func securityHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; "+
		"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	c.Next()
}

// recover turns a panic in a handler into a 500 page, logged.
func (s *Server) recover(c *gin.Context) {
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("admin: panic", "path", c.Request.URL.Path, "panic", v)
			if !c.Writer.Written() {
				s.errorPage(c, http.StatusInternalServerError, "Internal error.")
			}
			c.Abort()
		}
	}()
	c.Next()
}

func (s *Server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	if _, err := s.db.CountAdminUsers(ctx); err != nil {
		c.String(http.StatusServiceUnavailable, "store unreachable: %v\n", err)
		return
	}
	c.String(http.StatusOK, "ready\n")
}

// statusOf is the one place that maps errors to HTTP status codes.
func statusOf(err error) int {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, gateway.ErrNotDeliverable), errors.Is(err, store.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, route.ErrInvalidRule), errors.Is(err, mail.ErrInvalidMessage):
		return http.StatusUnprocessableEntity
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

// fail answers err with its status: a page naming the problem. Internal
// errors are logged and not detailed to the browser.
func (s *Server) fail(c *gin.Context, err error) {
	code := statusOf(err)
	msg := err.Error()
	if code == http.StatusInternalServerError {
		s.log.Error("admin", "path", c.Request.URL.Path, "err", err)
		msg = "Internal error; the gateway's log has the details."
	}
	s.errorPage(c, code, msg)
}

// errorPage renders the error page with code; the body says why.
func (s *Server) errorPage(c *gin.Context, code int, msg string) {
	if isHTMX(c) {
		c.String(code, msg)
		c.Abort()
		return
	}
	v := struct {
		page
		Code    int
		Status  string
		Message string
	}{page: s.pageFor(c, ""), Code: code, Status: http.StatusText(code), Message: msg}
	s.render(c, code, "error", v)
	c.Abort()
}

// page is what every page's layout shows.
type page struct {
	User    *store.AdminUser
	CSRF    string
	Nav     string
	Flash   string
	IsAdmin bool
}

func (s *Server) pageFor(c *gin.Context, nav string) page {
	p := page{Nav: nav}
	if sess, ok := c.Get(ctxSession); ok {
		ss := sess.(*session)
		p.User, p.CSRF, p.IsAdmin = &ss.user, ss.CSRFToken, ss.user.Role == store.RoleAdmin
	}
	p.Flash = takeFlash(c)
	return p
}

func parsePages() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"when":       formatTime,
		"ago":        ago,
		"stateLabel": stateLabel,
		"stateClass": stateClass,
		"join":       strings.Join,
		"add":        func(a, b int) int { return a + b },
		"list":       func(v ...string) []string { return v },
		"secretFields": func(prefix string, f pickupForm, errs map[string]string) secretFields {
			return secretFields{Prefix: prefix, Form: f, Errors: errs}
		},
		"percent": func(done, total int) int {
			if total <= 0 {
				return 0
			}
			return done * 100 / total
		},
	}
	// The layout and the partials every page may use.
	shared := []string{"templates/layout.html", "templates/secret.html"}
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, shared...)
	if err != nil {
		return nil, fmt.Errorf("admin: templates: %w", err)
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		if slices.Contains(shared, n) {
			continue
		}
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		t, err := template.Must(base.Clone()).ParseFS(templateFS, n)
		if err != nil {
			return nil, fmt.Errorf("admin: template %s: %w", n, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// secretFields is what the "secret" partial shows: the secret question
// and answer fields of a form whose field names and errors have prefix.
type secretFields struct {
	Prefix string
	Form   pickupForm
	Errors map[string]string
}

// render executes a page inside the layout.
func (s *Server) render(c *gin.Context, code int, name string, data any) {
	s.renderTemplate(c, code, name, "layout.html", data)
}

// renderTemplate executes one named template of a page's set (a fragment).
func (s *Server) renderTemplate(c *gin.Context, code int, pageName, tmpl string, data any) {
	t, ok := s.pages[pageName]
	if !ok {
		s.log.Error("admin: no template", "page", pageName)
		c.String(http.StatusInternalServerError, "internal error")
		return
	}
	// Rendered whole before the status is written, so a template error
	// is a 500, not a page cut short.
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, tmpl, data); err != nil {
		s.log.Error("admin: render", "page", pageName, "err", err)
		c.String(http.StatusInternalServerError, "internal error")
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Data(code, "text/html; charset=utf-8", b.Bytes())
}

func isHTMX(c *gin.Context) bool { return c.GetHeader("HX-Request") == "true" }

// flashCookie carries a one-line message across a redirect after a POST.
const flashCookie = "dg_flash"

func (s *Server) setFlash(c *gin.Context, msg string) {
	http.SetCookie(c.Writer, &http.Cookie{Name: flashCookie, Value: encodeFlash(msg), Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: s.secure(c), MaxAge: 60})
}

func takeFlash(c *gin.Context) string {
	ck, err := c.Request.Cookie(flashCookie)
	if err != nil || ck.Value == "" {
		return ""
	}
	http.SetCookie(c.Writer, &http.Cookie{Name: flashCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	return decodeFlash(ck.Value)
}

// redirect answers a successful POST with 303 to a page, with a flash.
func (s *Server) redirect(c *gin.Context, to, flash string) {
	if flash != "" {
		s.setFlash(c, flash)
	}
	c.Redirect(http.StatusSeeOther, to)
	c.Abort()
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	d := time.Since(t).Round(time.Second)
	switch {
	case d < 0:
		return "in " + (-d).String()
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

// stateLabel says a study's state the way staff talk about it.
func stateLabel(s store.StudyState) string {
	switch s {
	case store.StateReceiving:
		return "waiting for the quiet period"
	case store.StateQueued:
		return "queued for delivery"
	case store.StateRendering:
		return "rendering previews"
	case store.StateUploading:
		return "uploading"
	case store.StateDelivered:
		return "delivered"
	case store.StateWaitingPatient:
		return "waiting for a patient mapping"
	case store.StateWaitingPickup:
		return "waiting for a pick-up registration"
	case store.StateHeld:
		return "held"
	case store.StateFailed:
		return "failed"
	case store.StateDiscarded:
		return "discarded"
	}
	return string(s)
}

func stateClass(s store.StudyState) string {
	switch s {
	case store.StateDelivered:
		return "ok"
	case store.StateFailed:
		return "bad"
	case store.StateHeld, store.StateWaitingPatient, store.StateWaitingPickup:
		return "wait"
	case store.StateDiscarded:
		return "off"
	}
	return "busy"
}
