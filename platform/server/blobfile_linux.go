package server

import (
	"errors"
	"os"
	"syscall"
)

// openDirect opens path for O_DIRECT writes, or returns nil where the file
// system does not support them (tmpfs before Linux 6.6, some FUSE).
func openDirect(path string) *os.File {
	f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_DIRECT, 0)
	if err != nil {
		return nil
	}
	return f
}

func isDirectRefused(err error) bool { return errors.Is(err, syscall.EINVAL) }

// datasync is fdatasync(2): the data and the metadata needed to read it
// back (the size), without the timestamp-only journal commits of fsync.
func datasync(f *os.File) error {
	sc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := sc.Control(func(fd uintptr) {
		for {
			serr = syscall.Fdatasync(int(fd))
			if serr != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	if serr != nil {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: serr}
	}
	return nil
}
