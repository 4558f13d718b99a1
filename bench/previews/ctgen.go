// Package previews holds the benchmarks of dicomgate's preview renderer
// (package dicomgate/previews) and a generator of synthetic CT studies to
// run them on: realistic 512x512 signed 16-bit CT slices (a body outline
// with organs and noise, window 40/400) written as DICOM Part 10 files
// (PS3.10) in explicit VR little endian.
package previews

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"
)

// CTSlice describes one generated CT instance.
type CTSlice struct {
	StudyUID, SeriesUID, SOPUID string
	PatientID                   string
	Index                       int // instance number, 1-based; moves the anatomy a little
	Rows, Cols                  int // 512x512 when zero
	Seed                        uint64
}

type element struct {
	tag   uint32
	vr    string
	value []byte
}

func str(tag uint32, vr, s string) element {
	b := []byte(s)
	if len(b)%2 == 1 {
		if vr == "UI" {
			b = append(b, 0)
		} else {
			b = append(b, ' ')
		}
	}
	return element{tag, vr, b}
}

func us(tag uint32, v uint16) element {
	return element{tag, "US", binary.LittleEndian.AppendUint16(nil, v)}
}

func longVR(vr string) bool {
	switch vr {
	case "OB", "OW", "SQ", "UN", "UT", "UC", "UR", "OD", "OF", "OL", "OV":
		return true
	}
	return false
}

func encode(buf *bytes.Buffer, elems []element) {
	sort.Slice(elems, func(i, j int) bool { return elems[i].tag < elems[j].tag })
	for _, e := range elems {
		var h [12]byte
		binary.LittleEndian.PutUint16(h[0:], uint16(e.tag>>16))
		binary.LittleEndian.PutUint16(h[2:], uint16(e.tag))
		copy(h[4:], e.vr)
		if longVR(e.vr) {
			binary.LittleEndian.PutUint32(h[8:], uint32(len(e.value)))
			buf.Write(h[:12])
		} else {
			binary.LittleEndian.PutUint16(h[6:], uint16(len(e.value)))
			buf.Write(h[:8])
		}
		buf.Write(e.value)
	}
}

// ctPixels draws a CT slice in Hounsfield units (stored = HU + 1024 with
// rescale intercept -1024, so the data is signed but mostly positive):
// air outside an elliptical body of soft tissue, fat rim, two lungs, a
// spine and Gaussian noise.
func ctPixels(rows, cols, index int, rng *rand.Rand) []int16 {
	px := make([]int16, rows*cols)
	cx, cy := float64(cols)/2, float64(rows)/2
	shift := 4 * math.Sin(float64(index)/10)
	for y := 0; y < rows; y++ {
		for x := 0; x < cols; x++ {
			fx := (float64(x) - cx) / (float64(cols) * 0.42)
			fy := (float64(y) - cy - shift) / (float64(rows) * 0.32)
			r := fx*fx + fy*fy
			hu := -1000.0
			switch {
			case r < 0.85:
				hu = 40
				lx := (math.Abs(fx) - 0.45) / 0.3
				ly := fy / 0.55
				if lx*lx+ly*ly < 1 {
					hu = -850
				}
				sx, sy := fx/0.09, (fy-0.6)/0.12
				if sx*sx+sy*sy < 1 {
					hu = 700
				}
			case r < 1:
				hu = -100
			}
			hu += rng.NormFloat64() * 12
			px[y*cols+x] = int16(math.Round(hu))
		}
	}
	return px
}

// WriteCT writes one CT instance as a DICOM Part 10 file.
func WriteCT(w io.Writer, s CTSlice) error {
	if s.Rows == 0 {
		s.Rows, s.Cols = 512, 512
	}
	const ctImage = "1.2.840.10008.5.1.4.1.1.2"
	rng := rand.New(rand.NewPCG(s.Seed, uint64(s.Index)))
	px := ctPixels(s.Rows, s.Cols, s.Index, rng)
	pix := make([]byte, 2*len(px))
	for i, v := range px {
		binary.LittleEndian.PutUint16(pix[2*i:], uint16(v))
	}
	var meta bytes.Buffer
	encode(&meta, []element{
		{0x00020001, "OB", []byte{0, 1}},
		str(0x00020002, "UI", ctImage),
		str(0x00020003, "UI", s.SOPUID),
		str(0x00020010, "UI", "1.2.840.10008.1.2.1"),
		str(0x00020012, "UI", "1.2.826.0.1.3680043.10.1"),
	})
	var out bytes.Buffer
	out.Write(make([]byte, 128))
	out.WriteString("DICM")
	encode(&out, []element{{0x00020000, "UL", binary.LittleEndian.AppendUint32(nil, uint32(meta.Len()))}})
	out.Write(meta.Bytes())
	encode(&out, []element{
		str(0x00080008, "CS", `ORIGINAL\PRIMARY\AXIAL`),
		str(0x00080016, "UI", ctImage),
		str(0x00080018, "UI", s.SOPUID),
		str(0x00080020, "DA", "20260101"),
		str(0x00080030, "TM", "120000"),
		str(0x00080060, "CS", "CT"),
		str(0x00100010, "PN", "BENCH^PATIENT"),
		str(0x00100020, "LO", s.PatientID),
		str(0x0020000D, "UI", s.StudyUID),
		str(0x0020000E, "UI", s.SeriesUID),
		str(0x00200011, "IS", "1"),
		str(0x00200013, "IS", fmt.Sprint(s.Index)),
		str(0x00201041, "DS", fmt.Sprint(s.Index)),
		us(0x00280002, 1),
		str(0x00280004, "CS", "MONOCHROME2"),
		us(0x00280010, uint16(s.Rows)),
		us(0x00280011, uint16(s.Cols)),
		str(0x00280030, "DS", `0.7\0.7`),
		us(0x00280100, 16),
		us(0x00280101, 16),
		us(0x00280102, 15),
		us(0x00280103, 1),
		str(0x00281050, "DS", "40"),
		str(0x00281051, "DS", "400"),
		str(0x00281052, "DS", "0"),
		str(0x00281053, "DS", "1"),
		{0x7FE00010, "OW", pix},
	})
	_, err := w.Write(out.Bytes())
	return err
}

// Study is a generated study: its UIDs and instance count.
type Study struct {
	StudyUID, SeriesUID, PatientID string
	Instances                      int
	Seed                           uint64
}

// Slice returns the description of instance i (0-based) of the study.
func (st Study) Slice(i int) CTSlice {
	return CTSlice{
		StudyUID: st.StudyUID, SeriesUID: st.SeriesUID, PatientID: st.PatientID,
		SOPUID: fmt.Sprintf("%s.%d", st.SeriesUID, i+1), Index: i + 1, Seed: st.Seed,
	}
}

// NewStudy returns a study of n instances whose UIDs are unique per seed.
func NewStudy(n int, seed uint64) Study {
	root := fmt.Sprintf("2.25.%d", seed%1_000_000_000_000+1)
	return Study{StudyUID: root + ".1", SeriesUID: root + ".1.1", PatientID: fmt.Sprintf("BENCH%d", seed%100000), Instances: n, Seed: seed}
}
