package main

import (
	"context"
	"fmt"
	"time"

	"dicomgate/dimse"
	"dicomgate/dimse/dataset"
)

// echoCmd sends a C-ECHO (Verification, PS3.4 annex A).
type echoCmd struct {
	AET     string        `name:"aet" default:"DICOMGATE" help:"Calling AE title."`
	AEC     string        `name:"aec" default:"ANY-SCP" help:"Called AE title."`
	Timeout time.Duration `name:"timeout" default:"30s" help:"Give up after this long."`
	Addr    string        `arg:"" name:"host:port" help:"Peer address."`
}

// Run associates, sends one C-ECHO and releases.
func (c *echoCmd) Run(rc *runContext) error {
	ctx, cancel := contextWithTimeout(rc, c.Timeout)
	defer cancel()
	start := time.Now()
	cl, err := dimse.Dial(ctx, c.Addr, dimse.ClientConfig{CallingAETitle: c.AET, CalledAETitle: c.AEC},
		[]dimse.ContextProposal{{AbstractSyntax: dimse.VerificationSOPClass,
			TransferSyntaxes: []string{dataset.ExplicitVRLittleEndian, dataset.ImplicitVRLittleEndian}}})
	if err != nil {
		return fmt.Errorf("echo %s: %w", c.Addr, err)
	}
	if err := cl.Echo(ctx); err != nil {
		cl.Abort()
		return fmt.Errorf("echo %s: %w", c.Addr, err)
	}
	if err := cl.Release(); err != nil {
		return fmt.Errorf("echo %s: release: %w", c.Addr, err)
	}
	fmt.Printf("C-ECHO %s (%s): success in %v\n", c.Addr, c.AEC, time.Since(start).Round(time.Millisecond))
	return nil
}

// contextWithTimeout is rc's context, ended after d when d > 0.
func contextWithTimeout(rc *runContext, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(rc.ctx)
	}
	return context.WithTimeout(rc.ctx, d)
}
