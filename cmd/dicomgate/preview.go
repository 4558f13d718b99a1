package main

import "errors"

// previewCmd renders one DICOM file. (Owned by the previews work.)
type previewCmd struct{}

func (c *previewCmd) Run(rc *runContext) error { return errors.New("not built yet") }
