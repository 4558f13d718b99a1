package admin_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"dicomgate/gateway/store"
)

// BenchmarkDashboardFragment measures what every open dashboard asks for
// every 2 s: the live fragment, listing 200 studies.
func BenchmarkDashboardFragment(b *testing.B) {
	e := newEnv(b)
	now := time.Now()
	batch := make([]store.NewInstance, 200)
	for i := range batch {
		study := fmt.Sprintf("1.2.826.0.1.3680043.10.1.%d", i)
		batch[i] = store.NewInstance{
			Instance: store.Instance{SOPInstanceUID: study + ".1.1", SOPClassUID: "1.2.840.10008.5.1.4.1.1.2", StudyUID: study,
				SeriesUID: study + ".1", TransferSyntax: "1.2.840.10008.1.2.1", Path: "/nonexistent", CallingAE: "CT1", ReceivedAt: now, Facts: []byte("{}")},
			Facts: store.Study{StudyUID: study, PatientID: fmt.Sprintf("P%d", i), PatientName: "Doe^Jane", StudyDescription: "CT of the chest",
				Modalities: []string{"CT"}, CallingAE: "CT1"},
			ReadyAt: now.Add(time.Hour),
		}
	}
	if _, err := e.db.PutInstances(context.Background(), batch); err != nil {
		b.Fatal(err)
	}
	e.user("alice", store.RoleStaff)
	br := e.signIn("alice")
	b.ReportAllocs()
	for b.Loop() {
		if r := br.get("/fragments/dashboard", "HX-Request", "true"); r.code != http.StatusOK {
			b.Fatalf("fragment: %d", r.code)
		}
	}
}
