package previews

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// missingPeer skips the test when a peer it needs is absent, or fails it when
// CI demands every peer (DICOMGATE_REQUIRE_PEERS=1).
func missingPeer(t testing.TB, what string) {
	t.Helper()
	if os.Getenv("DICOMGATE_REQUIRE_PEERS") == "1" {
		t.Fatalf("peer missing: %s (DICOMGATE_REQUIRE_PEERS=1)", what)
	}
	t.Skipf("peer missing: %s", what)
}

// needTool returns the path of an executable, or skips/fails.
func needTool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missingPeer(t, fmt.Sprintf("%s (apt-get install %s)", name, pkg))
	}
	return p
}

const pydicomCorpus = "/usr/lib/python3/dist-packages/pydicom/data/test_files"

func needPydicomCorpus(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat(pydicomCorpus); err != nil {
		missingPeer(t, "pydicom test files (apt-get install python3-pydicom)")
	}
	return pydicomCorpus
}

// suyashkumarTestdata is the testdata directory of the suyashkumar/dicom
// module, a dependency of this module and so in the module cache.
func suyashkumarTestdata(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		missingPeer(t, "go env GOMODCACHE")
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "github.com", "suyashkumar", "dicom@v1.1.0", "testdata")
	if _, err := os.Stat(filepath.Join(dir, "1.dcm")); err != nil {
		if err := exec.Command("go", "mod", "download", "github.com/suyashkumar/dicom@v1.1.0").Run(); err != nil {
			missingPeer(t, "github.com/suyashkumar/dicom@v1.1.0 testdata")
		}
	}
	return dir
}

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
	if sum == 0 {
		return math.Inf(1), nil
	}
	return 10 * math.Log10(255*255/(sum/float64(n))), nil
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
	cmd := exec.Command(tool, args...)
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
	tool := needTool(t, "opj_decompress", "libopenjp2-tools")
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
	dir := t.TempDir()
	inPath, outPath := filepath.Join(dir, "frame.j2k"), filepath.Join(dir, "frame.rawl")
	if !bytes.HasPrefix(stream, []byte{0xFF, 0x4F}) {
		inPath = filepath.Join(dir, "frame.jp2")
	}
	if err := os.WriteFile(inPath, stream, 0o644); err != nil {
		return nil, err
	}
	if out, err := exec.Command(tool, "-quiet", "-i", inPath, "-o", outPath).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("opj_decompress: %v: %s", err, out)
	}
	raw, err := os.ReadFile(outPath)
	if err != nil {
		return nil, err
	}
	n := in.rows * in.cols
	bps := 1
	if prec > 8 {
		bps = 2
	}
	if len(raw) != n*comps*bps {
		return nil, fmt.Errorf("opj_decompress wrote %d bytes for %dx%dx%d", len(raw), in.cols, in.rows, comps)
	}
	// .rawl holds the components one after another, little endian.
	pix := make([]uint16, n*comps)
	for c := 0; c < comps; c++ {
		for i := 0; i < n; i++ {
			k := c*n + i
			v := uint16(raw[k])
			if bps == 2 {
				v = binary.LittleEndian.Uint16(raw[2*k:])
			}
			pix[i*comps+c] = v
		}
	}
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
