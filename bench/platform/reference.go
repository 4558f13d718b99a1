package main

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The reference uploader is the least an upload that meets the issue's
// rules can do, written without the platform: the client hashes each 4 MiB
// chunk (SHA-256) and PUTs it over loopback HTTP, three in flight; the
// server, another process, hashes the chunk while reading it in 1 MiB
// pieces, writes the pieces with O_DIRECT at the chunk's offset and
// fdatasyncs before answering. No XML API, no authentication, no database,
// no retries. Its speed in the same run is the ceiling the machine puts on
// the platform's upload; the platform's figure is reported as a share of it.

const (
	refChunk = 4 << 20
	refPiece = 1 << 20
	refAlign = 4096
)

// refServe is the reference server process: it prints "READY url" and
// serves until stdin closes.
func refServe() error {
	dir, err := os.MkdirTemp(serverDir, "reference-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "blob")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|syscall.O_DIRECT, 0o600)
	if errors.Is(err, syscall.EINVAL) { // no O_DIRECT here (tmpfs): the page cache
		f, err = os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	pieces := sync.Pool{New: func() any {
		b := make([]byte, refPiece+refAlign)
		skip := (refAlign - int(uintptr(unsafe.Pointer(&b[0]))%refAlign)) % refAlign
		b = b[skip : skip+refPiece]
		return &b
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		off, err := strconv.ParseInt(r.URL.Query().Get("off"), 10, 64)
		if err != nil || off%refAlign != 0 {
			http.Error(w, "bad offset", http.StatusBadRequest)
			return
		}
		bp := pieces.Get().(*[]byte)
		defer pieces.Put(bp)
		h := sha256.New()
		for pos := off; ; {
			n, rerr := io.ReadFull(r.Body, *bp)
			h.Write((*bp)[:n])
			if n > 0 {
				// A short last piece is padded to the alignment; the
				// benchmark's sizes are whole chunks.
				padded := (n + refAlign - 1) / refAlign * refAlign
				if _, err := f.WriteAt((*bp)[:padded], pos); err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				pos += int64(n)
			}
			if rerr != nil {
				break
			}
		}
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "%x", h.Sum(nil))
	})}
	go srv.Serve(ln)
	defer srv.Close()
	fmt.Printf("READY http://%s\n", ln.Addr())
	io.Copy(io.Discard, os.Stdin)
	return nil
}

// refUpload runs the reference client against a reference server process
// and returns its upload speed in MB/s and the CPU seconds per GB of both
// processes.
func refUpload(size int64) (mbs, clientCPU, serverCPU float64, err error) {
	f, spid, stop, err := startChild("refserver")
	if err != nil {
		return 0, 0, 0, err
	}
	defer stop()
	if len(f) != 1 {
		return 0, 0, 0, fmt.Errorf("reference server said READY %q", f)
	}
	url := f[0]
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 3}}
	src := newSource(size)
	var mu sync.Mutex // guards src and next
	next := int64(0)
	pid := strconv.Itoa(spid)
	cpu0, scpu0 := cpuTime("self"), cpuTime(pid)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, refChunk)
			for {
				mu.Lock()
				off := next
				n, rerr := io.ReadFull(src, buf)
				next += int64(n)
				mu.Unlock()
				if n == 0 {
					return
				}
				want := sha256.Sum256(buf[:n])
				resp, err := hc.Post(url+"/?off="+strconv.FormatInt(off, 10), "application/octet-stream", bytes.NewReader(buf[:n]))
				if err != nil {
					errs <- err
					return
				}
				got, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || string(got) != fmt.Sprintf("%x", want) {
					errs <- fmt.Errorf("reference chunk at %d: HTTP %d %s", off, resp.StatusCode, got)
					return
				}
				if rerr != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	select {
	case err := <-errs:
		return 0, 0, 0, err
	default:
	}
	gb := float64(size) / 1e9
	return float64(size) / el.Seconds() / 1e6, (cpuTime("self") - cpu0) / gb, (cpuTime(pid) - scpu0) / gb, nil
}
