package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"dicomgate/platform/appcert"
	"dicomgate/platform/provision"
	"dicomgate/platform/server"
	"dicomgate/platform/store"
	"dicomgate/platform/store/postgres"
	"dicomgate/platform/store/sqlite"
	"dicomgate/platform/web"
)

// platformCmd runs or administers the bundled platform.
type platformCmd struct {
	Run    platformRunCmd    `cmd:"" default:"withargs" help:"Run the platform server alone (the default)."`
	App    platformAppCmd    `cmd:"" help:"Manage applications."`
	Record platformRecordCmd `cmd:"" help:"Manage persons, records and application authorizations."`
}

// platformStoreFlags select the platform's storage.
type platformStoreFlags struct {
	Data string `name:"data" env:"DICOMGATE_DATA" default:"./data" help:"Directory for blobs and the SQLite database."`
	DB   string `name:"db" env:"DICOMGATE_DB" help:"PostgreSQL DSN (postgres://…); SQLite under --data when empty."`
}

// platformFlags configure the platform part of serve.
type platformFlags struct {
	Addr      string `name:"platform-addr" env:"DICOMGATE_PLATFORM_ADDR" default:":8080" help:"Listen address of the bundled platform."`
	PublicURL string `name:"public-url" env:"DICOMGATE_PUBLIC_URL" help:"Base URL clients reach the platform at (for blob URLs); http://localhost:PORT when empty."`
	Disable   bool   `name:"no-platform" env:"DICOMGATE_NO_PLATFORM" help:"Do not run the bundled platform in-process."`

	// bound is the loopback URL of the listener once it listens (the
	// port of --platform-addr :0 is known only then).
	bound string
}

// clientURL is the URL a client in this process (the gateway) reaches the
// bundled platform at: --public-url when set, else loopback on the port of
// --platform-addr.
func (f *platformFlags) clientURL() string {
	if f.PublicURL != "" {
		return strings.TrimRight(f.PublicURL, "/")
	}
	if f.bound != "" {
		return f.bound
	}
	host, port, err := net.SplitHostPort(f.Addr)
	if err != nil {
		return "http://127.0.0.1:8080"
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// platformGatewayAppName names the gateway's own application, registered
// by serve on every start (idempotently).
const platformGatewayAppName = "dicomgate gateway"

// platformGatewayAppDir is where serve keeps the gateway application's key,
// certificate and id (appcert.Load reads them).
func platformGatewayAppDir(dataDir string) string {
	return filepath.Join(dataDir, "platform", "gateway-app")
}

// openPlatformStore opens PostgreSQL when dsn is set, else SQLite under dataDir.
func openPlatformStore(ctx context.Context, dataDir, dsn string) (store.Store, error) {
	if dsn != "" {
		return postgres.Open(ctx, dsn)
	}
	dir := filepath.Join(dataDir, "platform")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return sqlite.Open(ctx, filepath.Join(dir, "platform.db"))
}

// newPlatformPart opens the store, bootstraps the gateway's application and
// returns the platform server as a part of serve. It listens at once, so a
// busy port fails serve before anything else starts.
func newPlatformPart(ctx context.Context, rc *runContext, dataDir, dsn string, f *platformFlags) (servicePart, error) {
	if f.Disable {
		return servicePart{name: "platform (disabled)", run: func() error { <-ctx.Done(); return ctx.Err() }}, nil
	}
	st, err := openPlatformStore(ctx, dataDir, dsn)
	if err != nil {
		return servicePart{}, err
	}
	if _, err := provision.BootstrapApp(ctx, st, platformGatewayAppDir(dataDir), platformGatewayAppName); err != nil {
		st.Close()
		return servicePart{}, fmt.Errorf("bootstrap gateway application: %w", err)
	}
	run, addr, err := startPlatform(ctx, rc, st, dataDir, f.Addr, f.PublicURL)
	if err != nil {
		st.Close()
		return servicePart{}, err
	}
	f.bound = "http://127.0.0.1:" + portOf(addr)
	return servicePart{name: "platform", run: func() error {
		defer st.Close()
		return run()
	}}, nil
}

// startPlatform listens on addr and returns the function that serves until
// ctx is done.
func startPlatform(ctx context.Context, rc *runContext, st store.Store, dataDir, addr, publicURL string) (func() error, net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("platform: %w", err)
	}
	if publicURL == "" {
		publicURL = "http://localhost:" + portOf(ln.Addr())
	}
	srv, err := server.New(server.Config{
		Store:     st,
		DataDir:   filepath.Join(dataDir, "platform"),
		PublicURL: publicURL,
		Logger:    rc.log.With("part", "platform"),
	})
	if err != nil {
		ln.Close()
		return nil, nil, err
	}
	pages, err := web.New(web.Config{Server: srv, PublicURL: publicURL, Logger: rc.log.With("part", "patient-pages")})
	if err != nil {
		srv.Close()
		ln.Close()
		return nil, nil, err
	}
	pages.Mount(srv) // patient pages and /redirect.aspx (SPEC §1)
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	return func() error {
		defer srv.Close()
		rc.log.Info("platform listening", "addr", ln.Addr().String(), "public_url", publicURL)
		return serveHTTP(ctx, hs, func() error { return hs.Serve(ln) }, 10*time.Second)
	}, ln.Addr(), nil
}

func portOf(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return fmt.Sprint(t.Port)
	}
	_, port, _ := net.SplitHostPort(a.String())
	return port
}

