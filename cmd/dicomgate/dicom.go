package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"dicomgate/dimse"
	"dicomgate/dimse/spool"
	"dicomgate/dimse/ul"
)

// dicomFlags configures the DICOM listener of serve.
type dicomFlags struct {
	Addr             string        `name:"dicom-addr" env:"DICOMGATE_DICOM_ADDR" default:":11112" help:"DICOM listen address."`
	AETitle          string        `name:"ae-title" env:"DICOMGATE_AE_TITLE" default:"DICOMGATE" help:"Called AE title this listener answers to."`
	AllowAET         []string      `name:"allow-aet" env:"DICOMGATE_ALLOW_AET" sep:"," help:"Calling AE titles admitted, each AE or AE@host (empty: any)."`
	MaxAssociations  int           `name:"max-associations" env:"DICOMGATE_MAX_ASSOCIATIONS" default:"32" help:"Concurrent associations before transient rejection."`
	TLSAddr          string        `name:"dicom-tls-addr" env:"DICOMGATE_DICOM_TLS_ADDR" help:"DICOM TLS listen address (disabled when empty)."`
	TLSCert          string        `name:"dicom-tls-cert" env:"DICOMGATE_DICOM_TLS_CERT" help:"PEM certificate of the DICOM TLS listener."`
	TLSKey           string        `name:"dicom-tls-key" env:"DICOMGATE_DICOM_TLS_KEY" help:"PEM private key of the DICOM TLS listener."`
	TLSClientCA      string        `name:"dicom-tls-client-ca" env:"DICOMGATE_DICOM_TLS_CLIENT_CA" help:"PEM CA bundle; when set, client certificates are required and verified."`
	AcceptUnknown    bool          `name:"accept-unknown-sop-classes" env:"DICOMGATE_ACCEPT_UNKNOWN_SOP_CLASSES" help:"Also accept SOP classes missing from the DICOM dictionary (private storage)."`
	TransferSyntaxes []string      `name:"transfer-syntax-preference" env:"DICOMGATE_TRANSFER_SYNTAX_PREFERENCE" sep:"," default:"1.2.840.10008.1.2.1,1.2.840.10008.1.2" help:"Transfer syntax UIDs in order of preference; other proposed known syntaxes are accepted as they are."`
	IdleTimeout      time.Duration `name:"dicom-idle-timeout" env:"DICOMGATE_DICOM_IDLE_TIMEOUT" default:"5m" help:"Abort an association silent this long."`
	ARTIMTimeout     time.Duration `name:"dicom-artim-timeout" env:"DICOMGATE_DICOM_ARTIM_TIMEOUT" default:"30s" help:"ARTIM timer (PS3.8 9.1.5)."`
	MaxPDU           uint32        `name:"dicom-max-pdu" env:"DICOMGATE_DICOM_MAX_PDU" default:"262144" help:"Maximum P-DATA PDU length announced."`
}

// openSpool opens the spool of received instances under dataDir.
func openSpool(dataDir string) (*spool.Spool, error) {
	return spool.Open(filepath.Join(dataDir, "spool"), dimse.ImplementationClassUID, dimse.ImplementationVersionName)
}

// newDICOMServer builds the server from the flags, storing through h.
func newDICOMServer(rc *runContext, h dimse.Handler, f *dicomFlags) (*dimse.Server, error) {
	srv := &dimse.Server{
		AETitle:                 f.AETitle,
		MaxAssociations:         f.MaxAssociations,
		AcceptUnknownSOPClasses: f.AcceptUnknown,
		TransferSyntaxes:        f.TransferSyntaxes,
		Handler:                 h,
		Logger:                  rc.log.With("part", "dicom"),
		UL:                      ul.Config{IdleTimeout: f.IdleTimeout, ARTIMTimeout: f.ARTIMTimeout, MaxPDULength: f.MaxPDU},
	}
	for _, s := range f.AllowAET {
		r, err := dimse.ParseCallerRule(s)
		if err != nil {
			return nil, err
		}
		srv.AllowedCallers = append(srv.AllowedCallers, r)
	}
	return srv, nil
}

func (f *dicomFlags) tlsConfig() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(f.TLSCert, f.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("dicom tls: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if f.TLSClientCA != "" {
		pem, err := os.ReadFile(f.TLSClientCA)
		if err != nil {
			return nil, fmt.Errorf("dicom tls: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("dicom tls: no certificate in client CA file")
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// newDICOMPart is serve's DICOM listener: the C-STORE SCP storing through
// h (the gateway, which spools into sp), plus the DICOM TLS listener when
// configured. The server is returned too: the admin dashboard lists its
// live associations.
func newDICOMPart(ctx context.Context, rc *runContext, sp *spool.Spool, h dimse.Handler, f *dicomFlags) (servicePart, *dimse.Server, error) {
	srv, err := newDICOMServer(rc, h, f)
	if err != nil {
		return servicePart{}, nil, err
	}
	ln, err := net.Listen("tcp", f.Addr)
	if err != nil {
		return servicePart{}, nil, err
	}
	listeners := []net.Listener{ln}
	if f.TLSAddr != "" {
		cfg, err := f.tlsConfig()
		if err != nil {
			_ = ln.Close()
			return servicePart{}, nil, err
		}
		tln, err := net.Listen("tcp", f.TLSAddr)
		if err != nil {
			_ = ln.Close()
			return servicePart{}, nil, err
		}
		listeners = append(listeners, tls.NewListener(tln, cfg))
	}
	for _, l := range listeners {
		rc.log.Info("dicom listener", "addr", l.Addr().String(), "ae_title", f.AETitle, "spool", sp.Dir())
	}
	return servicePart{name: "dicom", run: func() error {
		var wg sync.WaitGroup
		errs := make([]error, len(listeners))
		for i, l := range listeners {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = srv.Serve(ctx, l)
			}()
		}
		wg.Wait()
		return errors.Join(errs...)
	}}, srv, nil
}
