package server_test

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"dicomgate/platform/client"
	"dicomgate/platform/thing"
	"dicomgate/platform/wire"
)

const misType = "c75651c8-548e-449f-8942-9e6379b0b88a"

func studyXML(uid, desc string) []byte {
	return []byte(`<medical-image-study><when><date><y>2026</y><m>5</m><d>4</d></date></when>` +
		`<patient-name>Doe^Jane</patient-name><description>` + desc + `</description>` +
		`<series><acquisition-datetime><date><y>2026</y><m>5</m><d>4</d></date></acquisition-datetime>` +
		`<images><image-blob-name>1.2.3.4.1</image-blob-name></images></series>` +
		`<preview-blob-name>preview</preview-blob-name><study-instance-uid>` + uid + `</study-instance-uid>` +
		`</medical-image-study><common><note>test</note></common>`)
}

func newStudy(uid, desc string, blobs ...thing.Blob) *thing.Thing {
	t := &thing.Thing{Type: &thing.TypeID{ID: misType}, State: thing.StateActive}
	t.SetData(studyXML(uid, desc))
	for _, b := range blobs {
		t.SetBlob(b)
	}
	return t
}

func wantCode(t *testing.T, err error, code wire.Code) {
	t.Helper()
	if got := wire.CodeOf(err); got != code {
		t.Fatalf("status = %v (%v), want %v", got, err, code)
	}
	var we *wire.Error
	if errors.As(err, &we) && we.Message == "" {
		t.Fatalf("error %v has no message", err)
	}
}

func (e *env) upload(data []byte, name, ct string) thing.Blob {
	e.t.Helper()
	b, err := e.client.UploadBlob(context.Background(), e.record, name, ct, bytes.NewReader(data))
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

func (e *env) download(url string) []byte {
	e.t.Helper()
	var buf bytes.Buffer
	if _, err := e.client.DownloadBlob(context.Background(), url, &buf); err != nil {
		e.t.Fatal(err)
	}
	return buf.Bytes()
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed
	}
	return b
}

func TestThingLifecycle(t *testing.T) { testThingLifecycle(t, newEnv(t)) }

