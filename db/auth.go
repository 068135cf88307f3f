package db

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"andon/plant"
)

// Role is what a user may do: viewers read, operators also code downtime,
// admins do everything.
type Role string

// The roles, weakest first.
const (
	RoleViewer   Role = "viewer"
	RoleOperator Role = "operator"
	RoleAdmin    Role = "admin"
)

// rank orders the roles; an unknown role ranks 0, below every real one.
func (r Role) rank() int {
	switch r {
	case RoleViewer:
		return 1
	case RoleOperator:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// AtLeast reports whether r grants everything min grants. An unknown role,
// on either side, grants nothing, so a corrupt value fails closed.
func (r Role) AtLeast(min Role) bool {
	return r.rank() > 0 && min.rank() > 0 && r.rank() >= min.rank()
}

// ParseRole reads a role name as typed (any case, surrounding spaces).
func ParseRole(s string) (Role, error) {
	r := Role(strings.ToLower(strings.TrimSpace(s)))
	if r.rank() == 0 {
		return "", invalid("role %q: want viewer, operator or admin", s)
	}
	return r, nil
}

// Authentication failures. They say nothing about whether the name exists.
var (
	ErrBadCredentials = errors.New("wrong name or password")
	ErrLocked         = errors.New("too many failed logins; try again later")
)

// Limits and lifetimes of credentials.
const (
	maxUserNameLen    = 64
	minPasswordLen    = 10 // characters
	maxPasswordBytes  = 72 // bcrypt ignores what is beyond; refusing is more honest than truncating
	maxFailedLogins   = 5
	lockoutMS         = 15 * 60 * 1000
	sessionMaxAgeMS   = 7 * dayMS
	touchEveryMS      = 60 * 1000 // last seen / last used are written at most this often
	tokenSecretPrefix = "andon_"
	tokenPrefixLen    = 10
	maxTokenCreator   = 80
	secretBytes       = 32
	productionBcrypt  = 12
)

// Hashes of a fixed string, one per cost, compared against when a name is
// unknown so that a login for a name that does not exist takes as long as
// one for a name that does (no user enumeration by timing).
const (
	dummyHashCost12 = "$2a$12$Q4XVYyjV1OXEoH.afk.NMObwrow0aMtwMPGu45.r8ERP3vK2OOSVe"
	dummyHashCost4  = "$2a$04$mPcsFS07cksd6aWcLwv5aO1fI3fCrgtWMMlHcY1wNX7VaOo.FI/Ve"
)

// bcryptCost is 12 in the binary. Test binaries (of every package, since the
// web and command tests create users through this store too) use bcrypt's
// minimum so that they stay fast; the code path is the same.
func bcryptCost() int {
	if testing.Testing() {
		return bcrypt.MinCost
	}
	return productionBcrypt
}

func dummyHash() []byte {
	if bcryptCost() == bcrypt.MinCost {
		return []byte(dummyHashCost4)
	}
	return []byte(dummyHashCost12)
}

// User is an account that can sign in. The password hash never leaves the store.
type User struct {
	ID          int64
	Name        string
	Role        Role
	Disabled    bool
	CreatedMS   int64
	LastLoginMS int64
}

// nameKey is how names are compared: case-insensitively.
func nameKey(name string) string { return strings.ToLower(strings.TrimSpace(name)) }

// checkUserName trims a user name and says what is wrong with it. A colon is
// refused because the audit log names tokens "token:<prefix>", and "cli" is
// the command line's own name there; a user must not be mistaken for either.
func checkUserName(name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", invalid("user: a name is needed")
	case utf8.RuneCountInString(name) > maxUserNameLen:
		return "", invalid("user: the name is longer than %d characters", maxUserNameLen)
	case strings.ContainsRune(name, ':'):
		return "", invalid("user %q: a name cannot contain ':'", name)
	case nameKey(name) == "cli":
		return "", invalid("user %q: the name is reserved", name)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return "", invalid("user: the name contains a control or invisible character")
		}
	}
	return name, nil
}

