package spool

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"dicomgate/dimse/dataset"
	"dicomgate/dimse/dicomtest"
)

const (
	seedClass    = "1.2.840.10008.5.1.4.1.1.7"
	seedInstance = "2.25.1234567890"
)

func seed(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("../dataset/testdata/explicit-le-undefined-seq.dset")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func open(t testing.TB) *Spool {
	t.Helper()
	s, err := Open(t.TempDir(), "2.25.99", "TEST_1")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func inst() Instance {
	return Instance{SOPClassUID: seedClass, SOPInstanceUID: seedInstance, TransferSyntaxUID: dataset.ExplicitVRLittleEndian, CallingAETitle: "MODALITY"}
}

// leftovers lists every file under the spool.
func leftovers(t *testing.T, s *Spool) []string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir(s.dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	return out
}

func TestPutWritesPart10(t *testing.T) {
	s := open(t)
	ds := seed(t)
	st, err := s.Put(context.Background(), inst(), bytes.NewReader(ds))
	if err != nil {
		t.Fatal(err)
	}
	if st.Duplicate || st.StudyInstanceUID != "2.25.42" || st.SeriesInstanceUID != "2.25.43" || st.CallingAETitle != "MODALITY" {
		t.Fatalf("stored %+v", st)
	}
	f, err := os.Open(st.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	m, _, err := dataset.ReadFileMeta(br)
	if err != nil {
		t.Fatal(err)
	}
	want := dataset.FileMeta{MediaStorageSOPClassUID: seedClass, MediaStorageSOPInstanceUID: seedInstance,
		TransferSyntaxUID: dataset.ExplicitVRLittleEndian, ImplementationClassUID: "2.25.99", ImplementationVersionName: "TEST_1", SourceAETitle: "MODALITY"}
	if m != want {
		t.Fatalf("meta %+v", m)
	}
	rest, _ := io.ReadAll(br)
	if !bytes.Equal(rest, ds) {
		t.Fatal("data set bytes differ from what was received")
	}
	if fi, _ := os.Stat(st.Path); fi.Size() != st.Size {
		t.Fatalf("size %d, reported %d", fi.Size(), st.Size)
	}
	if got := leftovers(t, s); len(got) != 1 {
		t.Fatalf("files: %v", got)
	}
	t.Run("dcmdump", func(t *testing.T) {
		dcmdump := dicomtest.LookPath(t, "dcmdump")
		if out, err := exec.Command(dcmdump, "-q", st.Path).CombinedOutput(); err != nil || len(out) == 0 {
			t.Fatalf("dcmdump rejects the spool file: %v %s", err, out)
		}
	})
}

type failingReader struct {
	r   io.Reader
	n   int
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, f.err
	}
	p = p[:min(len(p), f.n)]
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

func TestPutFailuresLeaveNothing(t *testing.T) {
	ds := seed(t)
	abort := errors.New("association aborted")
	mismatch := inst()
	mismatch.SOPInstanceUID = "2.25.555"
	badClass := inst()
	badClass.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
	badUID := inst()
	badUID.SOPInstanceUID = "../../etc/passwd"
	badTS := inst()
	badTS.TransferSyntaxUID = "1.2.3.4"
	cases := []struct {
		name string
		in   Instance
		r    io.Reader
		want error
	}{
		{"dropped mid-transfer", inst(), &failingReader{r: bytes.NewReader(ds), n: 100, err: abort}, abort},
		{"truncated data set", inst(), bytes.NewReader(ds[:len(ds)-3]), dataset.ErrMalformed},
		{"instance contradicts command", mismatch, bytes.NewReader(ds), ErrMismatch},
		{"class contradicts command", badClass, bytes.NewReader(ds), ErrMismatch},
		{"hostile UID", badUID, bytes.NewReader(ds), ErrInvalid},
		{"unknown transfer syntax", badTS, bytes.NewReader(ds), ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := open(t)
			_, err := s.Put(context.Background(), c.in, c.r)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if got := leftovers(t, s); len(got) != 0 {
				t.Fatalf("left %v", got)
			}
		})
	}
}

func TestDuplicateKeepsFirst(t *testing.T) {
	s := open(t)
	ds := seed(t)
	first, err := s.Put(context.Background(), inst(), bytes.NewReader(ds))
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(first.Path)
	other := inst()
	other.CallingAETitle = "OTHER"
	var wg sync.WaitGroup
	dups := make([]Stored, 8)
	errs := make([]error, 8)
	for i := range dups {
		wg.Add(1)
		go func() { defer wg.Done(); dups[i], errs[i] = s.Put(context.Background(), other, bytes.NewReader(ds)) }()
	}
	wg.Wait()
	for i := range dups {
		if errs[i] != nil || !dups[i].Duplicate || dups[i].Path != first.Path {
			t.Fatalf("duplicate %d: %+v %v", i, dups[i], errs[i])
		}
	}
	after, _ := os.ReadFile(first.Path)
	if !bytes.Equal(before, after) {
		t.Fatal("the first copy was replaced")
	}
	if got := leftovers(t, s); len(got) != 1 {
		t.Fatalf("files: %v", got)
	}
}

func TestConcurrentDistinctInstances(t *testing.T) {
	s := open(t)
	// A data set without SOP UIDs, so one seed serves many instances.
	ds := []byte{0x08, 0x00, 0x60, 0x00, 'C', 'S', 2, 0, 'C', 'T'}
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in := inst()
			in.SOPInstanceUID = "2.25." + string(rune('1'+i%9)) + "0" + string(rune('1'+i/9))
			if _, err := s.Put(context.Background(), in, bytes.NewReader(ds)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := leftovers(t, s); len(got) != 16 {
		t.Fatalf("%d files", len(got))
	}
}

func TestMinFreeRefuses(t *testing.T) {
	s := open(t)
	s.MinFree = 1 << 62
	if _, err := s.Put(context.Background(), inst(), bytes.NewReader(seed(t))); !errors.Is(err, ErrFull) {
		t.Fatalf("got %v", err)
	}
}

// TestFullDiskENOSPC fills a 64 KiB tmpfs: the error must be ENOSPC (status
// A700) and nothing may remain. Mounting needs root.
func TestFullDiskENOSPC(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("cannot mount tmpfs: %v", err)
	}
	defer func() { _ = syscall.Unmount(dir, 0) }()
	s, err := Open(dir, "2.25.99", "TEST_1")
	if err != nil {
		t.Fatal(err)
	}
	// One big OB element: 1 MiB of zeros.
	big := []byte{0x09, 0x00, 0x10, 0x10, 'O', 'B', 0, 0, 0, 0, 0x10, 0}
	r := io.MultiReader(bytes.NewReader(big), io.LimitReader(zeros{}, 1<<20))
	_, err = s.Put(context.Background(), inst(), r)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("got %v, want ENOSPC", err)
	}
	if got := leftovers(t, s); len(got) != 0 {
		t.Fatalf("left %v", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestOpenRemovesStaleTemporaries(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(dir, "2.25.99", "T"); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "tmp", "123.part")
	if err := os.WriteFile(stale, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, "2.25.99", "T"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatal("stale temporary survived Open")
	}
}

// TestVerifyMark checks the size and checksum mark Put gives a file, and
// that Verify distrusts a file whose data or mark did not survive.
func TestVerifyMark(t *testing.T) {
	s := open(t)
	st, err := s.Put(context.Background(), inst(), bytes.NewReader(seed(t)))
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(st.Path); err != nil {
		t.Fatalf("fresh file: %v", err)
	}
	data, err := os.ReadFile(st.Path)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		damage func(path string) error
		want   error
	}{
		{"zeroed data", func(p string) error {
			return os.WriteFile(p, make([]byte, len(data)), 0o640)
		}, ErrCorrupt},
		{"truncated", func(p string) error { return os.Truncate(p, int64(len(data)/2)) }, ErrCorrupt},
		{"no mark", func(p string) error { return unix.Removexattr(p, markAttr) }, ErrNoMark},
		{"short mark", func(p string) error { return unix.Setxattr(p, markAttr, []byte{1, 2}, 0) }, ErrCorrupt},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "x.dcm")
			if err := os.WriteFile(p, data, 0o640); err != nil {
				t.Fatal(err)
			}
			v := make([]byte, 12)
			if _, err := unix.Getxattr(st.Path, markAttr, v); err != nil {
				t.Fatal(err)
			}
			if err := unix.Setxattr(p, markAttr, v, 0); err != nil {
				t.Fatal(err)
			}
			if err := Verify(p); err != nil {
				t.Fatalf("intact copy: %v", err)
			}
			if err := c.damage(p); err != nil {
				t.Fatal(err)
			}
			if err := Verify(p); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

// TestDuplicateReplacesDamagedCopy: a name left by a crash without its
// data (never acknowledged) does not make the resent instance a duplicate;
// the new copy takes its place.
func TestDuplicateReplacesDamagedCopy(t *testing.T) {
	for _, damage := range []string{"zeroed", "no mark"} {
		t.Run(damage, func(t *testing.T) {
			s := open(t)
			ds := seed(t)
			first, err := s.Put(context.Background(), inst(), bytes.NewReader(ds))
			if err != nil {
				t.Fatal(err)
			}
			good, _ := os.ReadFile(first.Path)
			switch damage {
			case "zeroed":
				err = os.WriteFile(first.Path, make([]byte, len(good)), 0o640)
			case "no mark":
				err = unix.Removexattr(first.Path, markAttr)
			}
			if err != nil {
				t.Fatal(err)
			}
			again, err := s.Put(context.Background(), inst(), bytes.NewReader(ds))
			if err != nil {
				t.Fatal(err)
			}
			if again.Duplicate || again.Path != first.Path {
				t.Fatalf("stored %+v", again)
			}
			if got, _ := os.ReadFile(first.Path); !bytes.Equal(got, good) {
				t.Fatal("damaged copy kept")
			}
			if err := Verify(first.Path); err != nil {
				t.Fatal(err)
			}
			if got := leftovers(t, s); len(got) != 1 {
				t.Fatalf("files: %v", got)
			}
		})
	}
}

// explicitLE appends one explicit VR little endian element (short form,
// or the long form of OB/OW/UN) to b.
func explicitLE(b []byte, group, elem uint16, vr string, value []byte) []byte {
	b = binary.LittleEndian.AppendUint16(b, group)
	b = binary.LittleEndian.AppendUint16(b, elem)
	b = append(b, vr...)
	switch vr {
	case "OB", "OW", "UN":
		b = append(b, 0, 0)
		return append(binary.LittleEndian.AppendUint32(b, uint32(len(value))), value...)
	}
	return append(binary.LittleEndian.AppendUint16(b, uint16(len(value))), value...)
}

// BenchmarkPut stores 512 KiB instances (a 512×512 16-bit image): the time
// includes the file and directory syncs, so it measures the disk as much
// as the code; allocs/op and B/op are the code's.
func BenchmarkPut(b *testing.B) {
	s := open(b)
	const uidFormat = "2.25.%012d" // 17 characters, padded to 18
	ds := explicitLE(nil, 0x0008, 0x0016, "UI", []byte(seedClass+"\x00"))
	uidAt := len(ds) + 8
	ds = explicitLE(ds, 0x0008, 0x0018, "UI", []byte(fmt.Sprintf(uidFormat, 0)+"\x00"))
	ds = explicitLE(ds, 0x0020, 0x000D, "UI", []byte("2.25.42\x00"))
	ds = explicitLE(ds, 0x7FE0, 0x0010, "OW", make([]byte, 512*512*2))
	b.SetBytes(int64(len(ds)))
	b.ReportAllocs()
	for i := range b.N {
		in := inst()
		in.SOPInstanceUID = fmt.Sprintf(uidFormat, i+1)
		copy(ds[uidAt:], in.SOPInstanceUID)
		if _, err := s.Put(context.Background(), in, bytes.NewReader(ds)); err != nil {
			b.Fatal(err)
		}
	}
}
