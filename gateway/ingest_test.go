package gateway

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"

	"dicomgate/bench/ctstudy"
	"dicomgate/dimse"
	"dicomgate/dimse/dataset"
	"dicomgate/dimse/dicomtest"
	"dicomgate/dimse/spool"
	"dicomgate/gateway/store"
	"dicomgate/mis"
)

// TestReadHeaderMatchesReadFile spools real files (pydicom's corpus and
// suyashkumar/dicom's test data: native, encapsulated, implicit, big
// endian, deflated, no pixel data) and checks that the facts read at
// ingest, with the spool's knowledge of the pixel data, are exactly those
// of reading the stored file.
func TestReadHeaderMatchesReadFile(t *testing.T) {
	files := dicomtest.CorpusFiles(t)
	sp, err := spool.Open(t.TempDir(), dimse.ImplementationClassUID, dimse.ImplementationVersionName)
	if err != nil {
		t.Fatal(err)
	}
	compared, withPixels := 0, 0
	for _, path := range files {
		st, ok := spoolFile(t, sp, path)
		if !ok {
			continue
		}
		t.Run(filepath.Base(path), func(t *testing.T) {
			want, werr := mis.ReadFile(st.Path)
			got, gerr := readHeader(st)
			if (werr == nil) != (gerr == nil) {
				t.Fatalf("readHeader error %v, ReadFile error %v", gerr, werr)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("readHeader\n%+v\nReadFile\n%+v", got, want)
			}
		})
		compared++
		if st.PixelData {
			withPixels++
		}
	}
	if compared < 10 || withPixels < 5 {
		t.Fatalf("only %d files compared, %d of them with pixel data after the header", compared, withPixels)
	}
}

// spoolFile stores a Part 10 file's data set in sp as a C-STORE would; it
// reports false for files the spool refuses (no meta header, bad UIDs).
func spoolFile(t *testing.T, sp *spool.Spool, path string) (spool.Stored, bool) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	meta, _, err := dataset.ReadFileMeta(br)
	if err != nil {
		return spool.Stored{}, false
	}
	st, err := sp.Put(context.Background(), spool.Instance{SOPClassUID: meta.MediaStorageSOPClassUID,
		SOPInstanceUID: meta.MediaStorageSOPInstanceUID, TransferSyntaxUID: meta.TransferSyntaxUID, CallingAETitle: "TEST"}, io.Reader(br))
	if err != nil || st.Duplicate {
		return spool.Stored{}, false
	}
	return st, true
}

// TestRecoverDropsCrashDamagedFiles: after a crash, Recover indexes the
// spooled files the store does not know, except one whose checksum mark
// shows its data never reached the disk (it was never acknowledged); a
// file without a mark (older versions) is indexed as before.
func TestRecoverDropsCrashDamagedFiles(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(dir, "gateway.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sp, err := spool.Open(filepath.Join(dir, "spool"), dimse.ImplementationClassUID, dimse.ImplementationVersionName)
	if err != nil {
		t.Fatal(err)
	}
	series, err := ctstudy.WriteSeries(filepath.Join(dir, "study"), ctstudy.Options{Instances: 3, Rows: 64, Columns: 64})
	if err != nil {
		t.Fatal(err)
	}
	var stored []spool.Stored
	for _, f := range series.Files {
		s, ok := spoolFile(t, sp, f)
		if !ok {
			t.Fatalf("%s not spooled", f)
		}
		stored = append(stored, s)
	}
	damaged, unmarked, intact := stored[0], stored[1], stored[2]
	size := damaged.Size
	if err := os.Truncate(damaged.Path, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(damaged.Path, size); err != nil { // a hole where the data was
		t.Fatal(err)
	}
	if err := syscall.Removexattr(unmarked.Path, "user.dicomgate.crc32c"); err != nil {
		t.Fatal(err)
	}
	g, err := New(Config{Log: slog.New(slog.DiscardHandler)}, st, sp, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(damaged.Path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("damaged file kept: %v", err)
	}
	if _, err := st.Instance(ctx, damaged.SOPInstanceUID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("damaged file indexed: %v", err)
	}
	for _, s := range []spool.Stored{unmarked, intact} {
		if _, err := st.Instance(ctx, s.SOPInstanceUID); err != nil {
			t.Fatalf("%s not indexed: %v", s.Path, err)
		}
	}
}
