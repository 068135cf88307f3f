package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"golang.org/x/term"

	"andon/db"
)

// cliActor is who the audit log names for changes made with `andon user`.
const cliActor = "cli"

// minPassword mirrors the store's rule, so the command refuses a short
// password before it opens the database.
const minPassword = 10

const userUsage = `usage:
  andon user add     --data DIR --name NAME --role viewer|operator|admin [--password-file FILE]
  andon user list    --data DIR
  andon user passwd  --data DIR --name NAME [--password-file FILE]
  andon user disable --data DIR --name NAME
  andon user enable  --data DIR --name NAME

The password is read from --password-file (its first line) or from standard input: typed twice
without echo on a terminal, else the first line. It needs at least 10 characters. The commands
work while "andon serve" runs on the same data directory; each change is in the audit log as "cli".
A new password and disabling a user end that user's sessions.
`

// userCmd manages users from the command line: the way to create the first
// admin without the setup link, and to get back in when every admin is
// locked out.
func (env *environment) userCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(env.stderr, userUsage)
		return flag.ErrHelp
	}
	sub, rest := args[0], args[1:]
	var data, name, role, passwordFile string
	fset := flag.NewFlagSet("user "+sub, flag.ContinueOnError)
	fset.StringVar(&data, "data", "./data", "directory of the SQLite database (andon.db)")
	switch sub {
	case "add", "passwd", "disable", "enable":
		fset.StringVar(&name, "name", "", "the user's name")
	case "list":
	case "help", "--help", "-h":
		fmt.Fprint(env.stdout, userUsage)
		return nil
	default:
		fmt.Fprint(env.stderr, userUsage)
		return fmt.Errorf("user: unknown command %q", sub)
	}
	if sub == "add" {
		fset.StringVar(&role, "role", "", "viewer, operator or admin")
	}
	if sub == "add" || sub == "passwd" {
		fset.StringVar(&passwordFile, "password-file", "", "read the password from the first line of this file instead of standard input")
	}
	if _, err := env.parse(fset, rest, "andon user "+sub+" --data DIR ..."); err != nil {
		return err
	}
	if sub != "list" && strings.TrimSpace(name) == "" {
		return fmt.Errorf("user %s: --name is needed", sub)
	}

	var r db.Role
	if sub == "add" {
		var err error
		if r, err = db.ParseRole(role); err != nil {
			return fmt.Errorf("user add: --role %q: want viewer, operator or admin", role)
		}
	}
	var password string
	if sub == "add" || sub == "passwd" {
		var err error
		if password, err = env.readPassword(passwordFile); err != nil {
			return fmt.Errorf("user %s: %w", sub, err)
		}
	}

	store, err := env.openUserStore(ctx, data, sub == "add")
	if err != nil {
		return fmt.Errorf("user %s: %w", sub, err)
	}
	defer store.Close()

	switch sub {
	case "add":
		return env.userAdd(ctx, store, name, r, password)
	case "list":
		return env.userList(ctx, store)
	case "passwd":
		return env.userPasswd(ctx, store, name, password)
	default:
		return env.userSetDisabled(ctx, store, name, sub == "disable")
	}
}

// openUserStore opens DIR/andon.db. Only `add` may create it: the first
// admin can be made before the first `serve`, but a list or passwd against a
// mistyped --data should fail, not leave an empty database behind.
func (env *environment) openUserStore(ctx context.Context, data string, create bool) (*db.Store, error) {
	path := filepath.Join(data, "andon.db")
	if !create {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no database at %s (is --data right?)", path)
		}
	}
	store, err := db.Open(ctx, path, db.Options{Logger: env.logger("warn", "text")})
	if err != nil {
		return nil, err
	}
	return store, nil
}