// hashPassword checks a password's length and hashes it. The error names
// the rule, never the password.
func hashPassword(password string) (string, error) {
	switch {
	case utf8.RuneCountInString(password) < minPasswordLen:
		return "", invalid("the password is shorter than %d characters", minPasswordLen)
	case len(password) > maxPasswordBytes:
		return "", invalid("the password is longer than %d bytes", maxPasswordBytes)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcryptCost())
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

// newSecret returns 32 random bytes, base64url without padding.
func newSecret() (string, error) {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// secretHash is what is stored for a secret. Looking a row up by it leaks no
// timing worth having: an attacker cannot steer the hash of a guess.
func secretHash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// wallMS is the wall clock, for times the callers do not pass in (creation
// and revocation stamps, which no rule depends on).
func wallMS() int64 { return time.Now().UnixMilli() }

const userColumns = `id, name, role, disabled, created_ms, last_login_ms`

type rowScanner interface{ Scan(dest ...any) error }

// scanUser reads userColumns and then any extra columns into extra.
func scanUser(row rowScanner, extra ...any) (User, error) {
	var u User
	var role string
	dest := append([]any{&u.ID, &u.Name, &role, &u.Disabled, &u.CreatedMS, &u.LastLoginMS}, extra...)
	err := row.Scan(dest...)
	u.Role = Role(role)
	return u, err
}

// CreateUser adds a user with a bcrypt hash of the password. A name that
// exists (in any case), is empty or longer than 64 characters, or a
// password under 10 characters is plant.ErrInvalid with a message to show.
func (s *Store) CreateUser(ctx context.Context, name string, role Role, password string) (User, error) {
	name, err := checkUserName(name)
	if err != nil {
		return User{}, fmt.Errorf("db: create user: %w", err)
	}
	if role.rank() == 0 {
		return User{}, fmt.Errorf("db: create user %q: %w", name, invalid("role %q: want viewer, operator or admin", role))
	}
	// Hash before taking the write lock: bcrypt is slow on purpose.
	hash, err := hashPassword(password)
	if err != nil {
		return User{}, fmt.Errorf("db: create user %q: %w", name, err)
	}
	var u User
	err = s.writeTx(ctx, func(tx *sql.Tx) error {
		var err error
		u, err = insertUser(ctx, tx, name, role, hash)
		return err
	})
	if err != nil {
		return User{}, fmt.Errorf("db: create user %q: %w", name, err)
	}
	return u, nil
}

func insertUser(ctx context.Context, tx *sql.Tx, name string, role Role, hash string) (User, error) {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM users WHERE name_key = ?`, nameKey(name)).Scan(&one)
	switch {
	case err == nil:
		return User{}, invalid("a user named %q exists already", name)
	case !errors.Is(err, sql.ErrNoRows):
		return User{}, err
	}
	u := User{Name: name, Role: role, CreatedMS: wallMS()}
	res, err := tx.ExecContext(ctx, `INSERT INTO users(name, name_key, role, password_hash, created_ms) VALUES (?, ?, ?, ?, ?)`,
		name, nameKey(name), string(role), hash, u.CreatedMS)
	if err != nil {
		return User{}, err
	}
	if u.ID, err = res.LastInsertId(); err != nil {
		return User{}, err
	}
	return u, nil
}

// writeTx runs fn in a short immediate transaction on the write connection.
func (s *Store) writeTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// Users lists every user, disabled ones included, by name.
func (s *Store) Users(ctx context.Context) ([]User, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY name_key, id`)
	if err != nil {
		return nil, fmt.Errorf("db: users: %w", err)
	}
	defer rows.Close()
	var us []User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("db: users: %w", err)
		}
		us = append(us, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("db: users: %w", err)
	}
	return us, nil
}

