package provision

import "testing"

// TestDummyHash: the dummy hash parses as a real one (so checking against
// it costs a real argon2 run) and matches no password.
func TestDummyHash(t *testing.T) {
	d := DummyHash()
	for _, pw := range []string{"", "dicomgate dummy password", "x"} {
		if CheckPassword(d, pw) {
			t.Fatalf("dummy hash matched %q", pw)
		}
	}
	real := HashPassword("secret-1")
	if len(d) != len(real) || d[:len("$argon2id$v=19$m=")] != real[:len("$argon2id$v=19$m=")] || !CheckPassword(real, "secret-1") {
		t.Fatalf("dummy %q not in the format of %q", d, real)
	}
}
