package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"andon/db"
)

// runDevice runs "andon device ARGS..." in-process with stdin and returns
// what it printed.
func runDevice(t *testing.T, stdin string, args ...string) (stdout string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := &environment{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errOut, getenv: func(string) string { return "" }}
	err = env.run(context.Background(), append([]string{"device"}, args...))
	return out.String(), err
}

func TestDeviceCLI(t *testing.T) {
	dir := t.TempDir()
	data := []string{"--data", dir}
	ctx := context.Background()

	steps := []struct {
		name    string
		stdin   string
		args    []string
		wantOut string // a substring of stdout
		wantErr string // a substring of the error; "" = success
	}{
		{"add from stdin", "correct horse\n", []string{"add", "--name", "press-01", "--prefix", "acme/hall-1/line-1"}, "device press-01 created", ""},
		{"add generated", "", []string{"add", "--name", "saw-02", "--prefix", "acme/hall-1/line-2", "--generate"}, "password: ", ""},
		{"taken", "correct horse\n", []string{"add", "--name", "press-01", "--prefix", "acme"}, "", "already exists"},
		{"short password", "short\n", []string{"add", "--name", "x", "--prefix", "acme"}, "", "at least 10 characters"},
		{"no password", "", []string{"add", "--name", "x", "--prefix", "acme"}, "", "no password"},
		{"wildcard prefix", "correct horse\n", []string{"add", "--name", "x", "--prefix", "acme/#"}, "", "wildcards"},
		{"no name", "", []string{"disable"}, "", "--name is required"},
		{"unknown device", "", []string{"disable", "--name", "nobody"}, "", "no device named"},
		{"disable", "", []string{"disable", "--name", "saw-02"}, "device saw-02 disabled", ""},
		{"new password", "battery staple\n", []string{"passwd", "--name", "press-01"}, "new password", ""},
		{"list", "", []string{"list"}, "press-01", ""},
		{"unknown subcommand", "", []string{"frobnicate"}, "", "unknown subcommand"},
	}
	var generated, listed string
	for _, st := range steps {
		args := st.args
		if args[0] != "frobnicate" {
			args = append(append([]string{}, args...), data...)
		}
		out, err := runDevice(t, st.stdin, args...)
		switch {
		case st.wantErr == "" && err != nil:
			t.Errorf("%s: %v", st.name, err)
		case st.wantErr != "" && (err == nil || !strings.Contains(err.Error(), st.wantErr)):
			t.Errorf("%s: error %v, want one saying %q", st.name, err, st.wantErr)
		case !strings.Contains(out, st.wantOut):
			t.Errorf("%s: printed %q, want %q in it", st.name, out, st.wantOut)
		}
		switch st.name {
		case "add generated":
			if m := regexp.MustCompile(`password: (\S+)`).FindStringSubmatch(out); m != nil {
				generated = m[1]
			}
		case "list":
			listed = out
		}
	}

	// What the CLI did is in the store, as the broker will see it.
	store, err := db.Open(ctx, filepath.Join(dir, "andon.db"), db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := store.AuthenticateDevice(ctx, "press-01", "battery staple"); err != nil {
		t.Errorf("press-01 with its new password: %v", err)
	}
	if _, err := store.AuthenticateDevice(ctx, "press-01", "correct horse"); !errors.Is(err, db.ErrBadCredentials) {
		t.Errorf("press-01 with its old password: %v, want ErrBadCredentials", err)
	}
	if len(generated) < 30 {
		t.Fatalf("generated password %q: want 32 random characters", generated)
	}
	if _, err := store.AuthenticateDevice(ctx, "saw-02", generated); !errors.Is(err, db.ErrBadCredentials) {
		t.Errorf("disabled saw-02: %v, want ErrBadCredentials", err)
	}
	if _, err := runDevice(t, "", "enable", "--name", "saw-02", "--data", dir); err != nil {
		t.Fatal(err)
	}
	if d, err := store.AuthenticateDevice(ctx, "saw-02", generated); err != nil || d.TopicPrefix != "acme/hall-1/line-2" {
		t.Errorf("enabled saw-02 with the generated password: %+v, %v", d, err)
	}

	for _, want := range []string{"USERNAME", "press-01", "acme/hall-1/line-1", "saw-02", "disabled", "never"} {
		if !strings.Contains(listed, want) {
			t.Errorf("list printed %q, want %q in it", listed, want)
		}
	}
	if strings.Contains(listed, generated) || strings.Contains(listed, "battery staple") {
		t.Errorf("list printed a password:\n%s", listed)
	}

	// Every change is in the audit log, done by "cli".
	var actions []string
	if err := store.AuditAll(ctx, func(e db.AuditEntry) error {
		if e.Actor != "cli" {
			t.Errorf("audit entry %+v: actor %q, want cli", e, e.Actor)
		}
		actions = append(actions, e.Action+" "+e.Object)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{"device.create press-01", "device.create saw-02", "device.disable saw-02", "device.password press-01", "device.enable saw-02"}
	if strings.Join(actions, ",") != strings.Join(want, ",") {
		t.Errorf("audit log %q, want %q", actions, want)
	}
}
