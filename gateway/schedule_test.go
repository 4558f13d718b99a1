package gateway

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"dicomgate/gateway/store"
)

// TestNextCheck checks how long the scheduler sleeps: until the earliest
// quiet period ends when that comes before the regular check, never in a
// busy loop for a study already due.
func TestNextCheck(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	const limit = 250 * time.Millisecond
	tests := []struct {
		name    string
		readyAt []time.Duration // quiet-period ends of receiving studies, from now
		want    time.Duration
	}{
		{"no study receiving", nil, limit},
		{"quiet period ends before the regular check", []time.Duration{100 * time.Millisecond}, 101 * time.Millisecond},
		{"the earliest of several", []time.Duration{200 * time.Millisecond, 40 * time.Millisecond}, 41 * time.Millisecond},
		{"quiet period ends after the regular check", []time.Duration{time.Second}, limit},
		{"a study already due (its routing failed)", []time.Duration{-time.Second}, limit},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "gateway.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			for i, d := range tc.readyAt {
				uid := "1.2.3." + string(rune('1'+i))
				in := store.Instance{SOPInstanceUID: uid + ".1.1", SOPClassUID: "1.2.840.10008.5.1.4.1.1.2", StudyUID: uid,
					SeriesUID: uid + ".1", Path: "/nonexistent", ReceivedAt: now}
				if _, err := st.PutInstances(ctx, []store.NewInstance{{Instance: in, Facts: store.Study{PatientID: "P"}, ReadyAt: now.Add(d)}}); err != nil {
					t.Fatal(err)
				}
			}
			g, err := New(Config{Log: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }}, st, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := g.nextCheck(ctx, limit); got != tc.want {
				t.Fatalf("nextCheck = %v, want %v", got, tc.want)
			}
		})
	}
}