// UserByID returns one user, or plant.ErrNotFound.
func (s *Store) UserByID(ctx context.Context, id int64) (User, error) {
	u, err := scanUser(s.r.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("db: %w", notFound("user %d", id))
	}
	if err != nil {
		return User{}, fmt.Errorf("db: user %d: %w", id, err)
	}
	return u, nil
}

// UserByName returns the user of that name in any case, or plant.ErrNotFound.
func (s *Store) UserByName(ctx context.Context, name string) (User, error) {
	u, err := scanUser(s.r.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE name_key = ?`, nameKey(name)))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("db: %w", notFound("user %q", name))
	}
	if err != nil {
		return User{}, fmt.Errorf("db: user %q: %w", name, err)
	}
	return u, nil
}

// CountUsers counts users, disabled ones included.
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM users`).Scan(&n); err != nil {
		return 0, fmt.Errorf("db: count users: %w", err)
	}
	return n, nil
}

// SetPassword replaces a user's password and lifts a lockout: an admin who
// sets a new password has dealt with the failed logins. Whether the user's
// sessions end is the caller's decision (DeleteUserSessions).
func (s *Store) SetPassword(ctx context.Context, id int64, password string) error {
	hash, err := hashPassword(password)
	if err != nil {
		return fmt.Errorf("db: user %d: set password: %w", id, err)
	}
	err = s.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = ?, failed_logins = 0, locked_until_ms = 0 WHERE id = ?`, hash, id)
		if err != nil {
			return err
		}
		return mustAffect(res, notFound("user %d", id))
	})
	if err != nil {
		return fmt.Errorf("db: set password: %w", err)
	}
	return nil
}

func mustAffect(res sql.Result, errNone error) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return errNone
	}
	return nil
}

// lockedUser reads what the last-admin rule needs about a user.
func lockedUser(ctx context.Context, tx *sql.Tx, id int64) (role Role, disabled bool, err error) {
	var r string
	err = tx.QueryRowContext(ctx, `SELECT role, disabled FROM users WHERE id = ?`, id).Scan(&r, &disabled)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, notFound("user %d", id)
	}
	return Role(r), disabled, err
}

// otherEnabledAdmins counts the enabled admins other than id.
func otherEnabledAdmins(ctx context.Context, tx *sql.Tx, id int64) (int, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE role = 'admin' AND disabled = 0 AND id <> ?`, id).Scan(&n)
	return n, err
}

