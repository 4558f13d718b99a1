package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"

	"dicomgate/dimse"
	"dicomgate/dimse/spool"
	"dicomgate/gateway"
	"dicomgate/gateway/admin"
	"dicomgate/gateway/store"
)

func TestAdminCreateUser(t *testing.T) {
	dir := t.TempDir()
	var c struct {
		Admin adminCmd `cmd:""`
	}
	p, err := kong.New(&c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Parse([]string{"admin", "create-user", "--data", dir, "--username", "root", "--role", "admin"}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Parse([]string{"admin", "create-user", "--data", dir, "--username", "x", "--role", "root"}); err == nil {
		t.Fatal("--role root accepted")
	}
	p.Parse([]string{"admin", "create-user", "--data", dir, "--username", "root", "--role", "admin"})
	rc := quietRun()
	stdin := func(s string) *os.File {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		w.WriteString(s)
		w.Close()
		t.Cleanup(func() { r.Close() })
		return r
	}
	if err := c.Admin.CreateUser.run(rc, stdin("")); err == nil {
		t.Fatal("empty password accepted")
	}
	if err := c.Admin.CreateUser.run(rc, stdin("short\n")); err == nil {
		t.Fatal("short password accepted")
	}
	if err := c.Admin.CreateUser.run(rc, stdin("correct horse battery\n")); err != nil {
		t.Fatal(err)
	}
	if err := c.Admin.CreateUser.run(rc, stdin("correct horse battery\n")); err == nil {
		t.Fatal("second user with the same name accepted")
	}
	st, err := store.OpenSQLite(context.Background(), filepath.Join(dir, gatewayDBName))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	u, err := st.AdminUserByName(context.Background(), "root")
	if err != nil || u.Role != store.RoleAdmin {
		t.Fatalf("user = %+v, %v", u, err)
	}
	if ok, err := admin.CheckPassword(u.PasswordHash, "correct horse battery"); !ok || err != nil {
		t.Fatalf("stored hash does not verify: %v", err)
	}
	if !strings.HasPrefix(u.PasswordHash, "$argon2id$v=19$m=65536,t=3,p=4$") {
		t.Fatalf("hash %q does not use the default parameters", u.PasswordHash)
	}
}

func TestAdminPart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	st, err := openGatewayStore(ctx, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sp, err := spool.Open(filepath.Join(dir, "spool"), dimse.ImplementationClassUID, dimse.ImplementationVersionName)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(gateway.Config{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, st, sp, nil)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	rc := &runContext{ctx: ctx, log: slog.New(slog.NewTextHandler(logs, nil))}
	part, err := newAdminPart(ctx, rc, &adminFlags{Addr: "127.0.0.1:0"}, admin.Config{Gateway: gw})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- part.run() }()

	m := regexp.MustCompile(`url="?(http://127\.0\.0\.1:\d+/setup\?token=[^"\s]+)`).FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no setup link in the log:\n%s", logs.String())
	}
	setup := m[1]
	base := setup[:strings.Index(setup, "/setup")]
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
	}
	resp, err := http.Get(setup)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte("Create the first admin")) {
		t.Fatalf("setup link: %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("admin part: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("admin part did not stop")
	}
}

func TestLocalURL(t *testing.T) {
	for _, tt := range []struct {
		addr string
		tls  bool
		want string
	}{
		{"[::]:8081", false, "http://localhost:8081"},
		{"0.0.0.0:8081", true, "https://localhost:8081"},
		{"127.0.0.1:9", false, "http://127.0.0.1:9"},
	} {
		a, err := netAddr(tt.addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := localURL(a, tt.tls); got != tt.want {
			t.Errorf("localURL(%s) = %s, want %s", tt.addr, got, tt.want)
		}
	}
}

func netAddr(s string) (*net.TCPAddr, error) { return net.ResolveTCPAddr("tcp", s) }
