package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// serveCmd runs every part of the product in one process. Each part owns a
// flag group and a start function in its own file; serve only starts them
// together and stops them all when one fails or a signal arrives.
type serveCmd struct {
	Data string `name:"data" env:"DICOMGATE_DATA" default:"./data" help:"Directory for spooled DICOM files, blobs and the SQLite databases."`
	DB   string `name:"db" env:"DICOMGATE_DB" help:"PostgreSQL DSN (postgres://…); SQLite under --data when empty."`

	DICOM dicomFlags `embed:"" group:"DICOM listener"`
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

	dicom, err := newDICOMPart(ctx, rc, c.Data, &c.DICOM)
	if err != nil {
		return fmt.Errorf("dicom listener: %w", err)
	}
	parts := []servicePart{dicom}

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
			if err != nil && !errors.Is(err, ctx.Err()) {
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
