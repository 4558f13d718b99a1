// Package ctstudy generates synthetic but realistic CT studies as DICOM
// PS3.10 (Part 10) files in explicit VR little endian, for tests and
// benchmarks of every dicomgate layer (network, previews, gateway).
//
// A generated series has unique UIDs (2.25 UUID-derived, PS3.5 B.2), the
// usual patient, study, series and image tags of the CT Image IOD (PS3.3
// A.3), and 512×512 16-bit signed pixels that look like an axial CT slice: air
// outside a body outline, soft tissue with noise, lungs, a spine and a table,
// stored as HU+1024 with RescaleIntercept −1024, RescaleSlope 1 and a
// 40/400 soft-tissue window. Pixels are computed row by row while writing,
// so nothing instance-sized is held in memory; WriteMultiFrame uses the same
// streaming to write one instance of any size (e.g. 1 GiB) with constant
// memory.
//
// Typical use:
//
//	s, err := ctstudy.WriteSeries(dir, ctstudy.Options{Instances: 3})
//	// s.Files lists the 3 paths; s.StudyInstanceUID, s.SeriesInstanceUID
//	// and s.SOPInstanceUIDs identify them.
package ctstudy

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/big"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"dicomgate/dimse/dataset"
)

// SOP classes written by the package.
const (
	// CTImageStorage is the SOP class of WriteSeries instances.
	CTImageStorage = "1.2.840.10008.5.1.4.1.1.2"
	// MultiFrameGrayscaleWordSC is the SOP class of WriteMultiFrame: the
	// multi-frame 16-bit image IOD that needs no functional groups.
	MultiFrameGrayscaleWordSC = "1.2.840.10008.5.1.4.1.1.7.3"
	implementationClassUID    = "2.25.230961759455488850904528694901452004833"
)

// Options sizes and labels a generated series. Zero fields take defaults.
type Options struct {
	Instances   int    // number of slices (WriteSeries); default 1
	Rows        int    // default 512
	Columns     int    // default 512
	PatientName string // default "CT^Synthetic"
	PatientID   string // default "CTSTUDY-0001"
	// StudyInstanceUID and SeriesInstanceUID are generated when empty;
	// set them to add series to one study.
	StudyInstanceUID  string
	SeriesInstanceUID string
	SliceThickness    float64 // mm, default 1.25
	// Seed makes the noise reproducible; UIDs are always unique.
	Seed uint64
	// Date stamps the study; default now.
	Date time.Time
}

func (o *Options) defaults() {
	if o.Instances <= 0 {
		o.Instances = 1
	}
	if o.Rows <= 0 {
		o.Rows = 512
	}
	if o.Columns <= 0 {
		o.Columns = 512
	}
	if o.PatientName == "" {
		o.PatientName = "CT^Synthetic"
	}
	if o.PatientID == "" {
		o.PatientID = "CTSTUDY-0001"
	}
	if o.StudyInstanceUID == "" {
		o.StudyInstanceUID = NewUID()
	}
	if o.SeriesInstanceUID == "" {
		o.SeriesInstanceUID = NewUID()
	}
	if o.SliceThickness <= 0 {
		o.SliceThickness = 1.25
	}
	if o.Date.IsZero() {
		o.Date = time.Now()
	}
}

// Series describes a written series.
type Series struct {
	StudyInstanceUID  string
	SeriesInstanceUID string
	SOPInstanceUIDs   []string
	Files             []string // Part 10 files, in slice order
	Bytes             int64    // total size of the files
}

// NewUID returns a unique UID under the UUID root 2.25 (PS3.5 B.2).
func NewUID() string {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return "2.25." + n.String()
}

// WriteSeries writes opt.Instances CT slices into dir (created if needed) as
// files named IMG00001.dcm, IMG00002.dcm, ...
func WriteSeries(dir string, opt Options) (*Series, error) {
	opt.defaults()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	s := &Series{StudyInstanceUID: opt.StudyInstanceUID, SeriesInstanceUID: opt.SeriesInstanceUID}
	for i := range opt.Instances {
		uid := NewUID()
		path := filepath.Join(dir, fmt.Sprintf("IMG%05d.dcm", i+1))
		n, err := writeFile(path, func(w io.Writer) error { return WriteInstance(w, &opt, i, uid) })
		if err != nil {
			return nil, err
		}
		s.SOPInstanceUIDs = append(s.SOPInstanceUIDs, uid)
		s.Files = append(s.Files, path)
		s.Bytes += n
	}
	return s, nil
}

