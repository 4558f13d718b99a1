// Command dicomgate is the DICOM gateway between hospital imaging and
// patients' health records: a DICOM C-STORE listener, a preview renderer, a
// HealthVault-compatible platform server and the gateway that connects them.
//
// Each subcommand lives in its own file; main only wires them into one CLI.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kong"
)

// cli is the whole command line. Every flag can also be given through the
// environment variable named in its env tag, so a container needs no
// command-line arguments.
type cli struct {
	LogLevel slog.Level `name:"log-level" env:"DICOMGATE_LOG_LEVEL" default:"info" help:"Log level: debug, info, warn, error."`

	Serve    serveCmd    `cmd:"" help:"Run the whole product: DICOM listener, gateway, bundled platform, outbox."`
	Echo     echoCmd     `cmd:"" help:"Send a DICOM C-ECHO (verification) to a peer."`
	Send     sendCmd     `cmd:"" help:"Send DICOM files to a peer with C-STORE."`
	Platform platformCmd `cmd:"" help:"Run or administer the bundled HealthVault-compatible platform."`
	Preview  previewCmd  `cmd:"" help:"Render a DICOM file to a JPEG preview and thumbnail."`
	Outbox   outboxCmd   `cmd:"" help:"List the mail outbox."`
	Admin    adminCmd    `cmd:"" help:"Administer the admin UI's users."`
}

// runContext is what every subcommand's Run method receives: a context that
// is cancelled on SIGINT or SIGTERM, and the process logger.
type runContext struct {
	ctx context.Context
	log *slog.Logger
}

func main() {
	var c cli
	kctx := kong.Parse(&c,
		kong.Name("dicomgate"),
		kong.Description("DICOM gateway between hospital imaging and patients' health records."),
		kong.UsageOnError(),
	)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: c.LogLevel}))
	if err := kctx.Run(&runContext{ctx: ctx, log: logger}); err != nil {
		fmt.Fprintf(os.Stderr, "dicomgate: %v\n", err)
		os.Exit(1)
	}
}
