package dicomtest

import "testing"

// CorruptionSweep checks that a decoder of untrusted bytes survives damage
// to a valid stream good: at every step-th offset i it decodes good cut to
// i bytes and good with byte i flipped (XOR 0x5A). Each must decode or fail
// with an error typed accepts as one of the decoder's own; a panic fails
// the test run. A truncation shorter than mustFail bytes must fail, since
// the stream is not whole yet; mustFail 0 lets every truncation decode.
func CorruptionSweep(t testing.TB, good []byte, step, mustFail int, decode func([]byte) error, typed func(error) bool) {
	t.Helper()
	if step < 1 {
		t.Fatalf("CorruptionSweep: step %d, want at least 1", step)
	}
	for i := 0; i < len(good); i += step {
		err := decode(good[:i])
		switch {
		case err == nil && i < mustFail:
			t.Errorf("truncation at %d decoded without error", i)
		case err != nil && !typed(err):
			t.Errorf("truncation at %d: untyped error %v", i, err)
		}
		bad := append([]byte(nil), good...)
		bad[i] ^= 0x5A
		if err := decode(bad); err != nil && !typed(err) {
			t.Errorf("corruption at %d: untyped error %v", i, err)
		}
	}
}
