package ctstudy

import (
	"bufio"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"dicomgate/dimse/dataset"
	"dicomgate/dimse/dicomtest"
)

func TestWriteSeries(t *testing.T) {
	dir := t.TempDir()
	s, err := WriteSeries(dir, Options{Instances: 3, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Files) != 3 || len(s.SOPInstanceUIDs) != 3 {
		t.Fatalf("series %+v", s)
	}
	seen := map[string]bool{s.StudyInstanceUID: true, s.SeriesInstanceUID: true}
	for i, f := range s.Files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(fh)
		m, _, err := dataset.ReadFileMeta(br)
		if err != nil {
			t.Fatal(err)
		}
		sum, err := dataset.Walk(br, dataset.Encoding{})
		fh.Close()
		if err != nil {
			t.Fatal(err)
		}
		if m.MediaStorageSOPInstanceUID != s.SOPInstanceUIDs[i] || sum.SOPInstanceUID != s.SOPInstanceUIDs[i] ||
			sum.SOPClassUID != CTImageStorage || sum.StudyInstanceUID != s.StudyInstanceUID || sum.SeriesInstanceUID != s.SeriesInstanceUID {
			t.Fatalf("instance %d: meta %+v data set %+v", i, m, sum)
		}
		if seen[sum.SOPInstanceUID] {
			t.Fatalf("UID %s reused", sum.SOPInstanceUID)
		}
		seen[sum.SOPInstanceUID] = true
		if fi, _ := os.Stat(f); fi.Size() < 512*512*2 {
			t.Fatalf("%s is %d bytes", f, fi.Size())
		}
	}
	// DCMTK must read it as a CT image with sane values.
	t.Run("dcmdump", func(t *testing.T) {
		out, err := dicomtest.Command(dicomtest.LookPath(t, "dcmdump"), "-q", s.Files[1]).CombinedOutput()
		if err != nil {
			t.Fatalf("dcmdump: %v\n%s", err, out)
		}
		for _, want := range []string{"(0028,1050) DS [40]", "(0028,1051) DS [400]", "(0028,1052) DS [-1024]", "(0028,0103) US 1", "(0020,0013) IS [2]"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("dcmdump lacks %q", want)
			}
		}
	})
}

func TestPixelsLookLikeCT(t *testing.T) {
	o := Options{Seed: 3}
	o.defaults()
	row := make([]byte, o.Columns*2)
	var air, tissue int
	for y := range o.Rows {
		fillRow(row, &o, 0, y, mrand.New(mrand.NewPCG(1, 2)))
		for x := 0; x < o.Columns; x++ {
			hu := int(int16(uint16(row[2*x])|uint16(row[2*x+1])<<8)) - 1024
			switch {
			case hu < -900:
				air++
			case hu > -50 && hu < 150:
				tissue++
			}
		}
	}
	total := o.Rows * o.Columns
	if air < total/5 || tissue < total/8 {
		t.Fatalf("air %d, soft tissue %d of %d pixels", air, tissue, total)
	}
}

func TestWriteMultiFrameStreams(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mf.dcm")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	uid, err := WriteMultiFrame(f, Options{}, 4)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	br := bufio.NewReader(fh)
	if _, _, err := dataset.ReadFileMeta(br); err != nil {
		t.Fatal(err)
	}
	sum, err := dataset.Walk(br, dataset.Encoding{})
	if err != nil || sum.SOPInstanceUID != uid || sum.SOPClassUID != MultiFrameGrayscaleWordSC {
		t.Fatalf("%+v %v", sum, err)
	}
	if fi, _ := fh.Stat(); fi.Size() < 4*512*512*2 {
		t.Fatalf("size %d", fi.Size())
	}
	if _, err := WriteMultiFrame(io.Discard, Options{}, 9000); err == nil {
		t.Fatal("over-long pixel data accepted")
	}
}
