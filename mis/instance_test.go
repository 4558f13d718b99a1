package mis

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"testing"

	"dicomgate/bench/ctstudy"
)

// multiFrameCT writes a multi-frame CT instance of frames 512x512 16-bit
// frames (0.5 MiB each) and returns its path.
func multiFrameCT(tb testing.TB, frames int) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), "mf.dcm")
	f, err := os.Create(p)
	if err != nil {
		tb.Fatal(err)
	}
	bw := bufio.NewWriter(f)
	if _, err := ctstudy.WriteMultiFrame(bw, ctstudy.Options{}, frames); err != nil {
		tb.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	return p
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// TestReadStopsAtPixelData: Read learns that an instance has pixel data
// without reading it, so a gigabyte instance costs what its header costs.
func TestReadStopsAtPixelData(t *testing.T) {
	p := multiFrameCT(t, 16) // 8 MiB of pixel data
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	cr := &countingReader{r: f}
	in, err := Read(cr, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	if !in.HasPixelData || in.Modality != "CT" {
		t.Errorf("HasPixelData %v, Modality %q; want true, CT", in.HasPixelData, in.Modality)
	}
	// The parser's read-ahead buffer is all that may be read past the header.
	if cr.n > 2*readBuffer {
		t.Errorf("Read consumed %d of %d bytes, want at most %d", cr.n, st.Size(), 2*readBuffer)
	}
}

// BenchmarkReadFile reads the header facts of a 64 MiB multi-frame instance.
func BenchmarkReadFile(b *testing.B) {
	p := multiFrameCT(b, 128)
	b.ReportAllocs()
	for b.Loop() {
		in, err := ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		if !in.HasPixelData {
			b.Fatal("no pixel data")
		}
	}
}
