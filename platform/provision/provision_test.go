package provision

import (
	"strings"
	"testing"
)

func TestPasswordHash(t *testing.T) {
	h := HashPassword("correct horse")
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") || strings.Contains(h, "correct horse") {
		t.Fatalf("hash %q", h)
	}
	if h == HashPassword("correct horse") {
		t.Fatal("no salt")
	}
	if !CheckPassword(h, "correct horse") {
		t.Fatal("right password refused")
	}
	for _, bad := range []string{"correct hors", "Correct horse", ""} {
		if CheckPassword(h, bad) {
			t.Fatalf("%q accepted", bad)
		}
	}
	for _, broken := range []string{"", "$argon2id$", "$bcrypt$v=1$m=1,t=1,p=1$AAAA$AAAA", "$argon2id$v=19$m=99999999,t=1,p=1$AAAA$AAAA"} {
		if CheckPassword(broken, "x") {
			t.Fatalf("%q accepted", broken)
		}
	}
}