// readPassword reads one password: from a file, from a terminal (twice,
// without echo), or as the first line of standard input.
func (env *environment) readPassword(file string) (string, error) {
	var pw string
	switch f, ok := env.stdin.(*os.File); {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("--password-file: %w", err)
		}
		pw = firstLine(b)
	case ok && term.IsTerminal(int(f.Fd())):
		fmt.Fprint(env.stderr, "Password: ")
		first, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(env.stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		fmt.Fprint(env.stderr, "Again: ")
		again, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(env.stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		if !bytes.Equal(first, again) {
			return "", errors.New("the two passwords differ")
		}
		pw = string(first)
	default:
		in := env.stdin
		if in == nil {
			in = strings.NewReader("")
		}
		line, err := bufio.NewReader(in).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read password from standard input: %w", err)
		}
		pw = firstLine([]byte(line))
	}
	switch {
	case pw == "":
		return "", errors.New("no password given (standard input or --password-file)")
	case utf8.RuneCountInString(pw) < minPassword:
		return "", fmt.Errorf("the password is shorter than %d characters", minPassword)
	}
	return pw, nil
}

// firstLine is b up to its first line break. Spaces are kept: they may be
// part of the password.
func firstLine(b []byte) string {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	return string(bytes.TrimSuffix(line, []byte("\r")))
}

func (env *environment) auditCLI(ctx context.Context, store *db.Store, action, object, detail string) error {
	if err := store.Audit(ctx, db.AuditEntry{Actor: cliActor, Action: action, Object: object, Detail: detail}); err != nil {
		return fmt.Errorf("the change is made, but the audit log could not be written: %w", err)
	}
	return nil
}

func (env *environment) userAdd(ctx context.Context, store *db.Store, name string, role db.Role, password string) error {
	u, err := store.CreateUser(ctx, name, role, password)
	if err != nil {
		return fmt.Errorf("user add: %w", err)
	}
	fmt.Fprintf(env.stdout, "user %s (%s) created\n", u.Name, u.Role)
	if err := env.auditCLI(ctx, store, "user.create", u.Name, "role="+string(u.Role)); err != nil {
		return fmt.Errorf("user add: %w", err)
	}
	return nil
}

func (env *environment) userList(ctx context.Context, store *db.Store) error {
	us, err := store.Users(ctx)
	if err != nil {
		return fmt.Errorf("user list: %w", err)
	}
	if len(us) == 0 {
		fmt.Fprintln(env.stdout, `no users yet: "andon user add --role admin" creates the first admin`)
		return nil
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\tSTATUS\tCREATED\tLAST LOGIN")
	for _, u := range us {
		status := "active"
		if u.Disabled {
			status = "disabled"
		}
		last := "never"
		if u.LastLoginMS > 0 {
			last = stamp(u.LastLoginMS)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Name, u.Role, status, stamp(u.CreatedMS), last)
	}
	return tw.Flush()
}

func stamp(ms int64) string { return time.UnixMilli(ms).Format("2006-01-02 15:04") }

// userPasswd sets a new password and ends the user's sessions: someone who
// resets a password from the console usually fears the old one is known.
func (env *environment) userPasswd(ctx context.Context, store *db.Store, name, password string) error {
	u, err := store.UserByName(ctx, name)
	if err != nil {
		return fmt.Errorf("user passwd: %w", err)
	}
	if err := store.SetPassword(ctx, u.ID, password); err != nil {
		return fmt.Errorf("user passwd: %w", err)
	}
	if err := store.DeleteUserSessions(ctx, u.ID); err != nil {
		return fmt.Errorf("user passwd: password changed, but sessions not ended: %w", err)
	}
	fmt.Fprintf(env.stdout, "password of %s changed; their sessions are ended\n", u.Name)
	if err := env.auditCLI(ctx, store, "user.password_reset", u.Name, "sessions ended"); err != nil {
		return fmt.Errorf("user passwd: %w", err)
	}
	return nil
}

func (env *environment) userSetDisabled(ctx context.Context, store *db.Store, name string, disabled bool) error {
	verb, action := "enable", "user.enable"
	if disabled {
		verb, action = "disable", "user.disable"
	}
	u, err := store.UserByName(ctx, name)
	if err != nil {
		return fmt.Errorf("user %s: %w", verb, err)
	}
	if err := store.SetUserDisabled(ctx, u.ID, disabled); err != nil {
		return fmt.Errorf("user %s: %w", verb, err)
	}
	fmt.Fprintf(env.stdout, "user %s %sd\n", u.Name, verb)
	if err := env.auditCLI(ctx, store, action, u.Name, ""); err != nil {
		return fmt.Errorf("user %s: %w", verb, err)
	}
	return nil
}
