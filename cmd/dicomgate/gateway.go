package main

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"dicomgate/dimse/spool"
	"dicomgate/gateway"
	"dicomgate/gateway/admin"
	"dicomgate/gateway/keyfile"
	"dicomgate/gateway/mail"
	"dicomgate/gateway/mail/mailsql"
	"dicomgate/gateway/route"
	"dicomgate/gateway/store"
	"dicomgate/mis"
	"dicomgate/platform/appcert"
	"dicomgate/platform/client"
	"dicomgate/previews"
)

// gatewayFlags configures delivery.
type gatewayFlags struct {
	QuietPeriod   time.Duration `name:"quiet-period" env:"DICOMGATE_QUIET_PERIOD" default:"60s" help:"A study is delivered this long after its last instance."`
	Attempts      int           `name:"delivery-attempts" env:"DICOMGATE_DELIVERY_ATTEMPTS" default:"8" help:"Tries of one delivery before it fails for good."`
	Workers       int           `name:"delivery-workers" env:"DICOMGATE_DELIVERY_WORKERS" default:"2" help:"Studies delivered at once."`
	Parallel      int           `name:"delivery-parallel" env:"DICOMGATE_DELIVERY_PARALLEL" default:"4" help:"Blobs of one study uploaded at once (also while it arrives)."`
	MISVersion    int           `name:"mis-version" env:"DICOMGATE_MIS_VERSION" default:"2" enum:"1,2" help:"Medical image study version written (1 or 2)."`
	DefaultRoute  string        `name:"default-route" env:"DICOMGATE_DEFAULT_ROUTE" default:"record" enum:"record,dopu,hold" help:"Where a study goes when no routing rule matches: record (after Patient Connect), dopu or hold."`
	Sign          bool          `name:"sign-things" env:"DICOMGATE_SIGN_THINGS" help:"Sign every thing written into a record with the gateway's certificate."`
	SignHash      string        `name:"sign-hash" env:"DICOMGATE_SIGN_HASH" default:"sha256" enum:"sha256,sha1" help:"Signature hash: sha256, or sha1 for HealthVault-era readers."`
	PlatformURL   string        `name:"platform-url" env:"DICOMGATE_PLATFORM_URL" help:"URL of an external platform (with --no-platform); the bundled one when empty."`
	AppDir        string        `name:"app-dir" env:"DICOMGATE_APP_DIR" help:"The gateway application's key, certificate and id (default: the bundled platform's, under --data)."`
	Institution   string        `name:"institution" env:"DICOMGATE_INSTITUTION" help:"The hospital's name in pick-up mails and letters."`
	ConnectPoll   time.Duration `name:"connect-poll" env:"DICOMGATE_CONNECT_POLL" default:"30s" help:"How often authorized Patient Connect requests are fetched."`
	PreviewSize   int           `name:"preview-size" env:"DICOMGATE_PREVIEW_SIZE" default:"1024" help:"Longest side of series and study previews."`
	ThumbnailSize int           `name:"thumbnail-size" env:"DICOMGATE_THUMBNAIL_SIZE" default:"256" help:"Longest side of image thumbnails."`
	Quality       int           `name:"preview-quality" env:"DICOMGATE_PREVIEW_QUALITY" default:"85" help:"JPEG quality of previews (1-100)."`
}

// smtpFlags configure the outbox's mail server; with no host, mail waits
// in the outbox.
type smtpFlags struct {
	Host     string `name:"smtp-host" env:"DICOMGATE_SMTP_HOST" help:"SMTP server; mail stays in the outbox when empty."`
	Port     int    `name:"smtp-port" env:"DICOMGATE_SMTP_PORT" default:"587" help:"SMTP port (587 STARTTLS, 465 implicit TLS)."`
	Security string `name:"smtp-security" env:"DICOMGATE_SMTP_SECURITY" default:"starttls" enum:"starttls,opportunistic,tls,none" help:"starttls (required), opportunistic, tls (implicit) or none."`
	Username string `name:"smtp-username" env:"DICOMGATE_SMTP_USERNAME" help:"SMTP user name (AUTH when set)."`
	Password string `name:"smtp-password" env:"DICOMGATE_SMTP_PASSWORD" help:"SMTP password."`
	From     string `name:"smtp-from" env:"DICOMGATE_SMTP_FROM" default:"dicomgate@localhost" help:"Sender address."`
}

