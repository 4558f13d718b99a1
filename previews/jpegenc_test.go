package previews

import (
	"bytes"
	"image"
	stdjpeg "image/jpeg"
	"math"
	"math/rand/v2"
	"testing"

	"dicomgate/dimse/dicomtest"
)

// TestFDCT checks the AAN DCT against the DCT-II definition (T.81 A.3.3)
// once its output scale factors are removed.
func TestFDCT(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 20; trial++ {
		var blk [64]float32
		var in [64]float64
		for i := range blk {
			in[i] = float64(rng.IntN(256) - 128)
			blk[i] = float32(in[i])
		}
		fdct(&blk)
		for u := 0; u < 8; u++ {
			for v := 0; v < 8; v++ {
				var sum float64
				for y := 0; y < 8; y++ {
					for x := 0; x < 8; x++ {
						sum += in[y*8+x] * math.Cos(float64(2*x+1)*float64(v)*math.Pi/16) * math.Cos(float64(2*y+1)*float64(u)*math.Pi/16)
					}
				}
				cu, cv := 1.0, 1.0
				if u == 0 {
					cu = 1 / math.Sqrt2
				}
				if v == 0 {
					cv = 1 / math.Sqrt2
				}
				want := sum * cu * cv / 4
				got := float64(blk[u*8+v]) / (aanScale[u] * aanScale[v] * 8)
				if math.Abs(got-want) > 1e-2 {
					t.Fatalf("trial %d coefficient (%d,%d): got %.4f, want %.4f", trial, u, v, got, want)
				}
			}
		}
	}
}

// testGray is a smooth image with an edge and noise, like a CT render.
func testGray(w, h int) *image.Gray {
	rng := rand.New(rand.NewPCG(3, 4))
	img := image.NewGray(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			v := 128 + 80*math.Sin(float64(x)/9)*math.Cos(float64(y)/13) + rng.NormFloat64()*4
			if x > w/2 && y > h/3 {
				v += 40
			}
			img.Pix[y*img.Stride+x] = uint8(min(max(v, 0), 255))
		}
	}
	return img
}

func grayPSNR(a, b *image.Gray) float64 {
	var sum float64
	w, h := a.Bounds().Dx(), a.Bounds().Dy()
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			d := float64(a.GrayAt(x, y).Y) - float64(b.GrayAt(x, y).Y)
			sum += d * d
		}
	}
	return dicomtest.PSNR(sum, w*h, 8)
}

// TestEncodeGrayJPEG decodes the encoder's output with image/jpeg: sizes
// that are not multiples of 8, every quality from coarse to fine, and a
// quality no worse than image/jpeg's own encoder at the same setting.
func TestEncodeGrayJPEG(t *testing.T) {
	for _, c := range []struct{ w, h, q int }{{256, 256, 85}, {17, 9, 85}, {1, 1, 85}, {100, 37, 50}, {64, 64, 100}, {64, 64, 5}} {
		src := testGray(c.w, c.h)
		var ours, std bytes.Buffer
		if err := encodeGrayJPEG(&ours, src, c.q); err != nil {
			t.Fatal(err)
		}
		if err := stdjpeg.Encode(&std, src, &stdjpeg.Options{Quality: c.q}); err != nil {
			t.Fatal(err)
		}
		dec, err := stdjpeg.Decode(bytes.NewReader(ours.Bytes()))
		if err != nil {
			t.Fatalf("%dx%d q%d: decode: %v", c.w, c.h, c.q, err)
		}
		g, ok := dec.(*image.Gray)
		if !ok || g.Bounds().Dx() != c.w || g.Bounds().Dy() != c.h {
			t.Fatalf("%dx%d q%d: decoded %T %v", c.w, c.h, c.q, dec, dec.Bounds())
		}
		stdDec, _ := stdjpeg.Decode(bytes.NewReader(std.Bytes()))
		pOurs, pStd := grayPSNR(src, g), grayPSNR(src, stdDec.(*image.Gray))
		if pOurs < pStd-0.5 {
			t.Errorf("%dx%d q%d: PSNR %.2f dB, image/jpeg gets %.2f dB", c.w, c.h, c.q, pOurs, pStd)
		}
		if c.q >= 85 && pOurs < 35 {
			t.Errorf("%dx%d q%d: PSNR %.2f dB, want >= 35", c.w, c.h, c.q, pOurs)
		}
	}
}

func BenchmarkEncodeGrayJPEG(b *testing.B) {
	src := testGray(256, 256)
	b.Run("previews", func(b *testing.B) {
		for b.Loop() {
			if err := encodeGrayJPEG(&bytes.Buffer{}, src, 85); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("image-jpeg", func(b *testing.B) {
		for b.Loop() {
			if err := stdjpeg.Encode(&bytes.Buffer{}, src, &stdjpeg.Options{Quality: 85}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
