package main

import "errors"

// platformCmd runs or administers the bundled platform. (Owned by the platform work.)
type platformCmd struct{}

func (c *platformCmd) Run(rc *runContext) error { return errors.New("not built yet") }
