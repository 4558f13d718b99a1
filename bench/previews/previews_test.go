package previews

import (
	"bytes"
	"image/jpeg"
	"io"
	"os"
	"path/filepath"
	"testing"

	"dicomgate/bench/ctstudy"
	"dicomgate/previews"
)

// BenchmarkPreviewAndThumbnail renders one 512x512 signed 16-bit CT
// instance into its series preview (1024 px, so full size) and its 256 px
// image-preview, from one decode, on one goroutine.
func BenchmarkPreviewAndThumbnail(b *testing.B) {
	data := ctInstance(b, 1, 0)
	opts := previews.DefaultOptions()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := previews.Render(bytes.NewReader(data), int64(len(data)), opts)
		if err != nil {
			b.Fatal(err)
		}
		if err := r.WritePreview(io.Discard); err != nil {
			b.Fatal(err)
		}
		if err := r.WriteThumbnail(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

// TestGeneratedCTRenders keeps the generator honest: its files render with
// the CT window they carry.
func TestGeneratedCTRenders(t *testing.T) {
	data := ctInstance(t, 7, 1)
	r, err := previews.Render(bytes.NewReader(data), int64(len(data)), previews.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if w, h := r.Size(256); w != 256 || h != 256 {
		t.Fatalf("thumbnail size %dx%d, want 256x256", w, h)
	}
}

// BenchmarkStages splits BenchmarkPreviewAndThumbnail into its stages:
// decode and pixel pipeline, JPEG encoding at full size, and shrinking plus
// encoding of the thumbnail.
func BenchmarkStages(b *testing.B) {
	data := ctInstance(b, 1, 0)
	opts := previews.DefaultOptions()
	r, err := previews.Render(bytes.NewReader(data), int64(len(data)), opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("render", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := previews.Render(bytes.NewReader(data), int64(len(data)), opts); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("preview-jpeg", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := r.WritePreview(io.Discard); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("thumbnail-resize", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r.Resize(opts.ThumbnailSize)
		}
	})
	b.Run("thumbnail-jpeg", func(b *testing.B) {
		small := r.Resize(opts.ThumbnailSize)
		b.ReportAllocs()
		for b.Loop() {
			if err := jpeg.Encode(io.Discard, small, &jpeg.Options{Quality: opts.Quality}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkThumbnail is the per-instance work of a study: read the file,
// render it and write its 256 px image-preview.
func BenchmarkThumbnail(b *testing.B) {
	path := filepath.Join(b.TempDir(), "ct.dcm")
	if err := os.WriteFile(path, ctInstance(b, 1, 0), 0o644); err != nil {
		b.Fatal(err)
	}
	opts := previews.DefaultOptions()
	b.ReportAllocs()
	for b.Loop() {
		r, err := previews.RenderFile(path, opts)
		if err != nil {
			b.Fatal(err)
		}
		if err := r.WriteThumbnail(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

// ctInstance returns slice index (0-based) of a generated CT series, its
// noise drawn from seed, as a Part 10 file.
func ctInstance(tb testing.TB, seed uint64, index int) []byte {
	tb.Helper()
	var file bytes.Buffer
	if err := ctstudy.WriteInstance(&file, &ctstudy.Options{Seed: seed}, index, ctstudy.NewUID()); err != nil {
		tb.Fatal(err)
	}
	return file.Bytes()
}
