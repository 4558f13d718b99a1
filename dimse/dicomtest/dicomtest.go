// Package dicomtest gives dicomgate's tests the real DICOM corpora and peer
// programs available on the machine: the Debian python3-pydicom test files,
// the testdata of the github.com/suyashkumar/dicom module, DCMTK and
// OpenJPEG's opj_decompress. It reads DICOM Part 10 files (PS3.10) and the
// encapsulated or native Pixel Data in them (PS3.5 8.2, A.4) for codec
// comparisons.
//
// A test whose peer is absent is skipped, or failed when the environment
// sets DICOMGATE_REQUIRE_PEERS=1 (as CI does), so a missing peer never
// passes unnoticed.
//
// dicomtest is imported only from _test.go files, never by production code.
package dicomtest

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Corpus locations.
const (
	// PydicomData is where Debian's python3-pydicom installs its data:
	// test_files and charset_files.
	PydicomData = "/usr/lib/python3/dist-packages/pydicom/data"
	// PydicomTestFiles is pydicom's corpus of test files.
	PydicomTestFiles = PydicomData + "/test_files"
	// SuyashModule is the module whose testdata SuyashTestdata finds; go.mod
	// pins this version.
	SuyashModule = "github.com/suyashkumar/dicom@v1.1.0"
)

// RequirePeers reports whether a missing peer must fail the test rather
// than skip it: DICOMGATE_REQUIRE_PEERS=1, as CI sets.
func RequirePeers() bool { return os.Getenv("DICOMGATE_REQUIRE_PEERS") == "1" }

// MissingPeer skips the test because a peer it needs is absent, or fails it
// when RequirePeers.
func MissingPeer(t testing.TB, format string, args ...any) {
	t.Helper()
	if RequirePeers() {
		t.Fatalf("peer required (DICOMGATE_REQUIRE_PEERS=1) but missing: "+format, args...)
	}
	t.Skipf("peer missing: "+format, args...)
}

// LookPath returns the path of the executable prog, or skips the test (fails
// it when RequirePeers) when prog is not on PATH.
func LookPath(t testing.TB, prog string) string {
	t.Helper()
	p, err := exec.LookPath(prog)
	if err != nil {
		MissingPeer(t, "%s not on PATH: %v", prog, err)
	}
	return p
}

// RequireFile returns path when a file or directory exists there, or skips
// the test (fails it when RequirePeers).
func RequireFile(t testing.TB, path string) string {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		MissingPeer(t, "%v", err)
	}
	return path
}

// PydicomFile returns the path of a file of pydicom's test files, or skips
// the test (fails it when RequirePeers) when it is not installed.
func PydicomFile(t testing.TB, name string) string {
	t.Helper()
	return RequireFile(t, filepath.Join(PydicomTestFiles, name))
}

// SuyashTestdata returns the testdata directory of SuyashModule, a
// dependency of dicomgate and so in the module cache, or skips the test
// (fails it when RequirePeers).
func SuyashTestdata(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		MissingPeer(t, "go env GOMODCACHE: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), SuyashModule, "testdata")
	if _, err := os.Stat(dir); err == nil {
		return dir
	}
	// go list -m knows where the module is when the cache is laid out
	// otherwise (GOFLAGS, a replace directive).
	path, _, _ := strings.Cut(SuyashModule, "@")
	out, err = exec.Command("go", "list", "-m", "-json", path).Output()
	var mod struct{ Dir string }
	if err != nil || json.Unmarshal(out, &mod) != nil || mod.Dir == "" {
		MissingPeer(t, "%s testdata: not in %s, go list -m: %v", SuyashModule, dir, err)
	}
	return RequireFile(t, filepath.Join(mod.Dir, "testdata"))
}

// SuyashFile returns the path of a file of SuyashModule's testdata, or skips
// the test (fails it when RequirePeers).
func SuyashFile(t testing.TB, name string) string {
	t.Helper()
	return RequireFile(t, filepath.Join(SuyashTestdata(t), name))
}

// Command returns the command running prog with args and TCP_NODELAY=1 in
// its environment: DCMTK programs read it to disable Nagle's algorithm, and
// dicomgate's standards set it for every DCMTK process.
func Command(prog string, args ...string) *exec.Cmd {
	cmd := exec.Command(prog, args...)
	cmd.Env = append(os.Environ(), "TCP_NODELAY=1")
	return cmd
}

// Run runs prog with args as Command does and fails the test, with the
// program's output, when it does not succeed.
func Run(t testing.TB, prog string, args ...string) {
	t.Helper()
	if out, err := Command(prog, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", prog, strings.Join(args, " "), err, out)
	}
}

// CorpusFiles returns the *.dcm files of SuyashModule's testdata and of
// pydicom's test files, or skips the test (fails it when RequirePeers)
// when either corpus is absent.
func CorpusFiles(t testing.TB) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(SuyashTestdata(t), "*.dcm"))
	more, _ := filepath.Glob(filepath.Join(RequireFile(t, PydicomTestFiles), "*.dcm"))
	if len(files) == 0 || len(more) == 0 {
		MissingPeer(t, "DICOM corpus: %d suyashkumar files, %d pydicom files", len(files), len(more))
	}
	return append(files, more...)
}