func writeFile(path string, write func(io.Writer) error) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	cw := &countingWriter{w: f}
	bw := bufio.NewWriterSize(cw, 256*1024)
	if err := write(bw); err != nil {
		f.Close()
		return 0, err
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return 0, err
	}
	return cw.n, f.Close()
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// WriteInstance writes slice index (0-based) of the series opt describes as
// a Part 10 file with SOP Instance UID uid. opt must have been passed
// through WriteSeries' defaults (call WriteSeries, or set every field).
func WriteInstance(w io.Writer, opt *Options, index int, uid string) error {
	o := *opt
	o.defaults()
	return write(w, &o, CTImageStorage, uid, index, 1)
}

// WriteMultiFrame writes one multi-frame instance of frames 16-bit frames
// (each a CT slice as in WriteSeries) to w, streaming: memory use does not
// depend on frames. 2048 frames of 512×512 make 1 GiB of pixel data. It
// returns the SOP Instance UID.
func WriteMultiFrame(w io.Writer, opt Options, frames int) (string, error) {
	opt.defaults()
	if frames <= 0 {
		return "", fmt.Errorf("ctstudy: %d frames", frames)
	}
	if int64(frames)*int64(opt.Rows)*int64(opt.Columns)*2 > 0xFFFFFFFE {
		return "", fmt.Errorf("ctstudy: %d frames exceed the 4 GiB value length limit", frames)
	}
	uid := NewUID()
	return uid, write(w, &opt, MultiFrameGrayscaleWordSC, uid, 0, frames)
}

// FramesFor returns how many 512×512 frames make about size bytes.
func FramesFor(size int64) int {
	return int(max(1, size/(512*512*2)))
}

type elemWriter struct {
	w   io.Writer
	err error
	buf []byte
}

func (e *elemWriter) header(group, elem uint16, vr string, n int) {
	b := e.buf[:0]
	b = binary.LittleEndian.AppendUint16(b, group)
	b = binary.LittleEndian.AppendUint16(b, elem)
	b = append(b, vr...)
	switch vr {
	case "OB", "OW", "SQ", "UN", "UT", "UC", "UR", "OD", "OF", "OL", "OV", "SV", "UV":
		b = append(b, 0, 0)
		b = binary.LittleEndian.AppendUint32(b, uint32(n))
	default:
		b = binary.LittleEndian.AppendUint16(b, uint16(n))
	}
	e.buf = b
	e.write(b)
}

func (e *elemWriter) write(b []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(b)
	}
}

func (e *elemWriter) str(group, elem uint16, vr, v string) {
	b := []byte(v)
	if len(b)%2 == 1 {
		if vr == "UI" {
			b = append(b, 0)
		} else {
			b = append(b, ' ')
		}
	}
	e.header(group, elem, vr, len(b))
	e.write(b)
}

func (e *elemWriter) us(group, elem uint16, v uint16) {
	e.header(group, elem, "US", 2)
	e.write(binary.LittleEndian.AppendUint16(nil, v))
}

