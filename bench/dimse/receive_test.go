// Package dimsebench holds Go benchmarks of dicomgate's DICOM network layer;
// run.sh next to it compares the binaries with DCMTK.
package dimsebench

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"

	"dicomgate/bench/ctstudy"
	"dicomgate/dimse"
	"dicomgate/dimse/dataset"
	"dicomgate/dimse/spool"
)

type instance struct {
	path         string
	class, uid   string
	offset, size int64
}

func series(b *testing.B, n int) []instance {
	b.Helper()
	s, err := ctstudy.WriteSeries(b.TempDir(), ctstudy.Options{Instances: n})
	if err != nil {
		b.Fatal(err)
	}
	var out []instance
	for i, p := range s.Files {
		f, err := os.Open(p)
		if err != nil {
			b.Fatal(err)
		}
		_, off, err := dataset.ReadFileMeta(bufio.NewReader(f))
		fi, _ := f.Stat()
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, instance{path: p, class: ctstudy.CTImageStorage, uid: s.SOPInstanceUIDs[i], offset: off, size: fi.Size() - off})
	}
	return out
}

// BenchmarkReceiveCT measures C-STORE of 512x512 16-bit CT instances from
// dimse.Client into a Server with the synced spool, over loopback TCP, one
// association; b.N instances. Reported: instances/s and MB/s.
func BenchmarkReceiveCT(b *testing.B) {
	insts := series(b, 64)
	sp, err := spool.Open(b.TempDir(), dimse.ImplementationClassUID, dimse.ImplementationVersionName)
	if err != nil {
		b.Fatal(err)
	}
	srv := &dimse.Server{AETitle: "DICOMGATE", Handler: dimse.SpoolHandler(sp)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = srv.Serve(ctx, ln) }()
	c, err := dimse.Dial(ctx, ln.Addr().String(), dimse.ClientConfig{CalledAETitle: "DICOMGATE"},
		[]dimse.ContextProposal{{AbstractSyntax: ctstudy.CTImageStorage, TransferSyntaxes: []string{dataset.ExplicitVRLittleEndian}}})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = c.Release() }()
	b.SetBytes(insts[0].size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		in := insts[i%len(insts)]
		if i >= len(insts) && i%len(insts) == 0 {
			b.StopTimer()
			files, _ := filepath.Glob(filepath.Join(sp.Dir(), "*"))
			for _, f := range files {
				_ = os.Remove(f)
			}
			b.StartTimer()
		}
		f, err := os.Open(in.path)
		if err != nil {
			b.Fatal(err)
		}
		err = c.Store(ctx, in.class, in.uid, dataset.ExplicitVRLittleEndian, io.NewSectionReader(f, in.offset, in.size), in.size)
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "instances/s")
}
