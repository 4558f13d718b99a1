package main

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"dicomgate/previews"
)

// previewCmd renders one DICOM file to a JPEG preview and, optionally, a
// thumbnail, from a single decode.
type previewCmd struct {
	In        string `arg:"" name:"in" help:"DICOM file to render." type:"existingfile"`
	Out       string `arg:"" name:"out" help:"JPEG file to write the preview to."`
	Thumbnail string `name:"thumbnail" help:"Also write the image-preview thumbnail to this JPEG file."`
	Size      int    `name:"size" default:"1024" help:"Longest side of the preview in pixels (never enlarged)."`
	ThumbSize int    `name:"thumbnail-size" default:"256" help:"Longest side of the thumbnail in pixels."`
	Quality   int    `name:"quality" default:"85" help:"JPEG quality, 1-100."`
}

// Run renders the file. Output files are written whole or not at all, so a
// failed render never leaves a half-written JPEG behind.
func (c *previewCmd) Run(rc *runContext) error {
	opts := previews.DefaultOptions()
	opts.PreviewSize, opts.ThumbnailSize, opts.Quality = c.Size, c.ThumbSize, c.Quality
	r, err := previews.RenderFile(c.In, opts)
	if err != nil {
		return fmt.Errorf("%s: %w", c.In, err)
	}
	if err := writeJPEG(c.Out, r.WritePreview); err != nil {
		return err
	}
	if c.Thumbnail != "" {
		if err := writeJPEG(c.Thumbnail, r.WriteThumbnail); err != nil {
			return err
		}
	}
	w, h := r.Size(opts.PreviewSize)
	rc.log.Debug("rendered preview", "in", c.In, "frame", r.Frame, "frames", r.Frames, "width", w, "height", h)
	return nil
}

func writeJPEG(path string, encode func(w io.Writer) error) error {
	var buf bytes.Buffer
	if err := encode(&buf); err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}
