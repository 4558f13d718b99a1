package main

import (
	"context"
	"errors"
)

// dicomFlags configures the DICOM listener of serve. (Owned by the dimse work.)
type dicomFlags struct {
	Addr    string `name:"dicom-addr" env:"DICOMGATE_DICOM_ADDR" default:":11112" help:"DICOM listen address."`
	AETitle string `name:"ae-title" env:"DICOMGATE_AE_TITLE" default:"DICOMGATE" help:"Called AE title this listener answers to."`
}

func newDICOMPart(ctx context.Context, rc *runContext, dataDir string, f *dicomFlags) (servicePart, error) {
	return servicePart{}, errors.New("not built yet")
}

// echoCmd sends a C-ECHO.
type echoCmd struct{}

func (c *echoCmd) Run(rc *runContext) error { return errors.New("not built yet") }

// sendCmd sends files with C-STORE.
type sendCmd struct{}

func (c *sendCmd) Run(rc *runContext) error { return errors.New("not built yet") }