// SetUserRole changes a user's role. Demoting the last enabled admin is
// plant.ErrInvalid: nobody could manage users afterwards.
func (s *Store) SetUserRole(ctx context.Context, id int64, role Role) error {
	if role.rank() == 0 {
		return fmt.Errorf("db: user %d: %w", id, invalid("role %q: want viewer, operator or admin", role))
	}
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		old, disabled, err := lockedUser(ctx, tx, id)
		if err != nil {
			return err
		}
		if old == RoleAdmin && !disabled && role != RoleAdmin {
			n, err := otherEnabledAdmins(ctx, tx, id)
			if err != nil {
				return err
			}
			if n == 0 {
				return invalid("this is the last enabled admin; make another user admin first")
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE users SET role = ? WHERE id = ?`, string(role), id)
		return err
	})
	if err != nil {
		return fmt.Errorf("db: user %d: set role: %w", id, err)
	}
	return nil
}

// SetUserDisabled disables or enables a user. Disabling ends the user's
// sessions at once; disabling the last enabled admin is plant.ErrInvalid.
func (s *Store) SetUserDisabled(ctx context.Context, id int64, disabled bool) error {
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		role, was, err := lockedUser(ctx, tx, id)
		if err != nil {
			return err
		}
		if disabled && !was && role == RoleAdmin {
			n, err := otherEnabledAdmins(ctx, tx, id)
			if err != nil {
				return err
			}
			if n == 0 {
				return invalid("this is the last enabled admin; make another user admin first")
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE users SET disabled = ? WHERE id = ?`, disabled, id); err != nil {
			return err
		}
		if disabled {
			_, err = tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ?`, id)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("db: user %d: set disabled: %w", id, err)
	}
	return nil
}

// Authenticate checks a name and password. Every path runs bcrypt once, so
// the time taken does not tell whether the name exists. After five failures
// in a row the user is locked for 15 minutes: ErrLocked, even for the right
// password; a success resets the count. Disabled users get
// ErrBadCredentials, like unknown names.
func (s *Store) Authenticate(ctx context.Context, name, password string, nowMS int64) (User, error) {
	var hash string
	var lockedUntil int64
	u, err := scanUser(s.r.QueryRowContext(ctx, `SELECT `+userColumns+`, password_hash, locked_until_ms FROM users WHERE name_key = ?`,
		nameKey(name)), &hash, &lockedUntil)
	if errors.Is(err, sql.ErrNoRows) {
		// The result is ignored: this only spends the time a real check would.
		_ = bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
		return User{}, ErrBadCredentials
	}
	if err != nil {
		return User{}, fmt.Errorf("db: authenticate: %w", err)
	}
	match := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
	if u.Disabled {
		return User{}, ErrBadCredentials
	}
	if lockedUntil > nowMS {
		return User{}, ErrLocked
	}

	// The count and the lock are decided under the write lock, so parallel
	// attempts cannot each read "not locked" and slip past the limit with
	// the right password.
	var result error
	err = s.writeTx(ctx, func(tx *sql.Tx) error {
		var failed int
		if err := tx.QueryRowContext(ctx, `SELECT failed_logins, locked_until_ms FROM users WHERE id = ?`, u.ID).
			Scan(&failed, &lockedUntil); err != nil {
			return err
		}
		if lockedUntil > nowMS {
			result = ErrLocked
			return nil
		}
		if match {
			u.LastLoginMS = nowMS
			_, err := tx.ExecContext(ctx, `UPDATE users SET failed_logins = 0, locked_until_ms = 0, last_login_ms = ? WHERE id = ?`, nowMS, u.ID)
			return err
		}
		failed++
		result = ErrBadCredentials
		lockUntil := int64(0)
		if failed >= maxFailedLogins {
			// The count starts again after the lock, so the next
			// attempts get five more tries, not one.
			failed, lockUntil, result = 0, nowMS+lockoutMS, ErrLocked
		}
		_, err := tx.ExecContext(ctx, `UPDATE users SET failed_logins = ?, locked_until_ms = ? WHERE id = ?`, failed, lockUntil, u.ID)
		return err
	})
	if err != nil {
		return User{}, fmt.Errorf("db: authenticate: %w", err)
	}
	if result != nil {
		return User{}, result
	}
	return u, nil
}

// Session is a signed-in browser: its user, the session's CSRF token (for
// forms that want one beside the origin check) and its times.
type Session struct {
	User       User
	CSRF       string
	CreatedMS  int64
	LastSeenMS int64
}

// CreateSession starts a session for an enabled user and returns its
// secret, for the cookie; only the secret's SHA-256 is stored. Sessions of
// any user older than the maximum age are swept at the same time.
func (s *Store) CreateSession(ctx context.Context, userID, nowMS int64) (string, error) {
	secret, err := newSecret()
	if err != nil {
		return "", fmt.Errorf("db: create session: %w", err)
	}
	csrf, err := newSecret()
	if err != nil {
		return "", fmt.Errorf("db: create session: %w", err)
	}
	err = s.writeTx(ctx, func(tx *sql.Tx) error {
		_, disabled, err := lockedUser(ctx, tx, userID)
		if err != nil {
			return err
		}
		if disabled {
			return invalid("user %d is disabled", userID)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE created_ms <= ? OR last_seen_ms <= ?`,
			nowMS-sessionMaxAgeMS, nowMS-sessionMaxAgeMS); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO sessions(id_hash, user_id, csrf, created_ms, last_seen_ms) VALUES (?, ?, ?, ?, ?)`,
			secretHash(secret), userID, csrf, nowMS, nowMS)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("db: create session for user %d: %w", userID, err)
	}
	return secret, nil
}

// Session returns the session of a cookie's secret. It is plant.ErrNotFound
// when unknown, idle for longer than idleMS (0: no idle limit), older than
// seven days, or of a disabled user. Last seen is written at most once a
// minute, so browsing does not write on every request.
func (s *Store) Session(ctx context.Context, secret string, nowMS, idleMS int64) (Session, error) {
	if secret == "" {
		return Session{}, fmt.Errorf("db: session: %w", plant.ErrNotFound)
	}
	id := secretHash(secret)
	var ss Session
	u, err := scanUser(s.r.QueryRowContext(ctx, `
		SELECT u.id, u.name, u.role, u.disabled, u.created_ms, u.last_login_ms, s.csrf, s.created_ms, s.last_seen_ms
		FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = ?`, id),
		&ss.CSRF, &ss.CreatedMS, &ss.LastSeenMS)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, fmt.Errorf("db: session: %w", plant.ErrNotFound)
	}
	if err != nil {
		return Session{}, fmt.Errorf("db: session: %w", err)
	}
	ss.User = u
	expired := nowMS-ss.CreatedMS >= sessionMaxAgeMS || (idleMS > 0 && nowMS-ss.LastSeenMS > idleMS)
	if expired {
		if _, err := s.w.ExecContext(ctx, `DELETE FROM sessions WHERE id_hash = ?`, id); err != nil {
			return Session{}, fmt.Errorf("db: session: delete expired: %w", err)
		}
		return Session{}, fmt.Errorf("db: session expired: %w", plant.ErrNotFound)
	}
	if u.Disabled {
		return Session{}, fmt.Errorf("db: session of a disabled user: %w", plant.ErrNotFound)
	}
	if nowMS-ss.LastSeenMS >= touchEveryMS {
		if _, err := s.w.ExecContext(ctx, `UPDATE sessions SET last_seen_ms = ? WHERE id_hash = ?`, nowMS, id); err != nil {
			return Session{}, fmt.Errorf("db: session: touch: %w", err)
		}
		ss.LastSeenMS = nowMS
	}
	return ss, nil
}

// DeleteSession ends a session (logout). An unknown secret is not an error.
func (s *Store) DeleteSession(ctx context.Context, secret string) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM sessions WHERE id_hash = ?`, secretHash(secret)); err != nil {
		return fmt.Errorf("db: delete session: %w", err)
	}
	return nil
}

