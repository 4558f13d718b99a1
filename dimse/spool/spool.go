// Package spool durably stores received DICOM instances as DICOM PS3.10
// (Part 10) files: a file meta information header built from the C-STORE
// command and the negotiated transfer syntax, followed by the data set bytes
// exactly as received.
//
// Put streams the data set through a bounded buffer into a file without a
// name (O_TMPFILE; a named file under tmp/ where the kernel lacks it) while
// dataset.Walk checks its structure on the same bytes; nothing is ever held
// in memory whole. Only when the data set is complete and consistent is its
// data written back, the file linked into place under its SOP Instance UID,
// and the file and the directory synced (directory syncs of concurrent Puts
// are group-committed); only then does Put return success. An aborted, dropped or rejected
// transfer leaves nothing behind: an anonymous file vanishes with its
// descriptor, even on a crash, and named temporaries are removed (by Open
// after a crash).
//
// Duplicates: the first durable copy of a SOP Instance UID is kept. A later
// instance with the same UID is received fully, validated, and then
// discarded; Put reports it with Stored.Duplicate set and no error, so the
// C-STORE is acknowledged with success (the behaviour of Orthanc's default
// configuration). The link(2) that publishes a file fails if the name
// exists, so two concurrent copies cannot overwrite each other.
package spool

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"dicomgate/dimse/dataset"
)

// Errors of Put besides I/O errors (a full disk surfaces as syscall.ENOSPC).
var (
	// ErrMismatch reports a data set whose SOP Class or SOP Instance UID
	// contradicts the command (status A900).
	ErrMismatch = errors.New("spool: data set does not match the command")
	// ErrInvalid reports an unusable request: a malformed UID or an unknown
	// transfer syntax (status C000).
	ErrInvalid = errors.New("spool: invalid instance")
	// ErrFull reports that the spool refuses more data (status A700).
	ErrFull = errors.New("spool: out of space")
)

// Instance describes an incoming instance: the facts of its C-STORE request
// and association.
type Instance struct {
	SOPClassUID       string // Affected SOP Class UID of the command
	SOPInstanceUID    string // Affected SOP Instance UID of the command
	TransferSyntaxUID string // transfer syntax of the presentation context
	CallingAETitle    string // written as Source Application Entity Title
}

// Stored describes a durably stored instance.
type Stored struct {
	Path              string // the Part 10 file
	SOPClassUID       string
	SOPInstanceUID    string
	TransferSyntaxUID string
	StudyInstanceUID  string // from the data set, empty when absent
	SeriesInstanceUID string // from the data set, empty when absent
	CallingAETitle    string
	Size              int64 // bytes of the file written by this Put
	// Duplicate is set when an instance with this SOP Instance UID was
	// already stored; Path is then the earlier file, which is kept.
	Duplicate bool
}

// Spool is a directory of received instances. It is safe for concurrent use.
type Spool struct {
	dir, tmp, instances string
	implClassUID        string
	implVersion         string
	dirSync             groupSync
	// bufSize is the write buffer of each Put.
	bufSize int
	// MinFree is a reserve: Put refuses an instance (ErrFull, status A700)
	// while the file system has fewer free bytes, so the disk never fills
	// up completely under the spool. Zero disables the check.
	MinFree int64
}

// Open opens (creating it if needed) the spool rooted at dir. Instances live
// in dir/instances/<SOP Instance UID>.dcm; dir/tmp holds transfers in
// progress and is emptied here. implClassUID and implVersion go into every
// file meta header.
func Open(dir, implClassUID, implVersion string) (*Spool, error) {
	s := &Spool{dir: dir, tmp: filepath.Join(dir, "tmp"), instances: filepath.Join(dir, "instances"),
		implClassUID: implClassUID, implVersion: implVersion, bufSize: 256 * 1024}
	for _, d := range []string{s.tmp, s.instances} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return nil, fmt.Errorf("spool: %w", err)
		}
	}
	stale, err := filepath.Glob(filepath.Join(s.tmp, "*.part"))
	if err != nil {
		return nil, err
	}
	for _, f := range stale {
		_ = os.Remove(f)
	}
	s.dirSync.dir = s.instances
	return s, nil
}

// Dir returns the directory holding stored instances.
func (s *Spool) Dir() string { return s.instances }

// PathOf returns where the instance with the given SOP Instance UID is (or
// would be) stored.
func (s *Spool) PathOf(sopInstanceUID string) string {
	return filepath.Join(s.instances, sopInstanceUID+".dcm")
}

