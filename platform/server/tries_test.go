package server_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"dicomgate/platform/server"
)

func TestParallelWrongAnswers(t *testing.T) { testParallelWrongAnswers(t, newEnv(t)) }

// testParallelWrongAnswers sends 10 wrong answers at once to a package and
// to a connect request: only 3 may be checked (counted), and the right
// answer afterwards is refused. A right answer gives its try back.
func testParallelWrongAnswers(t *testing.T, e *env) {
	ctx := context.Background()

	// A right answer after a wrong one leaves 2 tries.
	code := e.packageWithBlob(pattern(10, 1), "p")
	if _, err := e.srv.UnlockPackage(ctx, code, "wrong answer"); !errors.Is(err, server.ErrWrongAnswer) {
		t.Fatalf("wrong answer: %v", err)
	}
	if _, err := e.srv.UnlockPackage(ctx, code, answer); err != nil {
		t.Fatalf("right answer: %v", err)
	}
	if c, err := e.srv.PackageChallenge(ctx, code); err != nil || c.TriesLeft != 2 {
		t.Fatalf("after a right answer: %+v, %v; want 2 tries left", c, err)
	}

	code = e.packageWithBlob(pattern(10, 2), "q")
	checkParallel(t, "package", func() error {
		_, err := e.srv.UnlockPackage(ctx, code, "wrong answer")
		return err
	})
	if p, err := e.store.GetPackage(ctx, code); err != nil || p.WrongAnswers != 3 {
		t.Fatalf("package after 10 parallel wrong answers: %d counted, %v; want 3", p.WrongAnswers, err)
	}
	if _, err := e.srv.UnlockPackage(ctx, code, answer); !errors.Is(err, server.ErrLocked) {
		t.Fatalf("package: right answer after lock-out: %v", err)
	}

	req, err := e.client.CreateConnectRequest(ctx, "Erin", "Pet?", answer, "p-par", "")
	if err != nil {
		t.Fatal(err)
	}
	checkParallel(t, "connect request", func() error { return e.srv.CheckConnectAnswer(ctx, req, "nope nope") })
	if r, err := e.store.GetConnectRequest(ctx, req); err != nil || r.WrongAnswers != 3 {
		t.Fatalf("connect request after 10 parallel wrong answers: %d counted, %v; want 3", r.WrongAnswers, err)
	}
	if err := e.srv.CheckConnectAnswer(ctx, req, answer); !errors.Is(err, server.ErrLocked) {
		t.Fatalf("connect request: right answer after lock-out: %v", err)
	}
}

// checkParallel runs 10 wrong answers at once: at most 2 may come back as
// *WrongAnswerError (tries left), the rest must be ErrLocked.
func checkParallel(t *testing.T, what string, answer func() error) {
	t.Helper()
	var (
		wg          sync.WaitGroup
		mu          sync.Mutex
		wrong, lock int
		other       []error
	)
	for range 10 {
		wg.Go(func() {
			err := answer()
			mu.Lock()
			defer mu.Unlock()
			var wa *server.WrongAnswerError
			switch {
			case errors.As(err, &wa):
				wrong++
			case errors.Is(err, server.ErrLocked):
				lock++
			default:
				other = append(other, err)
			}
		})
	}
	wg.Wait()
	if wrong > 2 || wrong+lock != 10 {
		t.Fatalf("%s: %d wrong-answer replies, %d locked, others %v", what, wrong, lock, other)
	}
}
