package gateway

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"dicomgate/bench/ctstudy"
	"dicomgate/gateway/store"
	"dicomgate/mis"
	"dicomgate/platform/thing"
)

// BenchmarkStudyBlobs plans and produces every blob of a study (files
// streamed, previews rendered and encoded) as a delivery does, into a sink
// that reads and drops them: the gateway's own work per delivered study,
// without the platform's. A radiograph-like study (two series of one large
// image) is where previews dominate; a CT series is where files do.
func BenchmarkStudyBlobs(b *testing.B) {
	for _, bc := range []struct {
		name                string
		series, perSeries   int
		rows, columns, want int
	}{
		{"DX-2x1-2048", 2, 1, 2048, 2048, 7},
		{"CT-1x20-512", 1, 20, 512, 512, 42},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			dir := b.TempDir()
			st, err := store.OpenSQLite(ctx, filepath.Join(dir, "gateway.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			g, err := New(Config{Log: slog.New(slog.DiscardHandler)}, st, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			studyUID := ctstudy.NewUID()
			var ins []store.Instance
			for i := range bc.series {
				s, err := ctstudy.WriteSeries(filepath.Join(dir, "in", string(rune('a'+i))), ctstudy.Options{Instances: bc.perSeries,
					Rows: bc.rows, Columns: bc.columns, StudyInstanceUID: studyUID, Seed: uint64(i + 1)})
				if err != nil {
					b.Fatal(err)
				}
				for _, path := range s.Files {
					f, err := mis.ReadFile(path)
					if err != nil {
						b.Fatal(err)
					}
					raw, _ := json.Marshal(f)
					ins = append(ins, store.Instance{SOPInstanceUID: f.SOPInstanceUID, StudyUID: studyUID, Path: path, Facts: raw})
				}
			}
			in := ins[0]
			in.ReceivedAt = time.Now()
			if _, err := st.PutInstances(ctx, []store.NewInstance{{Instance: in}}); err != nil {
				b.Fatal(err)
			}
			study := store.Study{StudyUID: studyUID}
			sink := func(_ context.Context, _, _ string, r io.Reader) (thing.Blob, error) {
				_, err := io.Copy(io.Discard, r)
				return thing.Blob{}, err
			}
			b.ResetTimer()
			for range b.N {
				fs, err := facts(ins)
				if err != nil {
					b.Fatal(err)
				}
				done := map[string]store.UploadedBlob{}
				if err := g.uploadWith(ctx, study, g.plan(ins, fs), fs, done, sink, false); err != nil {
					b.Fatal(err)
				}
				if len(done) != bc.want {
					b.Fatalf("%d blobs, want %d", len(done), bc.want)
				}
			}
		})
	}
}