// DeleteUserSessions ends every session of a user.
func (s *Store) DeleteUserSessions(ctx context.Context, userID int64) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ?`, userID); err != nil {
		return fmt.Errorf("db: delete sessions of user %d: %w", userID, err)
	}
	return nil
}

// Token kinds and API scopes.
const (
	TokenAPI     = "api"
	TokenDisplay = "display"
	ScopeRead    = "read"
	ScopeIngest  = "ingest"
	ScopeAll     = "all"
	boardScope   = "board:"
)

// Token is an API or display token as listed; its secret is shown once, at
// creation, and only its SHA-256 is stored.
type Token struct {
	ID         int64
	Kind       string // "api" | "display"
	Scope      string // api: "read" | "ingest"; display: "board:<id>" or "all"
	Name       string
	Prefix     string // the secret's first 10 characters, to recognise it
	CreatedBy  string
	CreatedMS  int64
	LastUsedMS int64
	RevokedMS  int64
}

func checkScope(kind, scope string) error {
	switch kind {
	case TokenAPI:
		if scope == ScopeRead || scope == ScopeIngest {
			return nil
		}
		return invalid("token scope %q: an API token is read or ingest", scope)
	case TokenDisplay:
		if scope == ScopeAll {
			return nil
		}
		if id, ok := strings.CutPrefix(scope, boardScope); ok {
			if n, err := strconv.ParseInt(id, 10, 64); err == nil && n > 0 && strconv.FormatInt(n, 10) == id {
				return nil
			}
		}
		return invalid("token scope %q: a display token is board:<id> or all", scope)
	}
	return invalid("token kind %q: want api or display", kind)
}

// CreateToken makes a token and returns it with its secret, "andon_" and 32
// random bytes in base64url, which is shown once and never stored.
func (s *Store) CreateToken(ctx context.Context, kind, scope, name, createdBy string) (Token, string, error) {
	if err := checkScope(kind, scope); err != nil {
		return Token{}, "", fmt.Errorf("db: create token: %w", err)
	}
	name, err := checkName("token", name)
	if err != nil {
		return Token{}, "", fmt.Errorf("db: create token: %w", err)
	}
	if utf8.RuneCountInString(createdBy) > maxTokenCreator {
		return Token{}, "", fmt.Errorf("db: create token: %w", invalid("creator name too long"))
	}
	raw, err := newSecret()
	if err != nil {
		return Token{}, "", fmt.Errorf("db: create token: %w", err)
	}
	secret := tokenSecretPrefix + raw
	t := Token{Kind: kind, Scope: scope, Name: name, Prefix: secret[:tokenPrefixLen], CreatedBy: createdBy, CreatedMS: wallMS()}
	res, err := s.w.ExecContext(ctx, `INSERT INTO tokens(kind, scope, name, prefix, hash, created_by, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		t.Kind, t.Scope, t.Name, t.Prefix, secretHash(secret), t.CreatedBy, t.CreatedMS)
	if err != nil {
		return Token{}, "", fmt.Errorf("db: create token %q: %w", name, err)
	}
	if t.ID, err = res.LastInsertId(); err != nil {
		return Token{}, "", fmt.Errorf("db: create token %q: %w", name, err)
	}
	return t, secret, nil
}