func ds(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func write(w io.Writer, o *Options, sopClass, uid string, index, frames int) error {
	meta := dataset.AppendFileMeta(nil, &dataset.FileMeta{MediaStorageSOPClassUID: sopClass, MediaStorageSOPInstanceUID: uid,
		TransferSyntaxUID: dataset.ExplicitVRLittleEndian, ImplementationClassUID: implementationClassUID, ImplementationVersionName: "CTSTUDY_1"})
	if _, err := w.Write(meta); err != nil {
		return err
	}
	e := &elemWriter{w: w, buf: make([]byte, 0, 16)}
	date, tm := o.Date.Format("20060102"), o.Date.Format("150405")
	z := -float64(index) * o.SliceThickness
	e.str(0x0008, 0x0005, "CS", "ISO_IR 100")
	e.str(0x0008, 0x0008, "CS", `ORIGINAL\PRIMARY\AXIAL`)
	e.str(0x0008, 0x0016, "UI", sopClass)
	e.str(0x0008, 0x0018, "UI", uid)
	e.str(0x0008, 0x0020, "DA", date)
	e.str(0x0008, 0x0021, "DA", date)
	e.str(0x0008, 0x0023, "DA", date)
	e.str(0x0008, 0x0030, "TM", tm)
	e.str(0x0008, 0x0031, "TM", tm)
	e.str(0x0008, 0x0033, "TM", tm)
	e.str(0x0008, 0x0050, "SH", "ACC0001")
	e.str(0x0008, 0x0060, "CS", "CT")
	if frames > 1 {
		e.str(0x0008, 0x0064, "CS", "WSD")
	}
	e.str(0x0008, 0x0070, "LO", "dicomgate ctstudy")
	e.str(0x0008, 0x0090, "PN", "")
	e.str(0x0008, 0x1030, "LO", "CT CHEST (synthetic)")
	e.str(0x0008, 0x103E, "LO", "AXIAL 1.25mm")
	e.str(0x0010, 0x0010, "PN", o.PatientName)
	e.str(0x0010, 0x0020, "LO", o.PatientID)
	e.str(0x0010, 0x0030, "DA", "19700101")
	e.str(0x0010, 0x0040, "CS", "O")
	e.str(0x0018, 0x0050, "DS", ds(o.SliceThickness))
	e.str(0x0018, 0x0060, "DS", "120")
	if frames > 1 {
		e.str(0x0018, 0x1063, "DS", "33.3")
	}
	e.str(0x0020, 0x000D, "UI", o.StudyInstanceUID)
	e.str(0x0020, 0x000E, "UI", o.SeriesInstanceUID)
	e.str(0x0020, 0x0010, "SH", "1")
	e.str(0x0020, 0x0011, "IS", "1")
	e.str(0x0020, 0x0013, "IS", strconv.Itoa(index+1))
	e.str(0x0020, 0x0032, "DS", strings.Join([]string{ds(-179.2), ds(-179.2), ds(z)}, `\`))
	e.str(0x0020, 0x0037, "DS", `1\0\0\0\1\0`)
	e.str(0x0020, 0x0052, "UI", o.StudyInstanceUID+".1")
	e.str(0x0020, 0x1041, "DS", ds(z))
	e.us(0x0028, 0x0002, 1)
	e.str(0x0028, 0x0004, "CS", "MONOCHROME2")
	if frames > 1 {
		e.str(0x0028, 0x0008, "IS", strconv.Itoa(frames))
		e.header(0x0028, 0x0009, "AT", 4)
		e.write([]byte{0x18, 0x00, 0x63, 0x10})
	}
	e.us(0x0028, 0x0010, uint16(o.Rows))
	e.us(0x0028, 0x0011, uint16(o.Columns))
	e.str(0x0028, 0x0030, "DS", `0.7\0.7`)
	e.us(0x0028, 0x0100, 16)
	e.us(0x0028, 0x0101, 16)
	e.us(0x0028, 0x0102, 15)
	e.us(0x0028, 0x0103, 1)
	e.str(0x0028, 0x1050, "DS", "40")
	e.str(0x0028, 0x1051, "DS", "400")
	e.str(0x0028, 0x1052, "DS", "-1024")
	e.str(0x0028, 0x1053, "DS", "1")
	e.str(0x0028, 0x1054, "LO", "HU")
	frameBytes := o.Rows * o.Columns * 2
	e.header(0x7FE0, 0x0010, "OW", frameBytes*frames)
	if e.err != nil {
		return e.err
	}
	rng := mrand.New(mrand.NewPCG(o.Seed, uint64(index)))
	row := make([]byte, o.Columns*2)
	for f := range frames {
		slice := index + f
		for y := range o.Rows {
			fillRow(row, o, slice, y, rng)
			if _, err := w.Write(row); err != nil {
				return err
			}
		}
	}
	return nil
}

// fillRow computes one row of slice, as stored values (HU + 1024).
func fillRow(row []byte, o *Options, slice, y int, rng *mrand.Rand) {
	w, h := float64(o.Columns), float64(o.Rows)
	cx, cy := w/2, h*0.52
	// The body narrows and widens slowly along the series.
	breath := 1 + 0.04*math.Sin(float64(slice)/17)
	ax, ay := w*0.42*breath, h*0.30*breath
	fy := float64(y)
	for x := range o.Columns {
		fx := float64(x)
		hu := -1000.0
		dx, dy := (fx-cx)/ax, (fy-cy)/ay
		body := dx*dx + dy*dy
		switch {
		case fy > h*0.86 && fy < h*0.89: // table
			hu = 300
		case body <= 1:
			hu = 40 // soft tissue
			if body > 0.85 {
				hu = -90 // subcutaneous fat
			}
			for _, lx := range []float64{cx - ax*0.45, cx + ax*0.45} {
				ex, ey := (fx-lx)/(ax*0.33), (fy-cy+ay*0.1)/(ay*0.6)
				if ex*ex+ey*ey <= 1 {
					hu = -820 // lung
				}
			}
			sx, sy := (fx-cx)/(w*0.05), (fy-(cy+ay*0.62))/(h*0.05)
			if sx*sx+sy*sy <= 1 {
				hu = 700 // vertebra
			}
		}
		if hu > -1000 {
			hu += rng.NormFloat64() * 12
		} else {
			hu += math.Abs(rng.NormFloat64()) * 4
		}
		v := int16(math.Round(hu + 1024))
		binary.LittleEndian.PutUint16(row[2*x:], uint16(v))
	}
}