func (f *smtpFlags) transport() (mail.Transport, error) {
	if f.Host == "" {
		return nil, nil
	}
	sec := map[string]mail.Security{"starttls": mail.SecurityStartTLS, "opportunistic": mail.SecurityStartTLSOpportunistic,
		"tls": mail.SecurityTLS, "none": mail.SecurityNone}[f.Security]
	s, err := mail.NewSMTP(mail.SMTPConfig{Host: f.Host, Port: f.Port, Security: sec, Username: f.Username, Password: f.Password, From: f.From})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// gatewayParts is what serve builds around the gateway.
type gatewayParts struct {
	gw     *gateway.Gateway
	store  *store.SQL
	outbox *mail.Outbox
	mails  *mailsql.Store
	spool  *spool.Spool
	key    *keyfile.Key
	creds  *appcert.Credentials
	// settings are the sections saved in the admin UI.
	settings admin.Settings
	closers  []func() error
}

func (p *gatewayParts) close() {
	for i := len(p.closers) - 1; i >= 0; i-- {
		p.closers[i]()
	}
}

// openGatewayStores opens the gateway's store and the outbox's, in one
// database: PostgreSQL when dsn is set, else SQLite at dataDir/gateway.db.
func openGatewayStores(ctx context.Context, dataDir, dsn string) (*store.SQL, *mailsql.Store, error) {
	st, err := openGatewayStore(ctx, dataDir, dsn)
	if err != nil {
		return nil, nil, err
	}
	var ms *mailsql.Store
	if dsn != "" {
		ms, err = mailsql.OpenPostgres(ctx, dsn)
	} else {
		ms, err = mailsql.OpenSQLite(ctx, filepath.Join(dataDir, gatewayDBName))
	}
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return st, ms, nil
}

// newGateway builds the gateway, its store, spool and outbox. platformURL
// is where the gateway reaches the platform, publicURL where patients do
// (the pick-up links in mails).
func newGateway(ctx context.Context, rc *runContext, dataDir, dsn, platformURL, publicURL string, f *gatewayFlags, sf *smtpFlags) (*gatewayParts, error) {
	p := &gatewayParts{}
	ok := false
	defer func() {
		if !ok {
			p.close()
		}
	}()
	var err error
	if p.spool, err = openSpool(dataDir); err != nil {
		return nil, err
	}
	if p.store, p.mails, err = openGatewayStores(ctx, dataDir, dsn); err != nil {
		return nil, err
	}
	p.closers = append(p.closers, p.store.Close, p.mails.Close)
	if p.key, err = keyfile.LoadOrCreate(filepath.Join(dataDir, "gateway.key")); err != nil {
		return nil, err
	}
	// Settings saved in the admin UI override the matching flags.
	set, err := admin.LoadSettings(ctx, p.store)
	if err != nil {
		return nil, fmt.Errorf("stored settings: %w", err)
	}
	p.settings = set
	appDir := f.AppDir
	if appDir == "" {
		appDir = platformGatewayAppDir(dataDir)
	}
	target := platformTarget{url: platformURL, publicURL: publicURL, appDir: appDir}.with(set.Platform)
	if p.creds, err = appcert.Load(target.appDir); err != nil {
		return nil, fmt.Errorf("gateway application credentials in %s: %w", target.appDir, err)
	}
	pc, err := client.New(client.Config{URL: target.url, Credentials: p.creds})
	if err != nil {
		return nil, err
	}
	publicURL = target.publicURL
	var transport mail.Transport
	if set.SMTP != nil && set.SMTP.Host != "" {
		sc, err := set.SMTP.SMTPConfig(p.key)
		if err != nil {
			return nil, err
		}
		if transport, err = mail.NewSMTP(sc); err != nil {
			return nil, err
		}
		if set.SMTP.Institution != "" {
			f.Institution = set.SMTP.Institution
		}
	} else if transport, err = sf.transport(); err != nil {
		return nil, err
	}
	if pv := set.Previews; pv != nil {
		if pv.PreviewSize > 0 {
			f.PreviewSize = pv.PreviewSize
		}
		if pv.ThumbnailSize > 0 {
			f.ThumbnailSize = pv.ThumbnailSize
		}
		f.Quality = pv.Quality
	}
	p.outbox = mail.NewOutbox(p.mails, transport, rc.log.With("part", "outbox"), mail.Config{})
	cfg := gateway.Config{
		QuietPeriod: f.QuietPeriod, MaxAttempts: f.Attempts, Workers: f.Workers, Parallel: f.Parallel, MISVersion: mis.Version(f.MISVersion),
		DefaultAction: route.Action(f.DefaultRoute), Log: rc.log.With("part", "gateway"),
		Previews: previews.Options{PreviewSize: f.PreviewSize, ThumbnailSize: f.ThumbnailSize, Quality: f.Quality},
		Sealer:   p.key, Mailer: p.outbox, PublicURL: publicURL, Institution: f.Institution, ConnectPoll: f.ConnectPoll,
	}
	if f.Sign {
		h := crypto.SHA256
		if f.SignHash == "sha1" {
			h = crypto.SHA1
		}
		cfg.Signer = &gateway.Signer{Key: p.creds.Key, Cert: p.creds.Cert, Hash: h}
	}
	if r := set.Routing; r != nil {
		cfg.Rules, cfg.DefaultAction = r.Rules, r.Default
	}
	if p.gw, err = gateway.New(cfg, p.store, p.spool, pc); err != nil {
		return nil, err
	}
	ok = true
	return p, nil
}

// platformTarget is where the gateway reaches the platform, where patients
// reach it (the links in mails), and the application credentials the
// gateway signs in with.
type platformTarget struct {
	url, publicURL, appDir string
}

// with returns t overridden by the platform connection saved in the admin
// UI, if any: a saved URL replaces the flags' platform, and patients are
// then sent to the saved public URL, or to that platform itself.
func (t platformTarget) with(s *admin.PlatformSettings) platformTarget {
	if s == nil {
		return t
	}
	if s.URL != "" {
		t.url, t.publicURL = s.URL, s.URL
	}
	if s.PublicURL != "" {
		t.publicURL = s.PublicURL
	}
	if s.CredentialsDir != "" {
		t.appDir = s.CredentialsDir
	}
	return t
}

// parts returns the gateway's long-running parts for serve.
func (p *gatewayParts) parts(ctx context.Context) []servicePart {
	return []servicePart{
		{name: "gateway", run: func() error {
			defer p.close()
			err := p.gw.Run(ctx)
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		}},
		{name: "outbox", run: func() error { return p.outbox.Run(ctx) }},
	}
}