// platformRunCmd runs the platform alone.
type platformRunCmd struct {
	platformStoreFlags
	Addr      string `name:"addr" env:"DICOMGATE_PLATFORM_ADDR" default:":8080" help:"Listen address."`
	PublicURL string `name:"public-url" env:"DICOMGATE_PUBLIC_URL" help:"Base URL clients reach the platform at; http://localhost:PORT when empty."`
}

func (c *platformRunCmd) Run(rc *runContext) error {
	st, err := openPlatformStore(rc.ctx, c.Data, c.DB)
	if err != nil {
		return err
	}
	defer st.Close()
	run, _, err := startPlatform(rc.ctx, rc, st, c.Data, c.Addr, c.PublicURL)
	if err != nil {
		return err
	}
	if err := run(); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// platformAppCmd manages applications.
type platformAppCmd struct {
	Create platformAppCreateCmd `cmd:"" help:"Register an application: writes a new key and certificate (or imports --cert) and prints the app id."`
}

type platformAppCreateCmd struct {
	platformStoreFlags
	Name string `name:"name" required:"" help:"Application name."`
	Out  string `name:"out" help:"Directory for the new app.key, app.crt and app.id (default DATA/platform/apps/NAME)."`
	Cert string `name:"cert" type:"existingfile" help:"Import this certificate (PEM or DER) instead of generating a key pair."`
}

func (c *platformAppCreateCmd) Run(rc *runContext) error {
	st, err := openPlatformStore(rc.ctx, c.Data, c.DB)
	if err != nil {
		return err
	}
	defer st.Close()
	if c.Cert != "" {
		b, err := os.ReadFile(c.Cert)
		if err != nil {
			return err
		}
		cert, err := appcert.ParseCert(b)
		if err != nil {
			return err
		}
		app, err := provision.RegisterApp(rc.ctx, st, c.Name, cert)
		if err != nil {
			return err
		}
		fmt.Println(app.ID)
		return nil
	}
	out := c.Out
	if out == "" {
		out = filepath.Join(c.Data, "platform", "apps", sanitize(c.Name))
	}
	if _, err := appcert.Load(out); err == nil {
		return fmt.Errorf("%s already holds application credentials", out)
	}
	key, cert, err := appcert.Generate(c.Name, 10*365*24*time.Hour)
	if err != nil {
		return err
	}
	app, err := provision.RegisterApp(rc.ctx, st, c.Name, cert)
	if err != nil {
		return err
	}
	if err := appcert.Save(out, &appcert.Credentials{AppID: app.ID, Key: key, Cert: cert}); err != nil {
		return err
	}
	fmt.Println(app.ID)
	rc.log.Info("application registered", "id", app.ID, "credentials", out, "thumbprint", appcert.Thumbprint(cert))
	return nil
}

func sanitize(name string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, name)
}

// platformRecordCmd manages persons, records and authorizations.
type platformRecordCmd struct {
	Create    platformRecordCreateCmd    `cmd:"" help:"Create a record (and its person, when the login is new); prints the record id."`
	Authorize platformRecordAuthorizeCmd `cmd:"" help:"Authorize an application for a record."`
}

type platformRecordCreateCmd struct {
	platformStoreFlags
	Login        string `name:"login" required:"" help:"Login of the person holding the record."`
	PersonName   string `name:"person-name" help:"Display name of a new person (default: the login)."`
	Password     string `name:"password" env:"DICOMGATE_PERSON_PASSWORD" help:"Password of a new person (at least 8 characters)."`
	Name         string `name:"name" required:"" help:"Record name (whose health record it is)."`
	Relationship string `name:"relationship" default:"self" enum:"self,child,other" help:"Relationship of the record to the person."`
}

func (c *platformRecordCreateCmd) Run(rc *runContext) error {
	st, err := openPlatformStore(rc.ctx, c.Data, c.DB)
	if err != nil {
		return err
	}
	defer st.Close()
	p, err := st.PersonByLogin(rc.ctx, c.Login)
	if errors.Is(err, store.ErrNotFound) {
		name := c.PersonName
		if name == "" {
			name = c.Login
		}
		p, err = provision.CreatePerson(rc.ctx, st, c.Login, name, c.Password)
	}
	if err != nil {
		return err
	}
	r, err := provision.CreateRecord(rc.ctx, st, p.ID, c.Name, c.Relationship)
	if err != nil {
		return err
	}
	fmt.Println(r.ID)
	rc.log.Info("record created", "record", r.ID, "person", p.ID, "login", p.Login)
	return nil
}

type platformRecordAuthorizeCmd struct {
	platformStoreFlags
	App    string `name:"app" required:"" help:"Application id."`
	Record string `name:"record" required:"" help:"Record id."`
}

func (c *platformRecordAuthorizeCmd) Run(rc *runContext) error {
	st, err := openPlatformStore(rc.ctx, c.Data, c.DB)
	if err != nil {
		return err
	}
	defer st.Close()
	return provision.Authorize(rc.ctx, st, c.App, c.Record)
}
