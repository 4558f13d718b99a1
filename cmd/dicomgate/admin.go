package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/term"

	"dicomgate/gateway/admin"
	"dicomgate/gateway/store"
)

// adminCmd administers the staff web UI's accounts.
type adminCmd struct {
	CreateUser adminCreateUserCmd `cmd:"" name:"create-user" help:"Create a user of the admin UI; the password is read from stdin, or prompted for on a terminal."`
}

// adminCreateUserCmd creates an admin UI user in the gateway's database,
// so the first admin can exist before the first start.
type adminCreateUserCmd struct {
	Data     string `name:"data" env:"DICOMGATE_DATA" default:"./data" help:"Data directory of the gateway; SQLite database DIR/gateway.db."`
	DB       string `name:"db" env:"DICOMGATE_DB" help:"PostgreSQL DSN (postgres://…); SQLite under --data when empty."`
	Username string `name:"username" required:"" help:"User name (letters, digits and . _ - @)."`
	Role     string `name:"role" enum:"admin,staff" default:"staff" help:"Role: admin (settings, users, audit log) or staff."`
}

func (c *adminCreateUserCmd) Run(rc *runContext) error {
	return c.run(rc, os.Stdin)
}

func (c *adminCreateUserCmd) run(rc *runContext, stdin *os.File) error {
	pw, err := readNewPassword(stdin, os.Stderr)
	if err != nil {
		return err
	}
	st, err := openGatewayStore(rc.ctx, c.Data, c.DB)
	if err != nil {
		return err
	}
	defer st.Close()
	u, err := admin.CreateUser(rc.ctx, st, c.Username, store.AdminRole(c.Role), pw, admin.DefaultArgon2Params(), time.Now())
	if err != nil {
		return err
	}
	err = st.AddAudit(rc.ctx, store.AuditEntry{At: time.Now(), Username: u.Username, UserID: u.ID, Action: "user-created",
		Detail: fmt.Sprintf("%s (%s) by dicomgate admin create-user", u.Username, u.Role)})
	if err != nil {
		return err
	}
	rc.log.Info("admin user created", "username", u.Username, "role", u.Role)
	return nil
}

// readNewPassword prompts twice without echo on a terminal; otherwise it
// reads one line from in (so scripts can pipe the password).
func readNewPassword(in *os.File, prompt io.Writer) (string, error) {
	if term.IsTerminal(int(in.Fd())) {
		fmt.Fprint(prompt, "Password: ")
		a, err := term.ReadPassword(int(in.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return "", err
		}
		fmt.Fprint(prompt, "Password again: ")
		b, err := term.ReadPassword(int(in.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return "", err
		}
		if string(a) != string(b) {
			return "", errors.New("the two passwords differ")
		}
		return string(a), nil
	}
	return readPasswordLine(in)
}

// readPasswordLine reads the first line of r, bounded.
func readPasswordLine(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, admin.MaxPasswordLen+2)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	if len(line) > admin.MaxPasswordLen+1 {
		return "", fmt.Errorf("password longer than %d bytes", admin.MaxPasswordLen)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no password on stdin")
	}
	return line, nil
}

// openGatewayStore opens the gateway's database: PostgreSQL when dsn is
// set, else DIR/gateway.db (created and migrated when missing).
func openGatewayStore(ctx context.Context, dataDir, dsn string) (*store.SQL, error) {
	if dsn != "" {
		return store.OpenPostgres(ctx, dsn)
	}
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, err
	}
	return store.OpenSQLite(ctx, filepath.Join(dataDir, gatewayDBName))
}

// adminFlags configures serve's admin UI.
type adminFlags struct {
	Addr          string `name:"admin-addr" env:"DICOMGATE_ADMIN_ADDR" default:":8081" help:"Admin UI listen address."`
	URL           string `name:"admin-url" env:"DICOMGATE_ADMIN_URL" help:"External URL of the admin UI, used in the first-start setup link (default http://localhost:PORT)."`
	SecureCookies bool   `name:"admin-secure-cookies" env:"DICOMGATE_ADMIN_SECURE_COOKIES" help:"Mark cookies Secure (the UI is behind a TLS-terminating proxy)."`
	TLSCert       string `name:"admin-tls-cert" env:"DICOMGATE_ADMIN_TLS_CERT" help:"PEM certificate; with --admin-tls-key the UI serves HTTPS."`
	TLSKey        string `name:"admin-tls-key" env:"DICOMGATE_ADMIN_TLS_KEY" help:"PEM private key of the admin UI."`
}

// newAdminPart is serve's admin UI: the gin server on --admin-addr,
// showing and driving the parts of serve in cfg (the flags set its cookie
// security and log). When no user exists yet it logs the one-time setup
// link.
func newAdminPart(ctx context.Context, rc *runContext, f *adminFlags, cfg admin.Config) (servicePart, error) {
	gin.SetMode(gin.ReleaseMode)
	log := rc.log.With("part", "admin")
	cfg.SecureCookies = cfg.SecureCookies || f.SecureCookies || f.TLSCert != ""
	cfg.Log = log
	srv, err := admin.New(cfg)
	if err != nil {
		return servicePart{}, err
	}
	if (f.TLSCert == "") != (f.TLSKey == "") {
		return servicePart{}, errors.New("admin: --admin-tls-cert and --admin-tls-key go together")
	}
	ln, err := net.Listen("tcp", f.Addr)
	if err != nil {
		return servicePart{}, err
	}
	base := f.URL
	if base == "" {
		base = localURL(ln.Addr(), f.TLSCert != "")
	}
	setup, err := srv.SetupURL(ctx, base)
	if err != nil {
		ln.Close()
		return servicePart{}, err
	}
	if setup != "" {
		log.Warn("no admin user yet: open this one-time link to create the first admin (or run dicomgate admin create-user)",
			"url", setup)
	}
	log.Info("admin UI", "addr", ln.Addr().String(), "url", base)
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
		WriteTimeout: 2 * time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	serve := func() error { return hs.Serve(ln) }
	if f.TLSCert != "" {
		serve = func() error { return hs.ServeTLS(ln, f.TLSCert, f.TLSKey) }
	}
	return servicePart{name: "admin", run: func() error {
		purgeCtx, stopPurge := context.WithCancel(ctx)
		defer stopPurge()
		go purgeAdminSessions(purgeCtx, cfg.Gateway, log)
		return serveHTTP(ctx, hs, serve, 5*time.Second)
	}}, nil
}

// purgeAdminSessions deletes expired admin UI sessions every ten minutes
// until ctx is done.
func purgeAdminSessions(ctx context.Context, gw admin.Gateway, log *slog.Logger) {
	tick := time.NewTicker(10 * time.Minute)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if _, err := gw.DB().PurgeAdminSessions(ctx, time.Now()); err != nil {
				log.Warn("purging expired sessions", "err", err)
			}
		}
	}
}

// localURL is the UI's URL on this host when none is configured.
func localURL(a net.Addr, tls bool) string {
	scheme := "http"
	if tls {
		scheme = "https"
	}
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return scheme + "://" + a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}
