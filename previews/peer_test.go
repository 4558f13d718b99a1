package previews

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"dicomgate/dimse/dicomtest"
)

// readPNM reads a binary 8-bit PGM (P5) or PPM (P6) as written by DCMTK.
func readPNM(r io.Reader) (image.Image, error) {
	br := bufio.NewReader(r)
	var fields []string
	for len(fields) < 4 {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("pnm header: %w", err)
		}
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fields = append(fields, strings.Fields(line)...)
	}
	w, err1 := strconv.Atoi(fields[1])
	h, err2 := strconv.Atoi(fields[2])
	maxv, err3 := strconv.Atoi(fields[3])
	if err1 != nil || err2 != nil || err3 != nil || maxv != 255 {
		return nil, fmt.Errorf("unsupported pnm header %q", fields)
	}
	switch fields[0] {
	case "P5":
		img := image.NewGray(image.Rect(0, 0, w, h))
		if _, err := io.ReadFull(br, img.Pix); err != nil {
			return nil, err
		}
		return img, nil
	case "P6":
		img := image.NewNRGBA(image.Rect(0, 0, w, h))
		buf := make([]byte, 3*w*h)
		if _, err := io.ReadFull(br, buf); err != nil {
			return nil, err
		}
		for i := 0; i < w*h; i++ {
			copy(img.Pix[4*i:4*i+3], buf[3*i:3*i+3])
			img.Pix[4*i+3] = 255
		}
		return img, nil
	}
	return nil, fmt.Errorf("unsupported pnm type %q", fields[0])
}

// psnr compares two images of the same size channel by channel (grayscale
// against grayscale, colour against colour).
func psnr(a, b image.Image) (float64, error) {
	if a.Bounds().Size() != b.Bounds().Size() {
		return 0, fmt.Errorf("size %v != reference %v", a.Bounds().Size(), b.Bounds().Size())
	}
	chans := func(m image.Image) ([]byte, int, error) {
		switch m := m.(type) {
		case *image.Gray:
			return m.Pix, 1, nil
		case *image.NRGBA:
			return m.Pix, 4, nil
		}
		return nil, 0, fmt.Errorf("unexpected image type %T", m)
	}
	pa, na, err := chans(a)
	if err != nil {
		return 0, err
	}
	pb, nb, err := chans(b)
	if err != nil {
		return 0, err
	}
	if na != nb {
		return 0, fmt.Errorf("rendered %T, reference %T", a, b)
	}
	var sum float64
	var n int
	for i := range pa {
		if na == 4 && i%4 == 3 {
			continue
		}
		d := float64(pa[i]) - float64(pb[i])
		sum += d * d
		n++
	}
	return dicomtest.PSNR(sum, n, 8), nil
}

// dcmtkReference renders frame (zero-based) of path with DCMTK using the
// VOI rule the renderer reported, at full resolution, without overlays.
func dcmtkReference(t testing.TB, tool, path string, frame int, voi string) (image.Image, error) {
	t.Helper()
	args := []string{"-q", "-O", "+F", strconv.Itoa(frame + 1)}
	switch voi {
	case voiWindow:
		args = append(args, "+Wi", "1")
	case voiLUTSequence:
		args = append(args, "+Wl", "1")
	case voiMinMax:
		args = append(args, "+Wm")
	}
	out := filepath.Join(t.TempDir(), "ref.pnm")
	args = append(args, "+op", path, out)
	cmd := dicomtest.Command(tool, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", tool, strings.Join(args, " "), err, stderr.String())
	}
	f, err := os.Open(out)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readPNM(f)
}

// j2kReference decodes frame idx of a JPEG 2000 file with OpenJPEG's
// opj_decompress (DCMTK has no JPEG 2000 decoder) and runs the samples
// through the same pixel pipeline; the comparison then checks frame
// extraction and the codec against an independent decoder.
func j2kReference(t testing.TB, path string, idx int) (image.Image, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, _ := f.Stat()
	opts := DefaultOptions()
	h, _, err := readHeader(f, st.Size())
	if err != nil {
		return nil, err
	}
	s := openDataset(f, st.Size(), h)
	ds, loc, err := parseDataset(s, h)
	if err != nil || loc == nil {
		return nil, fmt.Errorf("parse: %v", err)
	}
	in, err := imageInfoFrom(ds, h, &opts)
	if err != nil {
		return nil, err
	}
	stream, err := readEncapsulatedFrame(&source{r: f, size: st.Size(), h: h}, s, ds, in, idx, &opts)
	if err != nil {
		return nil, err
	}
	// SIZ (T.800 A.5.1) gives precision and signedness of component 0.
	siz := bytes.Index(stream, []byte{0xFF, 0x51})
	if siz < 0 || siz+41 > len(stream) {
		return nil, fmt.Errorf("no SIZ marker")
	}
	comps := int(binary.BigEndian.Uint16(stream[siz+38:]))
	ssiz := stream[siz+40]
	prec, signed := int(ssiz&0x7F)+1, ssiz&0x80 != 0
	pix := dicomtest.OPJDecompress(t, stream, in.cols, in.rows, comps, prec)
	frame := &rawFrame{samples: pix, width: in.cols, height: in.rows, spp: comps, precision: prec, signed: signed}
	if comps == 3 && (in.photometric == "YBR_ICT" || in.photometric == "YBR_RCT") {
		frame.photometric = "RGB"
	}
	smp, err := toSamples(frame, in)
	if err != nil {
		return nil, err
	}
	if smp.spp == 1 {
		img, _, err := renderGray(ds, smp)
		return img, err
	}
	return renderColor(ds, smp)
}
