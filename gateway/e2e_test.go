package gateway

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"dicomgate/bench/ctstudy"
	"dicomgate/gateway/store"
	"dicomgate/mis"
	"dicomgate/platform/appcert"
	"dicomgate/platform/blob"
	"dicomgate/platform/client"
	"dicomgate/platform/thing"
)

// writeStudy writes a study of two CT series (3 and 2 slices, 64×64) for
// one patient and returns its files.
func writeStudy(t *testing.T, dir, patientID string) (studyUID string, files []string) {
	t.Helper()
	studyUID = ctstudy.NewUID()
	for i, n := range []int{3, 2} {
		s, err := ctstudy.WriteSeries(filepath.Join(dir, "series", string(rune('a'+i))), ctstudy.Options{
			Instances: n, Rows: 64, Columns: 64, PatientID: patientID, StudyInstanceUID: studyUID, Seed: uint64(i + 1)})
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, s.Files...)
	}
	return studyUID, files
}

// TestStudyIntoRecord sends a multi-series study with DCMTK storescu: it
// ends as one medical image study thing in the patient's record whose
// blobs are the original files and their previews, with true hashes.
func TestStudyIntoRecord(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	pf := startPlatform(t, dir)
	gw := startGateway(t, dir, pf.client, Config{})
	if err := gw.gw.LinkPatient(ctx, store.PatientLink{ExternalID: "PAT-1", PersonID: pf.personID, RecordID: pf.recordID, AuthorizedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	studyUID, files := writeStudy(t, dir, "PAT-1")
	storescu(t, gw.addr, files...)

	st := waitState(t, gw.store, studyUID, 60*time.Second, store.StateDelivered, store.StateFailed)
	if st.State != store.StateDelivered || st.Instances != 5 || st.Delivered != 5 || st.ThingID == "" {
		t.Fatalf("study = %+v", st)
	}
	things := studyThings(t, pf.client, pf.recordID, studyUID)
	if len(things) != 1 {
		t.Fatalf("%d things for the study, want 1", len(things))
	}
	th := things[0]
	m, err := mis.ParseMIS(th.Data[0].Inner, mis.V2)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Series) != 2 || len(m.Series[0].Images)+len(m.Series[1].Images) != 5 || m.PreviewBlobName != studyUID+"_preview" {
		t.Fatalf("MIS: %d series, preview %q", len(m.Series), m.PreviewBlobName)
	}
	names := m.BlobNames()
	// 5 files + 5 thumbnails + 2 series previews + 1 study preview.
	if len(names) != 13 || len(th.BlobPayload.Blobs) != 13 {
		t.Fatalf("MIS names %d blobs, payload has %d; want 13", len(names), len(th.BlobPayload.Blobs))
	}
	originals := originalsOf(t, files)
	for _, b := range th.BlobPayload.Blobs {
		data, original := fetchBlob(t, pf.client, b, originals)
		if original {
			if b.Info.ContentType != "application/dicom" {
				t.Errorf("%s: content type %q", b.Info.Name, b.Info.ContentType)
			}
			continue
		}
		if !strings.HasSuffix(b.Info.Name, "_preview") || b.Info.ContentType != "image/jpeg" || !bytes.HasPrefix(data, []byte{0xFF, 0xD8}) {
			t.Errorf("blob %s (%s) is neither an original nor a JPEG preview", b.Info.Name, b.Info.ContentType)
		}
	}
}

// TestUnrenderableMiddleImage: the middle image of a series, the one its
// series preview and the study preview are rendered from, has pixels no
// renderer understands. The study is still delivered, that image without
// a thumbnail, and both previews come from a neighbouring image.
func TestUnrenderableMiddleImage(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	pf := startPlatform(t, dir)
	gw := startGateway(t, dir, pf.client, Config{})
	if err := gw.gw.LinkPatient(ctx, store.PatientLink{ExternalID: "PAT-M", PersonID: pf.personID, RecordID: pf.recordID, AuthorizedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	studyUID, files := writeStudy(t, dir, "PAT-M")
	// files[1] is the middle of the first series' three images. Same length,
	// so the element and file stay well formed; only the renderer refuses it.
	b, err := os.ReadFile(files[1])
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Count(b, []byte("MONOCHROME2")) != 1 {
		t.Fatal("test file has no single MONOCHROME2 to spoil")
	}
	if err := os.WriteFile(files[1], bytes.Replace(b, []byte("MONOCHROME2"), []byte("MONOCHROMEX"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	broken := sopOf(t, files[1])
	storescu(t, gw.addr, files...)

	st := waitState(t, gw.store, studyUID, 60*time.Second, store.StateDelivered, store.StateFailed)
	if st.State != store.StateDelivered || st.Delivered != 5 {
		t.Fatalf("study = %+v", st)
	}
	things := studyThings(t, pf.client, pf.recordID, studyUID)
	if len(things) != 1 {
		t.Fatalf("%d things for the study, want 1", len(things))
	}
	th := things[0]
	m, err := mis.ParseMIS(th.Data[0].Inner, mis.V2)
	if err != nil {
		t.Fatal(err)
	}
	// 5 files + 4 thumbnails + 2 series previews + 1 study preview.
	names := m.BlobNames()
	if len(names) != 12 || len(th.BlobPayload.Blobs) != 12 {
		t.Fatalf("MIS names %d blobs (%v), payload has %d; want 12", len(names), names, len(th.BlobPayload.Blobs))
	}
	want := map[string]bool{mis.PreviewName(studyUID): false}
	for _, se := range m.Series {
		want[mis.PreviewName(se.SeriesInstanceUID)] = false
	}
	for _, b := range th.BlobPayload.Blobs {
		if b.Info.Name == mis.PreviewName(broken) {
			t.Fatalf("the unrenderable image has a thumbnail %s", b.Info.Name)
		}
		if _, ok := want[b.Info.Name]; ok {
			data, _ := fetchBlob(t, pf.client, b, nil)
			if !bytes.HasPrefix(data, []byte{0xFF, 0xD8}) {
				t.Fatalf("%s is not a JPEG", b.Info.Name)
			}
			want[b.Info.Name] = true
		}
	}
	for name, seen := range want {
		if !seen {
			t.Errorf("preview %s missing", name)
		}
	}
}

func studyThings(t *testing.T, c *client.Client, recordID, studyUID string) []*thing.Thing {
	t.Helper()
	groups, err := c.GetThings(context.Background(), recordID, client.StudyQuery(mis.TypeIDV2, studyUID))
	if err != nil {
		t.Fatal(err)
	}
	var out []*thing.Thing
	for _, g := range groups {
		out = append(out, g.Things...)
	}
	return out
}

// originalsOf maps the SOP Instance UID of each file to the file.
func originalsOf(t *testing.T, files []string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, f := range files {
		m[sopOf(t, f)] = f
	}
	return m
}

// fetchBlob downloads a delivered blob and checks its SHA256Block hash and
// length. When it is one of the originals (by SOP Instance UID), its data
// set must be the original file's. It returns the blob's bytes and whether
// it is an original.
func fetchBlob(t *testing.T, c *client.Client, b thing.Blob, originals map[string]string) ([]byte, bool) {
	t.Helper()
	var buf bytes.Buffer
	if _, err := c.DownloadBlob(context.Background(), b.RefURL, &buf); err != nil {
		t.Fatalf("download %s: %v", b.Info.Name, err)
	}
	checkHash(t, b, buf.Bytes())
	orig, ok := originals[b.Info.Name]
	if ok {
		want, err := os.ReadFile(orig)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(dataSet(t, buf.Bytes()), dataSet(t, want)) {
			t.Errorf("%s: delivered data set differs from the original", b.Info.Name)
		}
	}
	return buf.Bytes(), ok
}

// checkHash recomputes a blob's SHA256Block hash from its bytes.
func checkHash(t *testing.T, b thing.Blob, data []byte) {
	t.Helper()
	hi := b.Info.HashInfo
	if hi == nil || hi.Algorithm != "SHA256Block" || hi.BlockSize() <= 0 {
		t.Fatalf("%s: hash-info %+v", b.Info.Name, hi)
	}
	h := blob.NewHasher(hi.BlockSize())
	h.Write(data)
	got, _ := h.RootBase64()
	if got != hi.Hash || b.Length() != int64(len(data)) {
		t.Fatalf("%s: hash %s length %d, declared %s length %d", b.Info.Name, got, len(data), hi.Hash, b.Length())
	}
	// The SPEC's one-block rule, checked independently of the hasher.
	if int64(len(data)) <= hi.BlockSize() {
		inner := sha256.Sum256(data)
		outer := sha256.Sum256(inner[:])
		if base64.StdEncoding.EncodeToString(outer[:]) != hi.Hash {
			t.Fatalf("%s: one-block hash is not SHA256(SHA256(data))", b.Info.Name)
		}
	}
}

// dataSet returns a Part 10 file's bytes after its meta information group.
func dataSet(t *testing.T, file []byte) []byte {
	t.Helper()
	if len(file) < 132+12 || string(file[128:132]) != "DICM" {
		t.Fatalf("not a Part 10 file (%d bytes)", len(file))
	}
	// (0002,0000) UL group length, explicit VR LE: tag(4) VR(2) len(2) value(4).
	n := int(file[140]) | int(file[141])<<8 | int(file[142])<<16 | int(file[143])<<24
	end := 144 + n
	if end > len(file) {
		t.Fatalf("meta group length %d beyond the file", n)
	}
	return file[end:]
}

func sopOf(t *testing.T, path string) string {
	t.Helper()
	in, err := mis.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return in.SOPInstanceUID
}

// TestLateSeriesUpdatesThing sends a series after the study was
// delivered: the same thing is updated (new version stamp), not duplicated,
// and images already there are not uploaded again.
func TestLateSeriesUpdatesThing(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	pf := startPlatform(t, dir)
	gw := startGateway(t, dir, pf.client, Config{})
	gw.gw.LinkPatient(ctx, store.PatientLink{ExternalID: "PAT-2", PersonID: pf.personID, RecordID: pf.recordID, AuthorizedAt: time.Now()})
	studyUID, files := writeStudy(t, dir, "PAT-2")
	storescu(t, gw.addr, files...)
	first := waitState(t, gw.store, studyUID, 60*time.Second, store.StateDelivered, store.StateFailed)
	if first.State != store.StateDelivered {
		t.Fatalf("first delivery: %+v", first)
	}
	late, err := ctstudy.WriteSeries(filepath.Join(dir, "late"), ctstudy.Options{Instances: 2, Rows: 32, Columns: 32,
		PatientID: "PAT-2", StudyInstanceUID: studyUID, Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	storescu(t, gw.addr, late.Files...)
	deadline := time.Now().Add(60 * time.Second)
	var second store.Study
	for time.Now().Before(deadline) {
		second, _ = gw.store.Study(ctx, studyUID)
		if second.State == store.StateDelivered && second.Delivered == 7 || second.State == store.StateFailed {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if second.State != store.StateDelivered || second.Delivered != 7 || second.ThingID != first.ThingID || second.VersionStamp == first.VersionStamp {
		t.Fatalf("after the late series: %+v (first thing %s version %s)", second, first.ThingID, first.VersionStamp)
	}
	things := studyThings(t, pf.client, pf.recordID, studyUID)
	if len(things) != 1 {
		t.Fatalf("%d things, want 1", len(things))
	}
	m, _ := mis.ParseMIS(things[0].Data[0].Inner, mis.V2)
	n := 0
	for _, se := range m.Series {
		n += len(se.Images)
	}
	// 7 files, 7 thumbnails, 3 series previews, 1 study preview.
	if len(m.Series) != 3 || n != 7 || len(things[0].BlobPayload.Blobs) != 18 {
		t.Fatalf("updated MIS: %d series, %d images, %d blobs", len(m.Series), n, len(things[0].BlobPayload.Blobs))
	}
	for _, b := range things[0].BlobPayload.Blobs {
		fetchBlob(t, pf.client, b, nil)
	}
}

// TestPlatformOutage sends a study while the platform is down: delivery
// attempts fail and are retried, and the study is delivered once the
// platform is back.
func TestPlatformOutage(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	pf := startPlatform(t, dir)
	pf.stop()
	gw := startGateway(t, dir, pf.client, Config{MaxAttempts: 200})
	gw.gw.LinkPatient(ctx, store.PatientLink{ExternalID: "PAT-3", PersonID: pf.personID, RecordID: pf.recordID, AuthorizedAt: time.Now()})
	studyUID, files := writeStudy(t, dir, "PAT-3")
	storescu(t, gw.addr, files...)
	// Wait for failed attempts while the platform is down.
	deadline := time.Now().Add(30 * time.Second)
	for {
		ev, _ := gw.store.Events(ctx, studyUID)
		failed := 0
		for _, e := range ev {
			if e.Kind == "attempt-failed" {
				failed++
			}
		}
		if failed >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failed attempts while the platform is down: %+v", ev)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st, _ := gw.store.Study(ctx, studyUID); st.State == store.StateDelivered || st.Error == "" {
		t.Fatalf("study during the outage: %+v", st)
	}
	pf.serve(t)
	st := waitState(t, gw.store, studyUID, 60*time.Second, store.StateDelivered, store.StateFailed)
	if st.State != store.StateDelivered || st.Error != "" {
		t.Fatalf("after the outage: %+v", st)
	}
	if n := len(studyThings(t, pf.client, pf.recordID, studyUID)); n != 1 {
		t.Fatalf("%d things, want 1", n)
	}
}

// TestPatientConnect invites a patient whose study waits for a mapping:
// once the patient accepts the request on the platform, the gateway's poll
// links the record and the study is delivered into it.
func TestPatientConnect(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	pf := startPlatform(t, dir)
	gw := startGateway(t, dir, pf.client, Config{ConnectPoll: 100 * time.Millisecond})
	studyUID, files := writeStudy(t, dir, "PAT-C")
	storescu(t, gw.addr, files...)
	waitState(t, gw.store, studyUID, 30*time.Second, store.StateWaitingPatient)

	code, err := gw.gw.InvitePatient(ctx, ConnectInvite{PatientID: "PAT-C", FriendlyName: "Jane", Email: "jane@example.org",
		Question: "Favourite colour?", Answer: "turquoise"})
	if err != nil {
		t.Fatal(err)
	}
	if err := pf.srv.Connect(ctx, code, "Turquoise", pf.personID, pf.recordID); err != nil {
		t.Fatalf("patient accepts: %v", err)
	}
	st := waitState(t, gw.store, studyUID, 60*time.Second, store.StateDelivered, store.StateFailed)
	if st.State != store.StateDelivered || st.RecordID != pf.recordID {
		t.Fatalf("study = %+v", st)
	}
	if n := len(studyThings(t, pf.client, pf.recordID, studyUID)); n != 1 {
		t.Fatalf("%d things, want 1", n)
	}
}

// TestSignedDelivery signs the study's thing (SPEC §8) with the gateway's
// certificate: the platform verifies it on PutThings, and the thing read
// back carries a signature that verifies with that certificate, for both
// RSA-SHA256 and RSA-SHA1.
func TestSignedDelivery(t *testing.T) {
	for _, h := range []crypto.Hash{crypto.SHA256, crypto.SHA1} {
		t.Run(h.String(), func(t *testing.T) {
			dir := t.TempDir()
			ctx := context.Background()
			pf := startPlatform(t, dir)
			creds, err := appcert.Load(filepath.Join(dir, "app"))
			if err != nil {
				t.Fatal(err)
			}
			gw := startGateway(t, dir, pf.client, Config{Signer: &Signer{Key: creds.Key, Cert: creds.Cert, Hash: h}})
			gw.gw.LinkPatient(ctx, store.PatientLink{ExternalID: "PAT-S", PersonID: pf.personID, RecordID: pf.recordID, AuthorizedAt: time.Now()})
			studyUID, files := writeStudy(t, dir, "PAT-S")
			storescu(t, gw.addr, files...)
			if st := waitState(t, gw.store, studyUID, 60*time.Second, store.StateDelivered, store.StateFailed); st.State != store.StateDelivered {
				t.Fatalf("study = %+v", st)
			}
			things := studyThings(t, pf.client, pf.recordID, studyUID)
			if len(things) != 1 || things[0].SignatureInfo == nil {
				t.Fatalf("%d things, signed: %v", len(things), len(things) == 1 && things[0].SignatureInfo != nil)
			}
			cert, err := thing.Verify(things[0])
			if err != nil || !cert.Equal(creds.Cert) {
				t.Fatalf("Verify = %v, %v", cert, err)
			}
			if items := things[0].SignatureInfo.SigData.BlobSignatureInfo; items == nil || len(items.Items) != 13 {
				t.Fatalf("blob-signature-info covers %v blobs, want 13", items)
			}
		})
	}
}
