package previews

import (
	"bytes"
	"image/jpeg"
	"io"
	"os"
	"path/filepath"
	"testing"

	"dicomgate/previews"
)

// BenchmarkPreviewAndThumbnail renders one 512x512 signed 16-bit CT
// instance into its series preview (1024 px, so full size) and its 256 px
// image-preview, from one decode, on one goroutine.
func BenchmarkPreviewAndThumbnail(b *testing.B) {
	var file bytes.Buffer
	if err := WriteCT(&file, NewStudy(1, 1).Slice(0)); err != nil {
		b.Fatal(err)
	}
	data := file.Bytes()
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
	var file bytes.Buffer
	if err := WriteCT(&file, NewStudy(3, 7).Slice(1)); err != nil {
		t.Fatal(err)
	}
	r, err := previews.Render(bytes.NewReader(file.Bytes()), int64(file.Len()), previews.Options{})
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
	var file bytes.Buffer
	if err := WriteCT(&file, NewStudy(1, 1).Slice(0)); err != nil {
		b.Fatal(err)
	}
	data := file.Bytes()
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
	var file bytes.Buffer
	if err := WriteCT(&file, NewStudy(1, 1).Slice(0)); err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "ct.dcm")
	if err := os.WriteFile(path, file.Bytes(), 0o644); err != nil {
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
