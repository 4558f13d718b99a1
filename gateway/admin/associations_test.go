package admin_test

import (
	"bufio"
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"dicomgate/dimse"
	"dicomgate/dimse/dataset"
	"dicomgate/dimse/dicomtest"
	"dicomgate/gateway/admin"
	"dicomgate/gateway/store"
)

// listenerAssociations shows a real DICOM listener's associations, as
// serve's adapter does.
type listenerAssociations struct{ srv *dimse.Server }

func (l listenerAssociations) Associations() []admin.AssociationSnapshot {
	var out []admin.AssociationSnapshot
	for _, a := range l.srv.Associations() {
		out = append(out, admin.AssociationSnapshot{Peer: a.RemoteAddr, CallingAE: a.CallingAETitle, CalledAE: a.CalledAETitle,
			Instances: int(a.Instances), Since: a.Since})
	}
	return out
}

// TestDashboardLiveAssociations opens a real association to the DICOM
// listener, stores an instance through the gateway and sees the dashboard
// list it with its count, then not after release.
func TestDashboardLiveAssociations(t *testing.T) {
	path := dicomtest.PydicomFile(t, "CT_small.dcm")
	dsrv := &dimse.Server{AETitle: "DICOMGATE"}
	e := newEnv(t, func(_ *env, _ *gatewayConfig, c *admin.Config) { c.Associations = listenerAssociations{dsrv} })
	dsrv.Handler = e.gw
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { dsrv.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	e.user("alice", store.RoleStaff)
	b := e.signIn("alice")
	mustContain(t, b.get("/fragments/dashboard", "HX-Request", "true"), `id="no-associations"`)

	// CT_small.dcm's data set, as the modality sends it.
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	meta, n, err := dataset.ReadFileMeta(br)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	c, err := dimse.Dial(ctx, ln.Addr().String(), dimse.ClientConfig{CallingAETitle: "MODALITY_CT", CalledAETitle: "DICOMGATE"},
		[]dimse.ContextProposal{{AbstractSyntax: meta.MediaStorageSOPClassUID, TransferSyntaxes: []string{meta.TransferSyntaxUID}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Store(ctx, meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID, meta.TransferSyntaxUID, br, fi.Size()-n); err != nil {
		t.Fatal(err)
	}
	r := b.get("/fragments/dashboard", "HX-Request", "true")
	mustContain(t, r, `id="associations"`, "MODALITY_CT", "DICOMGATE", `<td class="num">1</td>`, "127.0.0.1:")
	if err := c.Release(); err != nil {
		t.Fatal(err)
	}
	// The association is gone once the server has seen the release.
	for i := 0; ; i++ {
		r = b.get("/fragments/dashboard", "HX-Request", "true")
		if strings.Contains(r.body, `id="no-associations"`) {
			break
		}
		if i == 200 {
			t.Fatalf("association still listed after release:\n%s", r.body)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
