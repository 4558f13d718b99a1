// Package spool durably stores received DICOM instances as DICOM PS3.10
// (Part 10) files: a file meta information header built from the C-STORE
// command and the negotiated transfer syntax, followed by the data set bytes
// exactly as received.
//
// Put streams the data set through a bounded buffer into a file without a
// name (O_TMPFILE; a named file under tmp/ where the kernel lacks it) while
// dataset.Walk checks its structure on the same bytes; nothing is ever held
// in memory whole. Writeback starts while the data still arrives. Only when
// the data set is complete and consistent is the file linked into place
// under its SOP Instance UID and made durable: the file and its directory
// are synced, and only then does Put return success. An aborted, dropped or
// rejected transfer leaves nothing behind: an anonymous file vanishes with
// its descriptor, even on a crash, and named temporaries are removed (by
// Open after a crash).
//
// Every file carries a mark, an extended attribute with its size and
// CRC-32C. It lets the two syncs run at the same time (one device round
// trip instead of two in a row, directory syncs of concurrent Puts
// group-committed): a crash between them may leave a name whose data never
// reached the disk, but such a file was never acknowledged, and Verify
// recognises it (ErrCorrupt). Where the file system has no extended
// attributes, Put orders the syncs instead: data first, then the name.
//
// Duplicates: the first durable copy of a SOP Instance UID is kept. A later
// instance with the same UID is received fully, validated, and then
// discarded; Put reports it with Stored.Duplicate set and no error, so the
// C-STORE is acknowledged with success (the behaviour of Orthanc's default
// configuration). The link(2) that publishes a file fails if the name
// exists, so two concurrent copies cannot overwrite each other. An earlier
// copy that fails Verify (left by a crash, or unmarked from an older
// version) is not kept: the new copy replaces it atomically.
package spool

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"hash/crc32"

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
	// ErrNoMark reports a stored file without its size and checksum mark:
	// written by an older version, or its inode did not reach the disk
	// whole before a crash.
	ErrNoMark = errors.New("spool: file has no checksum mark")
	// ErrCorrupt reports a stored file whose size or checksum contradicts
	// its mark: its name reached the disk before a crash, its data did not.
	ErrCorrupt = errors.New("spool: file does not match its checksum mark")
)

