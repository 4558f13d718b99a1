package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"dicomgate/dimse"
	"dicomgate/dimse/dataset"
)

// sendCmd sends files with C-STORE.
type sendCmd struct {
	AET      string   `name:"aet" default:"DICOMGATE" help:"Calling AE title."`
	AEC      string   `name:"aec" default:"ANY-SCP" help:"Called AE title."`
	Parallel int      `name:"parallel" default:"1" help:"Associations used in parallel."`
	Addr     string   `arg:"" name:"host:port" help:"Peer address."`
	Paths    []string `arg:"" name:"file|dir" help:"DICOM Part 10 files, or directories searched recursively."`
}

// sendFile is one Part 10 file to send: what its meta header says and where
// its data set starts.
type sendFile struct {
	path                 string
	sopClass, sopInst    string
	transferSyntax       string
	dataOffset, dataSize int64
}

// scanFile reads only the preamble and file meta information.
func scanFile(path string) (sendFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return sendFile{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return sendFile{}, err
	}
	br := bufio.NewReaderSize(f, 8192)
	m, off, err := dataset.ReadFileMeta(br)
	if err != nil {
		return sendFile{}, err
	}
	ts, ok := dataset.LookupTransferSyntax(m.TransferSyntaxUID)
	if !ok {
		return sendFile{}, fmt.Errorf("unknown transfer syntax %s", m.TransferSyntaxUID)
	}
	// The receiver checks the command against the data set, so the SOP
	// UIDs come from the data set's own (0008,0016)/(0008,0018), read
	// without going further; the meta header is the fallback.
	id, err := dataset.Identify(br, ts.Encoding)
	if err != nil {
		return sendFile{}, err
	}
	sf := sendFile{path: path, sopClass: id.SOPClassUID, sopInst: id.SOPInstanceUID,
		transferSyntax: m.TransferSyntaxUID, dataOffset: off, dataSize: st.Size() - off}
	if sf.sopClass == "" {
		sf.sopClass = m.MediaStorageSOPClassUID
	}
	if sf.sopInst == "" {
		sf.sopInst = m.MediaStorageSOPInstanceUID
	}
	if sf.sopClass == "" || sf.sopInst == "" {
		return sendFile{}, fmt.Errorf("%w: no SOP Class or Instance UID", dataset.ErrMalformed)
	}
	return sf, nil
}

func collectFiles(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		err := filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type().IsRegular() {
				out = append(out, path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Strings(out)
	return out, nil
}

// sendSummary counts a send run.
type sendSummary struct {
	sent, failed atomic.Int64
	bytes        atomic.Int64
}

// Run scans the files, sends them over --parallel associations and prints
// a summary; it fails when any file failed.
func (c *sendCmd) Run(rc *runContext) error {
	start := time.Now()
	paths, err := collectFiles(c.Paths)
	if err != nil {
		return err
	}
	var sum sendSummary
	var files []sendFile
	var total int64
	for _, p := range paths {
		sf, err := scanFile(p)
		if err != nil {
			rc.log.Warn("skipping file", "file", p, "err", err)
			sum.failed.Add(1)
			continue
		}
		files = append(files, sf)
		total += sf.dataSize
	}
	var bar *progressbar.ProgressBar
	if term.IsTerminal(int(os.Stderr.Fd())) {
		bar = progressbar.DefaultBytes(total, "sending")
	}
	par := max(c.Parallel, 1)
	jobs := make(chan []sendFile)
	var wg sync.WaitGroup
	for range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for batch := range jobs {
				c.sendBatch(rc, batch, &sum, bar)
			}
		}()
	}
	// Each worker takes an equal share, itself split into associations of
	// at most 128 distinct (SOP class, transfer syntax) contexts.
	for i := range par {
		var share []sendFile
		for j := i; j < len(files); j += par {
			share = append(share, files[j])
		}
		for _, b := range splitByContexts(share, 128) {
			jobs <- b
		}
	}
	close(jobs)
	wg.Wait()
	if bar != nil {
		_ = bar.Finish()
		fmt.Fprintln(os.Stderr)
	}
	el := time.Since(start)
	mb := float64(sum.bytes.Load()) / 1e6
	fmt.Printf("sent %d, failed %d, %.1f MB in %v (%.1f MB/s)\n", sum.sent.Load(), sum.failed.Load(), mb,
		el.Round(time.Millisecond), mb/el.Seconds())
	if n := sum.failed.Load(); n > 0 {
		return fmt.Errorf("%d of %d files failed", n, len(paths))
	}
	return nil
}

func splitByContexts(files []sendFile, max int) [][]sendFile {
	var out [][]sendFile
	var cur []sendFile
	seen := map[[2]string]bool{}
	for _, f := range files {
		k := [2]string{f.sopClass, f.transferSyntax}
		if !seen[k] && len(seen) == max {
			out = append(out, cur)
			cur, seen = nil, map[[2]string]bool{}
		}
		seen[k] = true
		cur = append(cur, f)
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

func (c *sendCmd) sendBatch(rc *runContext, batch []sendFile, sum *sendSummary, bar *progressbar.ProgressBar) {
	var pairs [][2]string
	seen := map[[2]string]bool{}
	for _, f := range batch {
		k := [2]string{f.sopClass, f.transferSyntax}
		if !seen[k] {
			seen[k] = true
			pairs = append(pairs, k)
		}
	}
	cl, err := dimse.Dial(rc.ctx, c.Addr, dimse.ClientConfig{CallingAETitle: c.AET, CalledAETitle: c.AEC}, dimse.ProposalsFor(pairs))
	if err != nil {
		rc.log.Error("association failed", "addr", c.Addr, "err", err)
		sum.failed.Add(int64(len(batch)))
		return
	}
	for i, f := range batch {
		err := sendOne(rc.ctx, cl, f, bar)
		if err != nil {
			rc.log.Warn("C-STORE failed", "file", f.path, "err", err)
			sum.failed.Add(1)
			var se *dimse.StatusError
			if !errors.As(err, &se) && !errors.Is(err, dimse.ErrNoContext) && !errors.Is(err, fs.ErrNotExist) {
				// The association is gone: count the rest as failed.
				sum.failed.Add(int64(len(batch) - i - 1))
				cl.Abort()
				return
			}
			continue
		}
		sum.sent.Add(1)
		sum.bytes.Add(f.dataSize)
	}
	if err := cl.Release(); err != nil {
		rc.log.Warn("release failed", "err", err)
	}
}

func sendOne(ctx context.Context, cl *dimse.Client, f sendFile, bar *progressbar.ProgressBar) error {
	fh, err := os.Open(f.path)
	if err != nil {
		return err
	}
	defer fh.Close()
	var r io.Reader = io.NewSectionReader(fh, f.dataOffset, f.dataSize)
	if bar != nil {
		pr := progressbar.NewReader(r, bar)
		r = &pr
	}
	return cl.Store(ctx, f.sopClass, f.sopInst, f.transferSyntax, r, f.dataSize)
}
