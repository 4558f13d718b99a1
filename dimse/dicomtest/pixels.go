package dicomtest

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// Frame start markers for Pixels.Frames: the first bytes of a compressed
// frame, which tell where a frame split over several fragments ends.
const (
	// StartJPEG is the SOI marker of JPEG (ITU-T T.81) and JPEG-LS (T.87).
	StartJPEG = "\xFF\xD8"
	// StartJPEG2000 is the SOC marker of a JPEG 2000 codestream (T.800 A.4.1).
	StartJPEG2000 = "\xFF\x4F"
	// StartNone is for RLE, whose frames are one fragment each (PS3.5 A.4.2).
	StartNone = ""
)

// Pixels is what a codec comparison needs from a DICOM file: the Image Pixel
// module's description (PS3.3 C.7.6.3) and the Pixel Data value.
type Pixels struct {
	Path                                          string // the file, for messages
	Rows, Columns, SamplesPerPixel, BitsAllocated int
	PlanarConfiguration, NumberOfFrames           int
	// Fragments are the items of encapsulated Pixel Data after the Basic
	// Offset Table (PS3.5 A.4); nil for native Pixel Data.
	Fragments [][]byte
	// Native is the value of native Pixel Data, as stored.
	Native []byte
}

// ReadPixels parses the DICOM file at path with suyashkumar/dicom and
// returns its pixels, failing the test when it cannot.
func ReadPixels(t testing.TB, path string) Pixels {
	t.Helper()
	ds, err := dicom.ParseFile(path, nil, dicom.SkipProcessingPixelDataValue())
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	p := Pixels{
		Path:                path,
		Rows:                intOf(&ds, tag.Rows, 0),
		Columns:             intOf(&ds, tag.Columns, 0),
		SamplesPerPixel:     intOf(&ds, tag.SamplesPerPixel, 1),
		BitsAllocated:       intOf(&ds, tag.BitsAllocated, 0),
		PlanarConfiguration: intOf(&ds, tag.PlanarConfiguration, 0),
		NumberOfFrames:      intOf(&ds, tag.NumberOfFrames, 1),
	}
	e, err := ds.FindElementByTag(tag.PixelData)
	if err != nil {
		t.Fatalf("%s: no pixel data: %v", path, err)
	}
	info, ok := e.Value.GetValue().(dicom.PixelDataInfo)
	if !ok {
		t.Fatalf("%s: pixel data value %T", path, e.Value.GetValue())
	}
	if info.IntentionallyUnprocessed {
		p.Native = info.UnprocessedValueData
		return p
	}
	for _, f := range info.Frames {
		p.Fragments = append(p.Fragments, f.EncapsulatedData.Data)
	}
	return p
}

// intOf returns the first value of an US or IS element, or def.
func intOf(ds *dicom.Dataset, tg tag.Tag, def int) int {
	e, err := ds.FindElementByTag(tg)
	if err != nil {
		return def
	}
	switch v := e.Value.GetValue().(type) {
	case []int:
		if len(v) > 0 {
			return v[0]
		}
	case []string:
		if len(v) > 0 {
			if n, err := strconv.Atoi(strings.TrimSpace(v[0])); err == nil {
				return n
			}
		}
	}
	return def
}

// Frames returns one compressed bitstream per frame of encapsulated Pixel
// Data: the fragments themselves when there is one per frame; otherwise a
// frame starts at the first fragment and at each fragment beginning with
// start, and takes the fragments up to the next. With StartNone the counts
// must match. It fails the test when the file is not encapsulated or the
// fragments do not make NumberOfFrames frames.
func (p Pixels) Frames(t testing.TB, start string) [][]byte {
	t.Helper()
	frames, err := groupFragments(p.Fragments, p.NumberOfFrames, start)
	if err != nil {
		t.Fatalf("%s: %v", p.Path, err)
	}
	return frames
}

func groupFragments(frags [][]byte, frames int, start string) ([][]byte, error) {
	if len(frags) == 0 {
		return nil, errors.New("pixel data not encapsulated")
	}
	if len(frags) == frames {
		return frags, nil
	}
	if start == StartNone {
		return nil, fmt.Errorf("need one fragment per frame: %d fragments for %d frames", len(frags), frames)
	}
	var out [][]byte
	for _, f := range frags {
		if strings.HasPrefix(string(f), start) || len(out) == 0 {
			out = append(out, append([]byte(nil), f...))
			continue
		}
		out[len(out)-1] = append(out[len(out)-1], f...)
	}
	if len(out) != frames {
		return nil, fmt.Errorf("cannot split %d fragments into %d frames", len(frags), frames)
	}
	return out, nil
}

// NativeSamples returns frame f of little-endian native Pixel Data of 8 or
// 16 bits allocated as samples, interleaved (colour-by-pixel) whatever the
// file's planar configuration.
func (p Pixels) NativeSamples(f int) ([]uint16, error) {
	bps := p.BitsAllocated / 8
	n := p.Rows * p.Columns * p.SamplesPerPixel
	off := f * n * bps
	if bps < 1 || bps > 2 || f < 0 || off+n*bps > len(p.Native) {
		return nil, fmt.Errorf("%s: native data of %d bytes too short for frame %d (%d bytes/sample)", p.Path, len(p.Native), f, bps)
	}
	raw := p.Native[off : off+n*bps]
	out := make([]uint16, n)
	px := p.Rows * p.Columns
	for i := range out {
		src := i
		if p.PlanarConfiguration == 1 && p.SamplesPerPixel > 1 {
			src = (i%p.SamplesPerPixel)*px + i/p.SamplesPerPixel
		}
		if bps == 1 {
			out[i] = uint16(raw[src])
		} else {
			out[i] = uint16(raw[2*src]) | uint16(raw[2*src+1])<<8
		}
	}
	return out, nil
}

// PSNR returns the peak signal-to-noise ratio, in dB, of n samples of bits
// precision whose squared differences from their reference sum to sse:
// +Inf when they are identical.
func PSNR(sse float64, n, bits int) float64 {
	if sse == 0 {
		return math.Inf(1)
	}
	peak := float64(int(1)<<bits - 1)
	return 10 * math.Log10(peak*peak*float64(n)/sse)
}
