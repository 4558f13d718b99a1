package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/alecthomas/kong"
)

// The tests that run the real dicomgate binary share one build, made on
// first use in a directory of this test run (so concurrent runs never
// overwrite each other's binary) and removed at the end.
var bin struct {
	once      sync.Once
	dir, path string
	err       error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bin.dir != "" {
		_ = os.RemoveAll(bin.dir)
	}
	os.Exit(code)
}

func dicomgateBinary(t *testing.T) string {
	t.Helper()
	bin.once.Do(func() {
		if bin.dir, bin.err = os.MkdirTemp("", "dicomgate-test-bin"); bin.err != nil {
			return
		}
		bin.path = filepath.Join(bin.dir, "dicomgate")
		if out, err := exec.Command("go", "build", "-o", bin.path, ".").CombinedOutput(); err != nil {
			bin.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if bin.err != nil {
		t.Fatal(bin.err)
	}
	return bin.path
}

// quietRun is a runContext for commands run in-process, logging nowhere.
func quietRun() *runContext {
	return &runContext{ctx: context.Background(), log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// execCLI parses args as the dicomgate command line and runs the command
// in-process with rc.
func execCLI(t *testing.T, rc *runContext, args ...string) error {
	t.Helper()
	var c cli
	p, err := kong.New(&c, kong.Name("dicomgate"), kong.Exit(func(int) { t.Fatalf("kong exited on %v", args) }))
	if err != nil {
		t.Fatal(err)
	}
	kctx, err := p.Parse(args)
	if err != nil {
		return err
	}
	return kctx.Run(rc)
}

// runCLI is execCLI failing the test on any error.
func runCLI(t *testing.T, rc *runContext, args ...string) {
	t.Helper()
	if err := execCLI(t, rc, args...); err != nil {
		t.Fatalf("%v: %v", args, err)
	}
}

// syncBuffer is a log sink tests can read while a part runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
