//go:build !linux

package server

import "os"

func openDirect(string) *os.File { return nil }

func isDirectRefused(error) bool { return false }

func datasync(f *os.File) error { return f.Sync() }
