package sqlite_test

import (
	"context"
	"crypto/sha256"
	"path/filepath"
	"testing"

	"dicomgate/platform/store"
	"dicomgate/platform/store/sqlite"
)

// BenchmarkPutChunk records one new SHA256Block block per commit, as the
// platform does for each chunk of a streamed blob (the commit's sync
// included).
func BenchmarkPutChunk(b *testing.B) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "platform.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := s.CreatePerson(ctx, store.Person{ID: "p", Login: "l", Name: "P", PasswordHash: "$argon2id$x"}); err != nil {
		b.Fatal(err)
	}
	if err := s.CreateRecord(ctx, store.Record{ID: "r", PersonID: "p", Name: "R", Relationship: "self"}); err != nil {
		b.Fatal(err)
	}
	if err := s.CreateBlob(ctx, store.Blob{ID: "b", RecordID: "r", AppID: "a", State: store.BlobUploading, BlockSize: 4 << 20, MaxSize: 1 << 40, Total: -1}); err != nil {
		b.Fatal(err)
	}
	blk := store.Block{Length: 4 << 20, Hash: sha256.Sum256([]byte("x"))}
	for b.Loop() {
		if err := s.PutChunk(ctx, "b", -1, []store.Block{blk}, nil); err != nil {
			b.Fatal(err)
		}
		blk.Index++
	}
}
