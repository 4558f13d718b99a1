package dimse

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"dicomgate/dimse/dataset"
)

// TestAssociations follows two real associations through Associations:
// listed once established, counting only instances stored successfully,
// and gone after release or abort. A rejected association never shows.
func TestAssociations(t *testing.T) {
	ts := startServer(t, nil)
	if got := ts.srv.Associations(); len(got) != 0 {
		t.Fatalf("associations before any peer: %+v", got)
	}
	ds := seedDataSet(t, "explicit-le-undefined-seq.dset")
	prop := ContextProposal{AbstractSyntax: seedClass, TransferSyntaxes: []string{dataset.ExplicitVRLittleEndian}}
	store := func(c *Client, instance string, data []byte) error {
		return c.Store(context.Background(), seedClass, instance, dataset.ExplicitVRLittleEndian, bytes.NewReader(data), int64(len(data)))
	}

	before := time.Now()
	ct := dial(t, ts.addr, ClientConfig{CallingAETitle: "MODALITY_CT"}, prop)
	// The second store is a duplicate, acknowledged (and counted) too.
	for range 2 {
		if err := store(ct, seedInstance, ds); err != nil {
			t.Fatal(err)
		}
	}
	// A C-STORE the server refuses (truncated data set) is not counted.
	if err := store(ct, "2.25.2", ds[:len(ds)-5]); err == nil {
		t.Fatal("truncated data set stored")
	}
	time.Sleep(5 * time.Millisecond) // order the two associations' Since
	mr := dial(t, ts.addr, ClientConfig{CallingAETitle: "MODALITY_MR"})
	if err := mr.Echo(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A rejected association (wrong called AE title) is not listed.
	if _, err := Dial(context.Background(), ts.addr, ClientConfig{CalledAETitle: "SOMEONE_ELSE"}, []ContextProposal{prop}); err == nil {
		t.Fatal("wrong called AE title accepted")
	}

	got := ts.srv.Associations()
	if len(got) != 2 {
		t.Fatalf("associations = %+v, want 2", got)
	}
	if got[0].RemoteAddr == got[1].RemoteAddr {
		t.Errorf("two associations from one address %s", got[0].RemoteAddr)
	}
	want := []LiveAssociation{
		{CallingAETitle: "MODALITY_CT", CalledAETitle: "DICOMGATE", Instances: 2},
		{CallingAETitle: "MODALITY_MR", CalledAETitle: "DICOMGATE", Instances: 0},
	}
	for i, w := range want {
		g := got[i]
		if g.Since.Before(before) || g.Since.After(time.Now()) {
			t.Errorf("association %d: since %v, not during the test", i, g.Since)
		}
		if !strings.HasPrefix(g.RemoteAddr, "127.0.0.1:") {
			t.Errorf("association %d: peer %q", i, g.RemoteAddr)
		}
		g.Since, g.RemoteAddr = time.Time{}, ""
		if g != w {
			t.Errorf("association %d = %+v, want %+v", i, g, w)
		}
	}

	if err := ct.Release(); err != nil {
		t.Fatal(err)
	}
	mr.Abort()
	deadline := time.Now().Add(5 * time.Second)
	for len(ts.srv.Associations()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("associations after release and abort: %+v", ts.srv.Associations())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestAssociationsAfterShutdown: once the server has aborted its
// associations, one accepted a moment later is refused rather than left
// running (Serve would wait for it).
func TestAssociationsAfterShutdown(t *testing.T) {
	var l liveAssociations
	la, ok := l.add(nil, AssociationInfo{})
	if !ok {
		t.Fatal("association refused before shutdown")
	}
	l.remove(la) // abortAll would abort it, and there is no association behind
	l.abortAll()
	if la, ok := l.add(nil, AssociationInfo{}); ok || la != nil {
		t.Fatal("association recorded after shutdown")
	}
}

// BenchmarkLiveCount measures what the C-STORE path pays for the live
// association counter.
func BenchmarkLiveCount(b *testing.B) {
	var l liveAssociations
	la, _ := l.add(nil, AssociationInfo{CallingAETitle: "BENCH"})
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			la.stored()
		}
	})
}
