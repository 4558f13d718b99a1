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
	"runtime/pprof"
	"syscall"

	"github.com/alecthomas/kong"
)

// cli is the whole command line. Every flag can also be given through the
// environment variable named in its env tag, so a container needs no
// command-line arguments.
type cli struct {
	LogLevel   slog.Level `name:"log-level" env:"DICOMGATE_LOG_LEVEL" default:"info" help:"Log level: debug, info, warn, error."`
	CPUProfile string     `name:"cpu-profile" env:"DICOMGATE_CPU_PROFILE" hidden:"" type:"path" help:"Write a Go CPU profile of the whole run to this file (for the benchmarks in bench/)."`

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
	if c.CPUProfile != "" {
		stopProfile, err := startCPUProfile(c.CPUProfile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "dicomgate: %v\n", err)
			os.Exit(1)
		}
		defer stopProfile()
	}
	if err := kctx.Run(&runContext{ctx: ctx, log: logger}); err != nil {
		fmt.Fprintf(os.Stderr, "dicomgate: %v\n", err)
		os.Exit(1)
	}
}

// startCPUProfile profiles the process into path until the returned
// function is called (at exit, after a signal ended the subcommand).
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}