// Instance describes an incoming instance: the facts of its C-STORE request
// and association.
type Instance struct {
	SOPClassUID       string // Affected SOP Class UID of the command
	SOPInstanceUID    string // Affected SOP Instance UID of the command
	TransferSyntaxUID string // transfer syntax of the presentation context
	CallingAETitle    string // written as Source Application Entity Title
	// Published, when set, is called once the file is complete and has its
	// name, while Put is still making it durable (not for a duplicate). A
	// consumer may start reading the file then (it is in the page cache)
	// to overlap its own work with the sync, but must act on what it read
	// only if Put succeeds. It runs on Put's goroutine and must not block.
	Published func(Stored)
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
	// PixelData reports that the data set has Pixel Data (or Float or
	// Double Float Pixel Data) after the header.
	PixelData bool
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
	// replaceMu serialises replacing an unverified earlier copy.
	replaceMu sync.Mutex
	// spare holds anonymous files opened ahead (create, refill).
	spare     chan *os.File
	refilling atomic.Bool
	spareMu   sync.Mutex // guards closed and adding to spare
	closed    bool
	refillers sync.WaitGroup
	// writers and readers are the buffers a Put streams through, kept for
	// the next Put: fresh ones would be 320 KiB of garbage per instance.
	writers, readers sync.Pool
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
		implClassUID: implClassUID, implVersion: implVersion}
	s.writers.New = func() any { return bufio.NewWriterSize(nil, 256<<10) }
	s.readers.New = func() any { return bufio.NewReaderSize(nil, 64<<10) }
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
	s.spare = make(chan *os.File, spareFiles)
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
	// A placeholder mark from the start: should a crash ever leave this
	// inode under a name, it then carries a mark that cannot match
	// (ErrCorrupt), unlike files of older versions (ErrNoMark).
	_ = setMark(f, pendingSize, 0)
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
	bw := s.writers.Get().(*bufio.Writer)
	bw.Reset(&writeBehind{f: f})
	br := s.readers.Get().(*bufio.Reader)
	defer func() {
		// Neither buffer may keep the file or the network reader alive.
		bw.Reset(nil)
		br.Reset(nil)
		s.writers.Put(bw)
		s.readers.Put(br)
	}()
	if _, err := bw.Write(meta); err != nil {
		return st, fmt.Errorf("spool: %w", err)
	}
	cw := &countWriter{w: bw, crc: crc32.Checksum(meta, castagnoli)}
	tee := &teeReader{r: r, w: cw}
	br.Reset(tee)
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
	st = Stored{Path: s.PathOf(in.SOPInstanceUID), SOPClassUID: in.SOPClassUID, SOPInstanceUID: in.SOPInstanceUID,
		TransferSyntaxUID: in.TransferSyntaxUID, StudyInstanceUID: sum.StudyInstanceUID, SeriesInstanceUID: sum.SeriesInstanceUID,
		CallingAETitle: in.CallingAETitle, Size: int64(len(meta)) + cw.n, PixelData: sum.PixelData}
	// The file carries its own size and checksum (an extended attribute
	// written with its inode). With it, the name need not wait for the
	// data: the file and directory syncs run at the same time, and a name
	// that survived a crash without its data is recognised by Verify and
	// replaced (a duplicate) or dropped (gateway recovery). Without
	// extended attributes the order is enforced instead: data, then name.
	marked := setMark(f, st.Size, cw.crc) == nil
	if !marked {
		// No placeholder either: an unmarked file is one whose data was
		// synced before its name.
		_ = unix.Fremovexattr(int(f.Fd()), markAttr)
		// fdatasync: the data and the size needed to read it.
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			return Stored{}, fmt.Errorf("spool: syncing %s: %w", in.SOPInstanceUID, err)
		}
	}
	if err := s.publish(f, tmpName, st.Path); err != nil {
		if !errors.Is(err, os.ErrExist) {
			return Stored{}, fmt.Errorf("spool: %w", err)
		}
		replaced, rerr := s.replaceUnverified(f, tmpName, st.Path)
		if rerr != nil {
			return Stored{}, fmt.Errorf("spool: %w", rerr)
		}
		if !replaced {
			st.Duplicate = true
			// Path is the earlier copy: this data set's layout says
			// nothing about it.
			st.PixelData = false
		}
	}
	if !st.Duplicate {
		if in.Published != nil {
			in.Published(st)
		}
		if err := s.syncFileAndDir(f); err != nil {
			// Visible but maybe not durable. The name stays: a duplicate
			// Put may already be deferring to this file (and syncing it
			// itself before its own acknowledgement), so taking the name
			// back could lose an instance acknowledged to another sender.
			// The mark tells Verify and Recover whether the data is whole.
			return Stored{}, fmt.Errorf("spool: syncing %s: %w", in.SOPInstanceUID, err)
		}
	} else if err := s.syncEarlier(st.Path); err != nil {
		// The copy a duplicate defers to may have been linked an instant
		// ago, its syncs still running: it must be durable before this one
		// is acknowledged.
		return Stored{}, fmt.Errorf("spool: syncing %s: %w", in.SOPInstanceUID, err)
	}
	if tmpName != "" {
		_ = os.Remove(tmpName)
		tmpName = ""
	}
	_ = f.Close()
	f = nil
	return st, nil
}

// markAttr is the extended attribute holding a stored file's size (8
// bytes) and CRC-32C (4 bytes), little endian.
const markAttr = "user.dicomgate.crc32c"

// spareFiles is how many anonymous files a spool keeps open ahead.
const spareFiles = 2

// pendingSize is the size in the placeholder mark of a file being received.
const pendingSize = -1

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func setMark(f *os.File, size int64, crc uint32) error {
	var v [12]byte
	binary.LittleEndian.PutUint64(v[:8], uint64(size))
	binary.LittleEndian.PutUint32(v[8:], crc)
	return unix.Fsetxattr(int(f.Fd()), markAttr, v[:], 0)
}

// Verify checks that the stored file at path is whole: its size and
// CRC-32C match the mark Put gave it. It returns ErrCorrupt (wrapped) for a
// file a crash left without its data (never acknowledged: it may be
// dropped), ErrNoMark for a file without a mark (written by an older
// version, which synced data before names; or an empty inode left by a
// crash), the file's own I/O errors otherwise. A file system without
// extended attributes cannot carry marks; there Put syncs the data before
// the name exists, so such files are taken as whole.
func Verify(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var v [12]byte
	n, err := unix.Fgetxattr(int(f.Fd()), markAttr, v[:])
	switch {
	case errors.Is(err, unix.ENOTSUP):
		return nil
	case errors.Is(err, unix.ENODATA):
		return fmt.Errorf("%w: %s", ErrNoMark, path)
	case err != nil:
		return fmt.Errorf("spool: reading mark of %s: %w", path, err)
	case n != len(v):
		return fmt.Errorf("%w: %s: mark of %d bytes", ErrCorrupt, path, n)
	}
	h := crc32.New(castagnoli)
	size, err := io.CopyBuffer(h, f, make([]byte, 256<<10))
	if err != nil {
		return fmt.Errorf("spool: verifying %s: %w", path, err)
	}
	if uint64(size) != binary.LittleEndian.Uint64(v[:8]) || h.Sum32() != binary.LittleEndian.Uint32(v[8:]) {
		return fmt.Errorf("%w: %s", ErrCorrupt, path)
	}
	return nil
}