const tokenColumns = `id, kind, scope, name, prefix, created_by, created_ms, last_used_ms, revoked_ms`

func scanToken(row rowScanner) (Token, error) {
	var t Token
	err := row.Scan(&t.ID, &t.Kind, &t.Scope, &t.Name, &t.Prefix, &t.CreatedBy, &t.CreatedMS, &t.LastUsedMS, &t.RevokedMS)
	return t, err
}

// TokenBySecret returns the token of a secret from an Authorization header,
// or plant.ErrNotFound when it is unknown or revoked. Last used is written
// at most once a minute.
func (s *Store) TokenBySecret(ctx context.Context, secret string, nowMS int64) (Token, error) {
	if !strings.HasPrefix(secret, tokenSecretPrefix) {
		return Token{}, fmt.Errorf("db: token: %w", plant.ErrNotFound)
	}
	h := secretHash(secret)
	t, err := scanToken(s.r.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE hash = ?`, h))
	if errors.Is(err, sql.ErrNoRows) {
		return Token{}, fmt.Errorf("db: token: %w", plant.ErrNotFound)
	}
	if err != nil {
		return Token{}, fmt.Errorf("db: token: %w", err)
	}
	if t.RevokedMS != 0 {
		return Token{}, fmt.Errorf("db: token %s revoked: %w", t.Prefix, plant.ErrNotFound)
	}
	if nowMS-t.LastUsedMS >= touchEveryMS {
		if _, err := s.w.ExecContext(ctx, `UPDATE tokens SET last_used_ms = ? WHERE id = ?`, nowMS, t.ID); err != nil {
			return Token{}, fmt.Errorf("db: token %s: touch: %w", t.Prefix, err)
		}
		t.LastUsedMS = nowMS
	}
	return t, nil
}

// Tokens lists every token, revoked ones included, newest first.
func (s *Store) Tokens(ctx context.Context) ([]Token, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+tokenColumns+` FROM tokens ORDER BY id DESC`)
	if err != nil {
		return nil, fmt.Errorf("db: tokens: %w", err)
	}
	defer rows.Close()
	var ts []Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("db: tokens: %w", err)
		}
		ts = append(ts, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("db: tokens: %w", err)
	}
	return ts, nil
}

// RevokeToken stops a token from working, at once. Revoking a revoked token
// again keeps its first revocation time; an unknown id is plant.ErrNotFound.
func (s *Store) RevokeToken(ctx context.Context, id int64) error {
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE tokens SET revoked_ms = CASE WHEN revoked_ms = 0 THEN ? ELSE revoked_ms END WHERE id = ?`, wallMS(), id)
		if err != nil {
			return err
		}
		return mustAffect(res, notFound("token %d", id))
	})
	if err != nil {
		return fmt.Errorf("db: revoke token: %w", err)
	}
	return nil
}

