package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"dicomgate/dimse"
	"dicomgate/gateway/admin"
)

// serveCmd runs every part of the product in one process: the bundled
// platform, the gateway and its outbox, and the DICOM listener whose
// instances the gateway takes. Each part owns a flag group and a start
// function in its own file; serve starts them together and stops them all
// when one fails or a signal arrives.
type serveCmd struct {
	Data string `name:"data" env:"DICOMGATE_DATA" default:"./data" help:"Directory for spooled DICOM files, blobs, keys and the SQLite databases."`
	DB   string `name:"db" env:"DICOMGATE_DB" help:"PostgreSQL DSN (postgres://…) for the platform and the gateway; SQLite under --data when empty."`

	DICOM    dicomFlags    `embed:"" group:"DICOM listener"`
	Platform platformFlags `embed:"" group:"Platform"`
	Gateway  gatewayFlags  `embed:"" group:"Gateway"`
	SMTP     smtpFlags     `embed:"" group:"Mail"`
	Admin    adminFlags    `embed:"" group:"Admin UI"`
}

// servicePart is one long-running part of serve. run blocks until ctx is
// done or the part fails.
type servicePart struct {
	name string
	run  func() error
}

func (c *serveCmd) Run(rc *runContext) error {
	ctx, cancel := context.WithCancel(rc.ctx)
	defer cancel()

	platform, err := newPlatformPart(ctx, rc, c.Data, c.DB, &c.Platform)
	if err != nil {
		return fmt.Errorf("platform: %w", err)
	}
	platformURL := c.Platform.clientURL()
	if c.Platform.Disable {
		if c.Gateway.PlatformURL == "" {
			return errors.New("--no-platform needs --platform-url (and --app-dir)")
		}
		platformURL = c.Gateway.PlatformURL
	}
	publicURL := c.Platform.PublicURL
	if publicURL == "" {
		publicURL = platformURL
	}
	gw, err := newGateway(ctx, rc, c.Data, c.DB, platformURL, publicURL, &c.Gateway, &c.SMTP)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	// The DICOM settings saved in the admin UI override the flags.
	if d := gw.settings.DICOM; d != nil {
		if d.AETitle != "" {
			c.DICOM.AETitle = d.AETitle
		}
		c.DICOM.AllowAET = c.DICOM.AllowAET[:0]
		for _, ac := range d.AllowedCallers {
			c.DICOM.AllowAET = append(c.DICOM.AllowAET, ac.String())
		}
	}
	dicom, dicomSrv, err := newDICOMPart(ctx, rc, gw.spool, gw.gw, &c.DICOM)
	if err != nil {
		gw.close()
		return fmt.Errorf("dicom listener: %w", err)
	}
	adminUI, err := newAdminPart(ctx, rc, &c.Admin, admin.Config{Gateway: gw.gw, Associations: dicomAssociations{dicomSrv},
		Outbox: gw.mails, Secrets: gw.key})
	if err != nil {
		gw.close()
		return fmt.Errorf("admin UI: %w", err)
	}
	parts := append([]servicePart{platform, dicom, adminUI}, gw.parts(ctx)...)
	return runParts(ctx, cancel, parts)
}

// dicomAssociations shows the DICOM listener's live associations on the
// admin dashboard.
type dicomAssociations struct{ srv *dimse.Server }

var _ admin.Associations = dicomAssociations{}

// Associations converts the listener's snapshot to the dashboard's rows.
func (d dicomAssociations) Associations() []admin.AssociationSnapshot {
	live := d.srv.Associations()
	out := make([]admin.AssociationSnapshot, len(live))
	for i, a := range live {
		out[i] = admin.AssociationSnapshot{Peer: a.RemoteAddr, CallingAE: a.CallingAETitle, CalledAE: a.CalledAETitle,
			Instances: int(a.Instances), Since: a.Since}
	}
	return out
}

// runParts runs every part until all have stopped; the first to fail
// stops the others, and its error is returned.
func runParts(ctx context.Context, cancel context.CancelFunc, parts []servicePart) error {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for _, p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := p.run()
			if err != nil && !errors.Is(err, context.Canceled) {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("%s: %w", p.name, err)
				}
				mu.Unlock()
			}
			cancel()
		}()
	}
	wg.Wait()
	return firstErr
}

// serveHTTP runs serve (hs.Serve or hs.ServeTLS on a listener) until it
// fails or ctx is done; then it shuts hs down, letting requests in flight
// finish for up to grace, and returns ctx.Err().
func serveHTTP(ctx context.Context, hs *http.Server, serve func() error, grace time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- serve() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := hs.Shutdown(shutdown); err != nil {
		return err
	}
	<-errc
	return ctx.Err()
}
