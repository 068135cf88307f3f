package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"andon/db"
)

// runUser runs `andon user ...` in-process with stdin as standard input.
func runUser(t *testing.T, stdin string, args ...string) (stdout string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := &environment{
		stdin:  strings.NewReader(stdin),
		stdout: &out,
		stderr: &errOut,
		getenv: func(string) string { return "" },
	}
	err = env.run(context.Background(), append([]string{"user"}, args...))
	return out.String(), err
}

func TestUserCommand(t *testing.T) {
	data := t.TempDir()
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("from a file 1\r\nsecond line\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// The commands must work beside a running server, which holds the
	// database open; this store stands in for it.
	ctx := context.Background()
	server, err := db.Open(ctx, filepath.Join(data, "andon.db"), db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	now := time.Now().UnixMilli()
	if _, err := runUser(t, "", "add", "--data", data, "--name", "x", "--role", "viewer", "--password-file", pwFile); err != nil {
		t.Fatalf("warm-up add: %v", err)
	}
	x, err := server.UserByName(ctx, "x")
	if err != nil {
		t.Fatalf("the running server does not see the user the command added: %v", err)
	}
	if _, err := server.Authenticate(ctx, "x", "from a file 1", now); err != nil {
		t.Errorf("password from the file's first line (CR dropped): %v", err)
	}
	xSession, err := server.CreateSession(ctx, x.ID, now)
	if err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name    string
		stdin   string
		args    []string
		wantOut string // a substring of standard output
		wantErr string // a substring of the error; "" = success
	}{
		{"add the first admin", "first admin pw\n", []string{"add", "--data", data, "--name", "Anna", "--role", "admin"}, "user Anna (admin) created\n", ""},
		{"a password without a newline", "no newline pw", []string{"add", "--data", data, "--name", "bob", "--role", "Operator"}, "user bob (operator) created", ""},
		{"short password", "123456789\n", []string{"add", "--data", data, "--name", "carl", "--role", "viewer"}, "", "shorter than 10"},
		{"no password", "", []string{"add", "--data", data, "--name", "carl", "--role", "viewer"}, "", "no password"},
		{"name taken in another case", "first admin pw\n", []string{"add", "--data", data, "--name", "ANNA", "--role", "viewer"}, "", "exists already"},
		{"bad role", "first admin pw\n", []string{"add", "--data", data, "--name", "carl", "--role", "root"}, "", "--role"},
		{"no name", "first admin pw\n", []string{"add", "--data", data, "--role", "viewer"}, "", "--name is needed"},
		{"missing password file", "", []string{"add", "--data", data, "--name", "carl", "--role", "viewer", "--password-file", filepath.Join(data, "nope")}, "", "--password-file"},
		{"unknown subcommand", "", []string{"delete", "--data", data}, "", "unknown command"},
		{"list", "", []string{"list", "--data", data}, "bob   operator  active", ""},
		{"new password for x", "a new password\n", []string{"passwd", "--data", data, "--name", "X"}, "password of x changed", ""},
		{"passwd of nobody", "a new password\n", []string{"passwd", "--data", data, "--name", "nobody"}, "", "not found"},
		{"the last admin stays", "", []string{"disable", "--data", data, "--name", "anna"}, "", "last enabled admin"},
		{"disable bob", "", []string{"disable", "--data", data, "--name", "bob"}, "user bob disabled", ""},
		{"list shows it", "", []string{"list", "--data", data}, "bob   operator  disabled", ""},
		{"enable bob", "", []string{"enable", "--data", data, "--name", "bob"}, "user bob enabled", ""},
		{"list where there is no database", "", []string{"list", "--data", filepath.Join(data, "typo")}, "", "no database"},
	}
	for _, st := range steps {
		out, err := runUser(t, st.stdin, st.args...)
		if st.wantErr == "" && err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if st.wantErr != "" && (err == nil || !strings.Contains(err.Error(), st.wantErr)) {
			t.Fatalf("%s: error %v, want one with %q", st.name, err, st.wantErr)
		}
		if !strings.Contains(out, st.wantOut) {
			t.Errorf("%s: output %q, want %q in it", st.name, out, st.wantOut)
		}
		for _, secret := range []string{"first admin pw", "a new password", "123456789"} {
			if strings.Contains(out, secret) || (err != nil && strings.Contains(err.Error(), secret)) {
				t.Errorf("%s: a password shows in the output or error", st.name)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(data, "typo")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("list with a wrong --data created %s/typo: %v", data, err)
	}

	logins := []struct {
		name, password string
		wantErr        error
	}{
		{"anna", "first admin pw", nil},
		{"bob", "no newline pw", nil},
		{"x", "a new password", nil},
		{"x", "from a file 1", db.ErrBadCredentials},
		{"carl", "first admin pw", db.ErrBadCredentials},
	}
	for _, l := range logins {
		if _, err := server.Authenticate(ctx, l.name, l.password, now); !errors.Is(err, l.wantErr) || (err == nil) != (l.wantErr == nil) {
			t.Errorf("Authenticate(%s) = %v, want %v", l.name, err, l.wantErr)
		}
	}
	if _, err := server.Session(ctx, xSession, now, 0); err == nil {
		t.Error("x's session survived a password change from the command line")
	}
	if n, err := server.CountUsers(ctx); err != nil || n != 3 {
		t.Errorf("users = %d, %v; want x, anna and bob", n, err)
	}

	var got []string
	err = server.AuditAll(ctx, func(e db.AuditEntry) error {
		if e.Actor != "cli" {
			t.Errorf("audit entry %+v: actor %q, want cli", e, e.Actor)
		}
		got = append(got, e.Action+" "+e.Object)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "user.create x|user.create Anna|user.create bob|user.password_reset x|user.disable bob|user.enable bob"
	if strings.Join(got, "|") != want {
		t.Errorf("audit log:\n got %s\nwant %s", strings.Join(got, "|"), want)
	}
}

func TestUserCommandHelp(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr error
	}{
		{nil, flag.ErrHelp},
		{[]string{"help"}, nil},
		{[]string{"add", "--help"}, flag.ErrHelp},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		env := &environment{stdout: &out, stderr: &errOut, getenv: func(string) string { return "" }}
		err := env.run(context.Background(), append([]string{"user"}, tt.args...))
		if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
			t.Errorf("user %v: %v, want %v", tt.args, err, tt.wantErr)
		}
		if both := out.String() + errOut.String(); !strings.Contains(both, "andon user") {
			t.Errorf("user %v printed no usage: %q", tt.args, both)
		}
	}
}

// The password never goes through a logger, but a store opened by the
// command logs to standard error; make sure nothing of the password is there.
func TestUserCommandQuietStderr(t *testing.T) {
	data := t.TempDir()
	var errOut bytes.Buffer
	env := &environment{stdin: strings.NewReader("quiet password\n"), stdout: io.Discard, stderr: &errOut, getenv: func(string) string { return "" }}
	if err := env.run(context.Background(), []string{"user", "add", "--data", data, "--name", "q", "--role", "viewer"}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(errOut.String(), "quiet password") {
		t.Errorf("standard error shows the password: %q", errOut.String())
	}
}