// validUID checks the UI syntax of PS3.5 9.1, which also makes it a safe
// file name.
func validUID(u string) bool {
	if len(u) == 0 || len(u) > 64 || u[0] == '.' || u[len(u)-1] == '.' || strings.Contains(u, "..") {
		return false
	}
	for i := 0; i < len(u); i++ {
		if (u[i] < '0' || u[i] > '9') && u[i] != '.' {
			return false
		}
	}
	return true
}

// Put reads one data set from r and stores it durably; when it returns nil
// the instance is on disk and survives a crash. It reads r to its end unless
// reading fails. Errors: ErrInvalid, ErrMismatch, dataset.ErrMalformed, I/O
// errors (ENOSPC for a full disk) and r's own errors, all wrapped.
func (s *Spool) Put(ctx context.Context, in Instance, r io.Reader) (st Stored, err error) {
	if !validUID(in.SOPInstanceUID) || !validUID(in.SOPClassUID) {
		return st, fmt.Errorf("%w: SOP class %q instance %q", ErrInvalid, in.SOPClassUID, in.SOPInstanceUID)
	}
	ts, ok := dataset.LookupTransferSyntax(in.TransferSyntaxUID)
	if !ok {
		return st, fmt.Errorf("%w: unknown transfer syntax %q", ErrInvalid, in.TransferSyntaxUID)
	}
	if s.MinFree > 0 {
		var fs syscall.Statfs_t
		if err := syscall.Statfs(s.tmp, &fs); err == nil && int64(fs.Bavail)*int64(fs.Bsize) < s.MinFree {
			return st, fmt.Errorf("%w: less than %d bytes free", ErrFull, s.MinFree)
		}
	}
	f, tmpName, err := s.create()
	if err != nil {
		return st, fmt.Errorf("spool: %w", err)
	}
	defer func() {
		if f != nil {
			_ = f.Close()
		}
		if tmpName != "" {
			_ = os.Remove(tmpName)
		}
	}()
	meta := dataset.AppendFileMeta(nil, &dataset.FileMeta{
		MediaStorageSOPClassUID:    in.SOPClassUID,
		MediaStorageSOPInstanceUID: in.SOPInstanceUID,
		TransferSyntaxUID:          in.TransferSyntaxUID,
		ImplementationClassUID:     s.implClassUID,
		ImplementationVersionName:  s.implVersion,
		SourceAETitle:              in.CallingAETitle,
	})
	bw := bufio.NewWriterSize(&writeBehind{f: f}, s.bufSize)
	if _, err := bw.Write(meta); err != nil {
		return st, fmt.Errorf("spool: %w", err)
	}
	cw := &countWriter{w: bw}
	tee := &teeReader{r: r, w: cw}
	br := bufio.NewReaderSize(tee, 64*1024)
	sum, werr := dataset.Walk(br, ts.Encoding)
	if werr == nil {
		// Walk stops at the end of the data set; for a deflated one the
		// raw stream may still hold padding: keep it, it was received.
		_, werr = io.Copy(io.Discard, br)
	}
	if tee.werr != nil {
		return st, fmt.Errorf("spool: writing %s: %w", in.SOPInstanceUID, tee.werr)
	}
	if werr != nil {
		return st, werr
	}
	if sum.SOPClassUID != "" && sum.SOPClassUID != in.SOPClassUID {
		return st, fmt.Errorf("%w: SOP Class UID %s in the data set, %s in the command", ErrMismatch, sum.SOPClassUID, in.SOPClassUID)
	}
	if sum.SOPInstanceUID != "" && sum.SOPInstanceUID != in.SOPInstanceUID {
		return st, fmt.Errorf("%w: SOP Instance UID %s in the data set, %s in the command", ErrMismatch, sum.SOPInstanceUID, in.SOPInstanceUID)
	}
	if err := ctx.Err(); err != nil {
		return st, err
	}
	if err := bw.Flush(); err != nil {
		return st, fmt.Errorf("spool: writing %s: %w", in.SOPInstanceUID, err)
	}
	// Durability order: the data first, then the name. Waiting for the
	// data's writeback (sync_file_range) before the link means no journal
	// commit can ever hold the name of a file whose data is not on the
	// device; the fsync after the link then makes data, inode and name
	// durable with one journal commit (on ext4/xfs it carries the link too;
	// the directory fsync below stays for POSIX and is then nearly free).
	if err := unix.SyncFileRange(int(f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER); err != nil {
		// No sync_file_range (not Linux, odd file system): sync fully
		// before the name exists.
		if err := f.Sync(); err != nil {
			return st, fmt.Errorf("spool: syncing %s: %w", in.SOPInstanceUID, err)
		}
	}
	st = Stored{Path: s.PathOf(in.SOPInstanceUID), SOPClassUID: in.SOPClassUID, SOPInstanceUID: in.SOPInstanceUID,
		TransferSyntaxUID: in.TransferSyntaxUID, StudyInstanceUID: sum.StudyInstanceUID, SeriesInstanceUID: sum.SeriesInstanceUID,
		CallingAETitle: in.CallingAETitle, Size: int64(len(meta)) + cw.n}
	if err := s.publish(f, tmpName, st.Path); err != nil {
		if !errors.Is(err, os.ErrExist) {
			return Stored{}, fmt.Errorf("spool: %w", err)
		}
		st.Duplicate = true
	} else if err := f.Sync(); err != nil {
		// Visible but not durable: take the name back, report failure.
		_ = os.Remove(st.Path)
		return Stored{}, fmt.Errorf("spool: syncing %s: %w", in.SOPInstanceUID, err)
	}
	if tmpName != "" {
		_ = os.Remove(tmpName)
		tmpName = ""
	}
	_ = f.Close()
	f = nil
	// The name is durable only once the directory is: sync it, together
	// with every other Put that linked meanwhile. A duplicate syncs too, as
	// the copy it defers to may have been linked an instant ago.
	if err := s.dirSync.sync(); err != nil {
		return Stored{}, fmt.Errorf("spool: syncing directory: %w", err)
	}
	return st, nil
}

// create opens the file an instance is received into. Where the kernel
// supports it, the file is anonymous (O_TMPFILE in the instances directory):
// it has no name until publish links it, so a transfer cut short or a crash
// leaves nothing behind at all. Otherwise it is a named temporary file
// under tmp/, which Open clears.
func (s *Spool) create() (*os.File, string, error) {
	fd, err := unix.Open(s.instances, unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o640)
	if err == nil {
		return os.NewFile(uintptr(fd), "(anonymous)"), "", nil
	}
	f, err := os.CreateTemp(s.tmp, "*.part")
	if err != nil {
		return nil, "", err
	}
	return f, f.Name(), nil
}

// publish gives the synced file its final name; like link(2) it fails with
// an error matching os.ErrExist when the name is taken, which is how
// duplicates are detected without a race.
func (s *Spool) publish(f *os.File, tmpName, final string) error {
	if tmpName != "" {
		return os.Link(tmpName, final)
	}
	src := fmt.Sprintf("/proc/self/fd/%d", f.Fd())
	if err := unix.Linkat(unix.AT_FDCWD, src, unix.AT_FDCWD, final, unix.AT_SYMLINK_FOLLOW); err != nil {
		return &os.LinkError{Op: "linkat", Old: src, New: final, Err: err}
	}
	return nil
}

// teeReader passes what it reads to w, remembering a write failure apart
// from read failures (a full disk is not the peer's fault).
type teeReader struct {
	r    io.Reader
	w    io.Writer
	werr error
}

func (t *teeReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 && t.werr == nil {
		if _, werr := t.w.Write(p[:n]); werr != nil {
			t.werr = werr
		}
	}
	return n, err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// writeBehind starts the writeback of every 256 KiB as soon as it is
// written (sync_file_range SYNC_FILE_RANGE_WRITE, which does not wait), so
// the disk writes while the network still delivers the rest, the final wait
// for the data is short, and dirty pages of a large instance do not pile up.
type writeBehind struct {
	f       *os.File
	off     int64
	started int64
}

const writeBehindChunk = 256 << 10

func (w *writeBehind) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.off += int64(n)
	if w.off-w.started >= writeBehindChunk {
		// Advisory: an error here only means the final fsync does the work.
		_ = unix.SyncFileRange(int(w.f.Fd()), w.started, w.off-w.started, unix.SYNC_FILE_RANGE_WRITE)
		w.started = w.off
	}
	return n, err
}

// groupSync syncs one directory on behalf of many goroutines: a caller waits
// for a sync that started after its call, and one sync serves everyone who
// asked while the previous one ran (group commit).
type groupSync struct {
	dir       string
	mu        sync.Mutex
	cond      *sync.Cond
	requested uint64
	completed uint64
	running   bool
	lastErr   error
}

func (g *groupSync) sync() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cond == nil {
		g.cond = sync.NewCond(&g.mu)
	}
	g.requested++
	mine := g.requested
	for g.completed < mine {
		if g.running {
			g.cond.Wait()
			continue
		}
		g.running = true
		target := g.requested
		g.mu.Unlock()
		err := syncDir(g.dir)
		g.mu.Lock()
		g.running = false
		g.completed = target
		g.lastErr = err
		g.cond.Broadcast()
	}
	return g.lastErr
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
