package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"dicomgate/bench/ctstudy"
	"dicomgate/dimse/dataset"
	"dicomgate/dimse/dicomtest"
)

// These tests run the real dicomgate binary (dicomgateBinary).

var listenerAddr = regexp.MustCompile(`msg="dicom listener" addr=(\S+)`)

// startServe runs `dicomgate serve` on a free loopback port and returns its
// DICOM address and data directory.
func startServe(t *testing.T, extra ...string) (string, string) {
	t.Helper()
	return startServeIn(t, t.TempDir(), extra...)
}

// startServeIn is startServe on a given data directory.
func startServeIn(t *testing.T, data string, extra ...string) (string, string) {
	t.Helper()
	args := append([]string{"serve", "--data", data, "--dicom-addr", "127.0.0.1:0", "--platform-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}, extra...)
	cmd := exec.Command(dicomgateBinary(t), args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve exited with %v", err)
			}
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("serve did not stop on SIGTERM")
		}
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			if m := listenerAddr.FindStringSubmatch(sc.Text()); m != nil && !sent {
				found <- m[1]
				sent = true
			}
		}
	}()
	select {
	case addr := <-found:
		return addr, data
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not report its listener")
	}
	return "", ""
}

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(dicomgateBinary(t), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func TestEchoCommand(t *testing.T) {
	addr, _ := startServe(t)
	if out, err := run(t, "echo", "--aec", "DICOMGATE", addr); err != nil || !strings.Contains(out, "success") {
		t.Fatalf("echo: %v\n%s", err, out)
	}
	if out, err := run(t, "echo", "--aec", "NOBODY", addr); err == nil {
		t.Fatalf("echo to a wrong called AE succeeded:\n%s", out)
	}
}

// goodCorpus returns corpus files dicomgate send can send: Part 10 files
// with SOP UIDs and a well-formed data set.
func goodCorpus(t *testing.T) []string {
	t.Helper()
	var good []string
	for _, f := range dicomtest.CorpusFiles(t) {
		if _, err := scanFile(f); err != nil {
			continue
		}
		if _, err := walkFile(f); err != nil {
			continue
		}
		good = append(good, f)
	}
	return good
}

func walkFile(path string) (dataset.Summary, error) {
	f, err := os.Open(path)
	if err != nil {
		return dataset.Summary{}, err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	m, _, err := dataset.ReadFileMeta(br)
	if err != nil {
		return dataset.Summary{}, err
	}
	ts, _ := dataset.LookupTransferSyntax(m.TransferSyntaxUID)
	return dataset.Walk(br, ts.Encoding)
}

func dataSetOf(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	if _, _, err := dataset.ReadFileMeta(br); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(br)
	return b
}

// originals maps each SOP Instance UID to the data sets of the files
// carrying it (the corpus repeats some UIDs; the spool keeps the first).
func originals(t *testing.T, files []string) map[string][][]byte {
	t.Helper()
	out := map[string][][]byte{}
	for _, f := range files {
		sf, err := scanFile(f)
		if err != nil {
			t.Fatal(err)
		}
		ds := dataSetOf(t, f)
		if len(ds)%2 == 1 && sf.transferSyntax == dataset.DeflatedExplicitVRLittleEndian {
			ds = append(ds, 0) // PS3.5 A.5 pad added by the sender
		}
		out[sf.sopInst] = append(out[sf.sopInst], ds)
	}
	return out
}

func sentCount(t *testing.T, out string) (int, int) {
	t.Helper()
	m := regexp.MustCompile(`sent (\d+), failed (\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no summary in:\n%s", out)
	}
	s, _ := strconv.Atoi(m[1])
	f, _ := strconv.Atoi(m[2])
	return s, f
}

// TestSendToServe sends the corpus with `dicomgate send` to `dicomgate
// serve`, both real processes: every stored data set is the original, byte
// for byte. The gateway refuses (C000) the instances that cannot join a
// study (no Study Instance UID, a header its parser cannot read), so the
// sender keeps them; nothing it refused is kept.
func TestSendToServe(t *testing.T) {
	// The corpus files the gateway refuses, and why.
	cannotJoin := map[string]string{
		"UN_sequence.dcm":          "its header parser does not read a sequence sent as UN",
		"no_meta_group_length.dcm": "no Study Instance UID",
		"priv_SQ.dcm":              "no Study Instance UID",
	}
	all := goodCorpus(t)
	var files, refused []string
	for _, f := range all {
		if _, ok := cannotJoin[filepath.Base(f)]; ok {
			refused = append(refused, f)
		} else {
			files = append(files, f)
		}
	}
	if len(refused) != len(cannotJoin) {
		t.Fatalf("corpus holds %d of the %d files expected to be refused", len(refused), len(cannotJoin))
	}
	addr, data := startServe(t, "--allow-aet", "SENDER,OTHER@127.0.0.1")
	out, err := run(t, append([]string{"send", "--aet", "SENDER", "--aec", "DICOMGATE", "--parallel", "3", addr}, all...)...)
	if err == nil {
		t.Fatalf("send exited 0 though the gateway refuses %d files\n%s", len(refused), out)
	}
	if sent, failed := sentCount(t, out); sent != len(files) || failed != len(refused) {
		t.Fatalf("sent %d failed %d; want %d and %d\n%s", sent, failed, len(files), len(refused), out)
	}
	if n := strings.Count(out, "status C000: cannot index"); n != len(refused) {
		t.Fatalf("%d refusals say why, want %d\n%s", n, len(refused), out)
	}
	want := originals(t, files)
	stored, _ := filepath.Glob(filepath.Join(data, "spool", "instances", "*.dcm"))
	if len(stored) != len(want) {
		t.Fatalf("%d instances stored, %d distinct UIDs sent", len(stored), len(want))
	}
	for _, p := range stored {
		uid := strings.TrimSuffix(filepath.Base(p), ".dcm")
		got := dataSetOf(t, p)
		ok := false
		for _, w := range want[uid] {
			ok = ok || bytes.Equal(got, w)
		}
		if !ok {
			t.Errorf("%s: stored data set is not an original", uid)
		}
	}
	if tmp, _ := filepath.Glob(filepath.Join(data, "spool", "tmp", "*")); len(tmp) != 0 {
		t.Fatalf("temporaries left: %v", tmp)
	}
	// A calling AE outside the allow-list is rejected: send fails.
	out, err = run(t, "send", "--aet", "STRANGER", "--aec", "DICOMGATE", addr, files[0])
	if err == nil || !strings.Contains(out, "failed 1") {
		t.Fatalf("send from an unknown AE: %v\n%s", err, out)
	}
}

// TestSendReportsFailures: a directory holding a broken file makes send
// exit non-zero, the rest is sent.
func TestSendReportsFailures(t *testing.T) {
	addr, _ := startServe(t)
	dir := t.TempDir()
	s, err := ctstudy.WriteSeries(filepath.Join(dir, "series"), ctstudy.Options{Instances: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "series", "broken.dcm"), []byte("not dicom"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "send", "--aec", "DICOMGATE", addr, dir)
	if err == nil {
		t.Fatalf("send exited 0 with a broken file:\n%s", out)
	}
	if sent, failed := sentCount(t, out); sent != len(s.Files) || failed != 1 {
		t.Fatalf("sent %d failed %d\n%s", sent, failed, out)
	}
}

// TestSendToStorescp sends with `dicomgate send` to DCMTK storescp
// (bit-preserving): storescp receives the original data sets.
func TestSendToStorescp(t *testing.T) {
	bin := dicomtest.LookPath(t, "storescp")
	dir := t.TempDir()
	s, err := ctstudy.WriteSeries(filepath.Join(dir, "in"), ctstudy.Options{Instances: 3})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	outDir := filepath.Join(dir, "out")
	if err := os.Mkdir(outDir, 0o755); err != nil {
		t.Fatal(err)
	}
	scp := dicomtest.Command(bin, "-aet", "STORESCP", "+B", "-od", outDir, strconv.Itoa(port))
	if err := scp.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = scp.Process.Kill(); _ = scp.Wait() }()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("storescp did not start")
		}
	}
	out, err := run(t, "send", "--aec", "STORESCP", addr, filepath.Join(dir, "in"))
	if err != nil {
		t.Fatalf("send: %v\n%s", err, out)
	}
	for i, f := range s.Files {
		got := dataSetOf(t, filepath.Join(outDir, "CT."+s.SOPInstanceUIDs[i]))
		if !bytes.Equal(got, dataSetOf(t, f)) {
			t.Errorf("%s: storescp received another data set", f)
		}
	}
}
