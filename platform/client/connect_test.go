package client_test

import (
	"bytes"
	"encoding/base64"
	"testing"

	"dicomgate/platform/blob"
	"dicomgate/platform/client"
	"dicomgate/platform/dopu"
	"dicomgate/platform/thing"
)

// TestPackageThing checks the Password Protected Package thing the client
// sends: the type, the data-xml the platform parses back, and the
// ciphertext as the empty-named inline blob.
func TestPackageThing(t *testing.T) {
	pkg, err := dopu.Seal("answer123", []byte("<thing><type-id>x</type-id></thing>"), dopu.HMACSHA256AES256, nil)
	if err != nil {
		t.Fatal(err)
	}
	th, err := client.PackageThing(pkg)
	if err != nil {
		t.Fatal(err)
	}
	if th.Type.ID != dopu.TypeID {
		t.Fatalf("type %s", th.Type.ID)
	}
	back, err := dopu.UnmarshalDataXML(th.TypeSpecific())
	if err != nil {
		t.Fatal(err)
	}
	if back.Salt != pkg.Salt || back.IterationCount != pkg.IterationCount || back.Algorithm != pkg.Algorithm {
		t.Fatalf("data-xml round trip: %+v", back)
	}
	b := th.Blob("")
	if b == nil || b.Info.ContentType != "application/octet-stream" || b.Length() != int64(len(pkg.Ciphertext)) {
		t.Fatalf("blob = %+v", b)
	}
	ct, err := base64.StdEncoding.DecodeString(b.Base64Data)
	if err != nil || !bytes.Equal(ct, pkg.Ciphertext) {
		t.Fatal("ciphertext not carried as the inline blob")
	}
	h := blob.NewHasher(blob.DefaultBlockSize)
	h.Write(pkg.Ciphertext)
	if want, _ := h.RootBase64(); b.Info.HashInfo == nil || b.Info.HashInfo.Algorithm != thing.HashAlgorithmSHA256Block ||
		b.Info.HashInfo.BlockSize() != blob.DefaultBlockSize || b.Info.HashInfo.Hash != want {
		t.Fatalf("hash-info %+v, want SHA256Block %s", b.Info.HashInfo, want)
	}
	back.Ciphertext = ct
	if plain, err := dopu.Open("ANSWER123", back); err != nil || string(plain) != "<thing><type-id>x</type-id></thing>" {
		t.Fatalf("Open: %q, %v", plain, err)
	}
}