// replaceUnverified handles a name already taken: when the earlier copy
// there is whole (Verify), it is kept and replaceUnverified reports false;
// when it is not (a crash left its name without its data, never
// acknowledged), f takes its place atomically and it reports true.
func (s *Spool) replaceUnverified(f *os.File, tmpName, final string) (bool, error) {
	s.replaceMu.Lock()
	defer s.replaceMu.Unlock()
	err := Verify(final)
	switch {
	case err == nil:
		return false, nil
	case errors.Is(err, os.ErrNotExist):
		// The earlier copy's Put failed and took its name back.
		if err := s.publish(f, tmpName, final); err != nil {
			if errors.Is(err, os.ErrExist) {
				return false, nil
			}
			return false, err
		}
		return true, nil
	case !errors.Is(err, ErrNoMark) && !errors.Is(err, ErrCorrupt):
		return false, err
	}
	side := filepath.Join(s.tmp, filepath.Base(final)+".replace.part")
	_ = os.Remove(side)
	if err := s.publish(f, tmpName, side); err != nil {
		return false, err
	}
	if err := os.Rename(side, final); err != nil {
		_ = os.Remove(side)
		return false, err
	}
	return true, nil
}

// syncFileAndDir syncs the published file and its directory at the same
// time (the directory sync group-committed with other Puts).
func (s *Spool) syncFileAndDir(f *os.File) error {
	dir := make(chan error, 1)
	go func() { dir <- s.dirSync.sync() }()
	ferr := f.Sync()
	derr := <-dir
	if ferr != nil {
		return ferr
	}
	if derr != nil {
		return fmt.Errorf("directory: %w", derr)
	}
	return nil
}

// syncEarlier makes the stored file at path, and its name, durable.
func (s *Spool) syncEarlier(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return s.syncFileAndDir(f)
}

// create opens the file an instance is received into. Where the kernel
// supports it, the file is anonymous (O_TMPFILE in the instances directory):
// it has no name until publish links it, so a transfer cut short or a crash
// leaves nothing behind at all. Otherwise it is a named temporary file
// under tmp/, which Open clears.
//
// Anonymous files are opened ahead, a few at a time (refill), so that a Put
// does not wait for the file system to allocate its inode.
func (s *Spool) create() (*os.File, string, error) {
	select {
	case f := <-s.spare:
		s.refill()
		return f, "", nil
	default:
	}
	if f, err := s.openAnonymous(); err == nil {
		s.refill()
		return f, "", nil
	}
	f, err := os.CreateTemp(s.tmp, "*.part")
	if err != nil {
		return nil, "", err
	}
	return f, f.Name(), nil
}

func (s *Spool) openAnonymous() (*os.File, error) {
	fd, err := unix.Open(s.instances, unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o640)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), "(anonymous)"), nil
}

// refill opens anonymous files for the next Puts on another goroutine,
// unless one is doing so already. A spare file holds no data and has no
// name: nothing of it survives the process.
func (s *Spool) refill() {
	s.spareMu.Lock()
	defer s.spareMu.Unlock()
	if s.closed || !s.refilling.CompareAndSwap(false, true) {
		return
	}
	s.refillers.Add(1)
	go func() {
		defer s.refillers.Done()
		defer s.refilling.Store(false)
		for len(s.spare) < cap(s.spare) {
			f, err := s.openAnonymous()
			if err != nil {
				return
			}
			s.spareMu.Lock()
			kept := false
			if !s.closed {
				select {
				case s.spare <- f:
					kept = true
				default:
				}
			}
			s.spareMu.Unlock()
			if !kept {
				_ = f.Close()
				return
			}
		}
	}()
}

// Close releases the files the spool keeps open ahead, so that its file
// system can be unmounted. Puts still work after Close, without opening
// ahead.
func (s *Spool) Close() error {
	s.spareMu.Lock()
	s.closed = true
	s.spareMu.Unlock()
	s.refillers.Wait()
	for {
		select {
		case f := <-s.spare:
			_ = f.Close()
		default:
			return nil
		}
	}
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

// countWriter counts and checksums what it passes on.
type countWriter struct {
	w   io.Writer
	n   int64
	crc uint32
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.crc = crc32.Update(c.crc, castagnoli, p[:n])
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