// CreateSetupLink makes the one-time secret of the first-admin link,
// valid for ttl. It exists only while there are no users (else
// plant.ErrInvalid); a new link replaces an older one.
func (s *Store) CreateSetupLink(ctx context.Context, nowMS int64, ttl time.Duration) (string, error) {
	if ttl <= 0 {
		return "", fmt.Errorf("db: create setup link: %w", invalid("the link's lifetime must be positive"))
	}
	secret, err := newSecret()
	if err != nil {
		return "", fmt.Errorf("db: create setup link: %w", err)
	}
	err = s.writeTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM users`).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return invalid("there are users already; an admin adds more on the users page")
		}
		_, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO setup_links(id, hash, created_ms, expires_ms) VALUES (1, ?, ?, ?)`,
			secretHash(secret), nowMS, nowMS+ttl.Milliseconds())
		return err
	})
	if err != nil {
		return "", fmt.Errorf("db: create setup link: %w", err)
	}
	return secret, nil
}

// validSetupLink reports whether secret is the current, unexpired link.
func validSetupLink(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, secret string, nowMS int64) (bool, error) {
	var hash []byte
	var expires int64
	err := q.QueryRowContext(ctx, `SELECT hash, expires_ms FROM setup_links WHERE id = 1`).Scan(&hash, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(hash, secretHash(secret)) == 1 && nowMS < expires, nil
}

// UseSetupLink creates the first admin with the link's secret and consumes
// the link. A wrong, used or expired link is plant.ErrNotFound; a bad name or
// password is plant.ErrInvalid and leaves the link usable, to try again.
func (s *Store) UseSetupLink(ctx context.Context, secret, name, password string, nowMS int64) (User, error) {
	// Check the link before hashing, so wrong links cost no bcrypt time.
	ok, err := validSetupLink(ctx, s.r, secret, nowMS)
	if err != nil {
		return User{}, fmt.Errorf("db: setup link: %w", err)
	}
	if !ok {
		return User{}, fmt.Errorf("db: setup link: %w", plant.ErrNotFound)
	}
	name, err = checkUserName(name)
	if err != nil {
		return User{}, fmt.Errorf("db: setup link: %w", err)
	}
	hash, err := hashPassword(password)
	if err != nil {
		return User{}, fmt.Errorf("db: setup link: %w", err)
	}
	var u User
	err = s.writeTx(ctx, func(tx *sql.Tx) error {
		// Again under the write lock: a second request with the same link
		// may have got here first.
		ok, err := validSetupLink(ctx, tx, secret, nowMS)
		if err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM users`).Scan(&n); err != nil {
			return err
		}
		if !ok || n > 0 {
			return plant.ErrNotFound
		}
		if u, err = insertUser(ctx, tx, name, RoleAdmin, hash); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM setup_links`)
		return err
	})
	if err != nil {
		return User{}, fmt.Errorf("db: setup link: %w", err)
	}
	return u, nil
}
