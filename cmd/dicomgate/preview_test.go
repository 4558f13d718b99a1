package main

import (
	"image/jpeg"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func jpegSize(t *testing.T, path string) (int, int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := jpeg.DecodeConfig(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return cfg.Width, cfg.Height
}

// TestPreviewCommand renders a small RGB file (3x3) and a 32-bit RT dose
// (10x10) through the CLI, with and without a thumbnail and size limit.
func TestPreviewCommand(t *testing.T) {
	dir := t.TempDir()
	rgb := filepath.Join("..", "..", "previews", "testdata", "SC_rgb_small_odd.dcm")
	dose := filepath.Join("..", "..", "previews", "testdata", "rtdose_1frame.dcm")
	out, thumb := filepath.Join(dir, "out.jpg"), filepath.Join(dir, "thumb.jpg")

	if err := execCLI(t, quietRun(), "preview", rgb, out); err != nil {
		t.Fatal(err)
	}
	if w, h := jpegSize(t, out); w != 3 || h != 3 {
		t.Errorf("preview %dx%d, want 3x3 (never enlarged)", w, h)
	}
	if err := execCLI(t, quietRun(), "preview", dose, out, "--thumbnail", thumb, "--size", "8", "--thumbnail-size", "4"); err != nil {
		t.Fatal(err)
	}
	if w, h := jpegSize(t, out); w != 8 || h != 8 {
		t.Errorf("preview %dx%d, want 8x8", w, h)
	}
	if w, h := jpegSize(t, thumb); w != 4 || h != 4 {
		t.Errorf("thumbnail %dx%d, want 4x4", w, h)
	}
}

// TestPreviewCommandErrors checks that a file that cannot be rendered
// fails with the reason and leaves no output behind.
func TestPreviewCommandErrors(t *testing.T) {
	dir := t.TempDir()
	notDICOM := filepath.Join(dir, "text.dcm")
	if err := os.WriteFile(notDICOM, []byte(strings.Repeat("not dicom ", 20)), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.jpg")
	err := execCLI(t, quietRun(), "preview", notDICOM, out)
	if err == nil || !strings.Contains(err.Error(), "not a DICOM file") {
		t.Fatalf("got %v, want a not-a-DICOM-file error", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("output exists after a failed render: %v", err)
	}
	if err := execCLI(t, quietRun(), "preview", filepath.Join(dir, "missing.dcm"), out); err == nil {
		t.Fatal("missing input accepted")
	}
}