func testThingLifecycle(t *testing.T, e *env) {
	ctx := context.Background()
	dicom := pattern(3*testChunk+5, 1)
	preview := pattern(testChunk, 2)
	study := newStudy("1.2.840.1", "CT head", e.upload(dicom, "1.2.3.4.1", "application/dicom"), e.upload(preview, "preview", "image/jpeg"))
	keys, err := e.client.PutThings(ctx, e.record, study, newStudy("1.2.840.2", "other"))
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0].ID == "" || keys[0].VersionStamp == "" {
		t.Fatalf("keys = %+v", keys)
	}

	groups, err := e.client.GetThings(ctx, e.record, client.StudyQuery(misType, "1.2.840.1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 1 || len(groups[0].Things) != 1 {
		t.Fatalf("groups = %+v", groups)
	}
	got := groups[0].Things[0]
	if got.Key.ID != keys[0].ID || got.Key.VersionStamp != keys[0].VersionStamp || got.State != thing.StateActive {
		t.Fatalf("thing = %+v", got)
	}
	if !bytes.Equal(got.TypeSpecific(), studyXML("1.2.840.1", "CT head")) {
		t.Fatalf("data-xml changed:\n%s", got.TypeSpecific())
	}
	for name, want := range map[string][]byte{"1.2.3.4.1": dicom, "preview": preview} {
		b := got.Blob(name)
		if b == nil || b.RefURL == "" || b.Length() != int64(len(want)) || b.Info.HashInfo == nil {
			t.Fatalf("blob %q = %+v", name, b)
		}
		if data := e.download(b.RefURL); !bytes.Equal(data, want) {
			t.Fatalf("blob %q: downloaded %d bytes differ", name, len(data))
		}
	}

	// Update against the current version stamp, then a stale update.
	upd := newStudy("1.2.840.1", "CT head, revised")
	upd.Key = got.Key
	upd.BlobPayload = got.BlobPayload // sent back as GetThings returned it (read URLs)
	nk, err := e.client.PutThings(ctx, e.record, upd)
	if err != nil {
		t.Fatal(err)
	}
	if nk[0].ID != got.Key.ID || nk[0].VersionStamp == got.Key.VersionStamp {
		t.Fatalf("update key = %+v", nk[0])
	}
	_, err = e.client.PutThings(ctx, e.record, upd)
	wantCode(t, err, wire.VersionStampMismatch)

	// Paging: one full thing, the other as a partial thing.
	one := 1
	groups, err = e.client.GetThings(ctx, e.record, wire.ThingRequestGroup{
		MaxFull: &one,
		Filters: []wire.ThingFilter{{TypeIDs: []string{misType}}},
		Format:  wire.ThingFormat{Sections: []string{wire.SectionCore}, XML: []string{""}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(groups[0].Things) != 1 || len(groups[0].Unprocessed) != 1 {
		t.Fatalf("paging: %d full, %d partial", len(groups[0].Things), len(groups[0].Unprocessed))
	}
	partial := groups[0].Unprocessed[0].Key
	groups, err = e.client.GetThings(ctx, e.record, wire.ThingRequestGroup{
		Keys: []thing.Key{partial}, Format: wire.ThingFormat{Sections: []string{wire.SectionCore}},
	})
	if err != nil || len(groups[0].Things) != 1 || groups[0].Things[0].Key.ID != partial.ID {
		t.Fatalf("fetching partial thing: %+v, %v", groups, err)
	}

	// Remove: gone from the default (Active) query, present as Deleted.
	if err := e.client.RemoveThings(ctx, e.record, nk[0]); err != nil {
		t.Fatal(err)
	}
	groups, err = e.client.GetThings(ctx, e.record, client.StudyQuery(misType, "1.2.840.1"))
	if err != nil || len(groups[0].Things) != 0 {
		t.Fatalf("removed thing still found: %+v, %v", groups, err)
	}
	groups, err = e.client.GetThings(ctx, e.record, wire.ThingRequestGroup{
		Filters: []wire.ThingFilter{{States: []string{thing.StateDeleted}}},
		Format:  wire.ThingFormat{Sections: []string{wire.SectionCore, wire.SectionAudits}},
	})
	if err != nil || len(groups[0].Things) != 1 || groups[0].Things[0].State != thing.StateDeleted {
		t.Fatalf("deleted thing: %+v, %v", groups, err)
	}
	err = e.client.RemoveThings(ctx, e.record, nk[0])
	wantCode(t, err, wire.InvalidThing)
}

func TestGetThingsRefusals(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tests := []struct {
		name  string
		group wire.ThingRequestGroup
		code  wire.Code
	}{
		{"unsupported xpath", wire.ThingRequestGroup{Filters: []wire.ThingFilter{{XPath: "//study-instance-uid"}}}, wire.InvalidFilter},
		{"bad type id", wire.ThingRequestGroup{Filters: []wire.ThingFilter{{TypeIDs: []string{"weight"}}}}, wire.InvalidFilter},
		{"bad state", wire.ThingRequestGroup{Filters: []wire.ThingFilter{{States: []string{"Gone"}}}}, wire.InvalidFilter},
		{"bad section", wire.ThingRequestGroup{Format: wire.ThingFormat{Sections: []string{"everything"}}}, wire.InvalidFormat},
		{"transform", wire.ThingRequestGroup{Format: wire.ThingFormat{XML: []string{"form"}}}, wire.InvalidFormat},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.client.GetThings(ctx, e.record, tc.group)
			wantCode(t, err, tc.code)
		})
	}
	var many []wire.ThingRequestGroup
	for range 21 {
		many = append(many, wire.ThingRequestGroup{})
	}
	_, err := e.client.GetThings(ctx, e.record, many...)
	wantCode(t, err, wire.TooManyGroupsInQuery)
}

func TestPutThingsRefusals(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	noType := &thing.Thing{}
	noType.SetData([]byte("<x/>"))
	_, err := e.client.PutThings(ctx, e.record, noType)
	wantCode(t, err, wire.InvalidThingType)

	missing := newStudy("1", "x")
	missing.Key = &thing.Key{ID: "6f0d8c1a-0000-4000-8000-000000000000", VersionStamp: "6f0d8c1a-0000-4000-8000-000000000001"}
	_, err = e.client.PutThings(ctx, e.record, missing)
	wantCode(t, err, wire.InvalidThing)

	noStamp := newStudy("1", "x")
	noStamp.Key = &thing.Key{ID: "6f0d8c1a-0000-4000-8000-000000000000"}
	_, err = e.client.PutThings(ctx, e.record, noStamp)
	wantCode(t, err, wire.VersionStampMissing)

	// Inline data that is not base64 (bad characters, or cut short).
	for _, data := range []string{"aGVs!G8=", "aGVsbG8"} {
		bad := newStudy("1", "x")
		bad.SetBlob(thing.Blob{Info: thing.BlobInfo{Name: "preview", ContentType: "image/jpeg"}, Base64Data: data})
		_, err = e.client.PutThings(ctx, e.record, bad)
		wantCode(t, err, wire.InvalidXML)
	}

	// An inline blob round-trips through a file and comes back inline.
	inline := newStudy("1.2.9", "inline")
	inline.SetBlob(thing.Blob{Info: thing.BlobInfo{Name: "preview", ContentType: "image/jpeg"}, Base64Data: "aGVsbG8gd29ybGQ="})
	if _, err := e.client.PutThings(ctx, e.record, inline); err != nil {
		t.Fatal(err)
	}
	g := client.StudyQuery(misType, "1.2.9")
	g.Format.BlobPayloadRequest = &wire.BlobPayloadRequest{}
	g.Format.BlobPayloadRequest.BlobFormat.Spec = wire.BlobFormatInline
	groups, err := e.client.GetThings(ctx, e.record, g)
	if err != nil {
		t.Fatal(err)
	}
	if b := groups[0].Things[0].Blob("preview"); b == nil || b.Base64Data != "aGVsbG8gd29ybGQ=" || b.Length() != 11 {
		t.Fatalf("inline blob = %+v", b)
	}
}

func TestUnauthorizedRecord(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	other := e.newRecord("bob", false)
	_, err := e.client.PutThings(ctx, other, newStudy("1", "x"))
	wantCode(t, err, wire.AccessDenied)
	_, err = e.client.GetThings(ctx, other, client.StudyQuery(misType, "1"))
	wantCode(t, err, wire.AccessDenied)
	_, err = e.client.BeginPutBlob(ctx, other)
	wantCode(t, err, wire.AccessDenied)
	_, err = e.client.GetThings(ctx, "00000000-0000-0000-0000-000000000000", client.StudyQuery(misType, "1"))
	wantCode(t, err, wire.AccessDenied)

	// A blob of one record cannot be referenced from another.
	b := e.upload([]byte("x"), "n", "text/plain")
	e2 := e.newRecord("carol", true)
	_, err = e.client.PutThings(ctx, e2, newStudy("1", "x", b))
	wantCode(t, err, wire.InvalidBlobRefURL)
}

func TestSignedThings(t *testing.T) { testSignedThings(t, newEnv(t)) }

func testSignedThings(t *testing.T, e *env) {
	ctx := context.Background()
	for _, h := range []crypto.Hash{crypto.SHA256, crypto.SHA1} {
		t.Run(h.String(), func(t *testing.T) {
			uid := "1.2.840.77." + fmt.Sprint(int(h))
			st := newStudy(uid, "signed", e.upload(pattern(2*testChunk+1, 9), "1.2.3.4.1", "application/dicom"))
			if err := thing.Sign(st, e.creds.Key, e.creds.Cert, h); err != nil {
				t.Fatal(err)
			}
			if _, err := e.client.PutThings(ctx, e.record, st); err != nil {
				t.Fatal(err)
			}
			groups, err := e.client.GetThings(ctx, e.record, client.StudyQuery(misType, uid))
			if err != nil {
				t.Fatal(err)
			}
			got := groups[0].Things[0]
			cert, err := thing.Verify(got)
			if err != nil {
				t.Fatalf("signature read back does not verify: %v", err)
			}
			if !cert.Equal(e.creds.Cert) {
				t.Fatal("signature carries another certificate")
			}

			// Tampered data-xml: BAD_SIG.
			bad := newStudy(uid+".9", "signed", e.upload(pattern(5, 3), "1.2.3.4.1", "application/dicom"))
			if err := thing.Sign(bad, e.creds.Key, e.creds.Cert, h); err != nil {
				t.Fatal(err)
			}
			bad.Data[0].Inner = bytes.Replace(bad.Data[0].Inner, []byte("signed"), []byte("forged"), 1)
			_, err = e.client.PutThings(ctx, e.record, bad)
			wantCode(t, err, wire.BadSig)

			// A blob swapped after signing: BAD_SIG through its hash.
			swapped := newStudy(uid+".8", "signed", e.upload(pattern(5, 3), "1.2.3.4.1", "application/dicom"))
			if err := thing.Sign(swapped, e.creds.Key, e.creds.Cert, h); err != nil {
				t.Fatal(err)
			}
			swapped.SetBlob(e.upload(pattern(5, 4), "1.2.3.4.1", "application/dicom"))
			_, err = e.client.PutThings(ctx, e.record, swapped)
			wantCode(t, err, wire.BadSig)
		})
	}
}

func TestSessionRenewal(t *testing.T) {
	e := newEnv(t, func(c *serverConfig) { c.SessionTTL = time.Hour })
	ctx := context.Background()
	if _, err := e.client.GetThings(ctx, e.record, client.StudyQuery(misType, "1")); err != nil {
		t.Fatal(err)
	}
	// Past the server's session lifetime but within the client's: the
	// server refuses the token, the client renews and retries.
	e.clock.Advance(2 * time.Hour)
	if _, err := e.client.GetThings(ctx, e.record, client.StudyQuery(misType, "1")); err != nil {
		t.Fatal(err)
	}
	var expired int
	for _, x := range e.rec.exchanges() {
		if strings.Contains(string(x.resp), fmt.Sprintf("<code>%d</code>", int(wire.AuthenticatedSessionTokenExpired))) {
			expired++
		}
	}
	if expired != 1 {
		t.Fatalf("%d AUTHENTICATED_SESSION_TOKEN_EXPIRED answers, want 1", expired)
	}
}
