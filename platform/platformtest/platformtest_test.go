package platformtest_test

import (
	"bytes"
	"context"
	"testing"

	"dicomgate/platform/client"
	"dicomgate/platform/platformtest"
	"dicomgate/platform/thing"
)

func TestStart(t *testing.T) {
	p := platformtest.Start(t, platformtest.Options{ChunkSize: 1024})
	ctx := context.Background()
	data := bytes.Repeat([]byte("dicom"), 1000)
	b, err := p.Client.UploadBlob(ctx, p.RecordID, "1.2.3", "application/dicom", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	st := &thing.Thing{Type: &thing.TypeID{ID: "c75651c8-548e-449f-8942-9e6379b0b88a"}}
	st.SetData([]byte(`<medical-image-study><study-instance-uid>1.2</study-instance-uid></medical-image-study>`))
	st.SetBlob(b)
	if _, err := p.Client.PutThings(ctx, p.RecordID, st); err != nil {
		t.Fatal(err)
	}
	groups, err := p.Client.GetThings(ctx, p.RecordID, client.StudyQuery("c75651c8-548e-449f-8942-9e6379b0b88a", "1.2"))
	if err != nil || len(groups) != 1 || len(groups[0].Things) != 1 {
		t.Fatalf("%+v, %v", groups, err)
	}
	var got bytes.Buffer
	if _, err := p.Client.DownloadBlob(ctx, groups[0].Things[0].Blob("1.2.3").RefURL, &got); err != nil || !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("download: %v", err)
	}
	if other := p.NewRecord(t, "other", false); other == p.RecordID {
		t.Fatal("same record twice")
	}
}
