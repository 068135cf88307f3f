package db

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"andon/plant"
)

// Device credentials for the embedded broker. bcrypt cost 10 is about 50 ms
// on a small server: a device connects rarely (and the broker caches a
// success), so the cost is paid seldom, while a stolen database still costs
// an attacker dearly per guess.
const (
	maxDeviceUsernameBytes = 128
	minDevicePasswordRunes = 10
	// bcrypt reads at most 72 bytes; longer passwords are refused rather
	// than silently cut.
	maxDevicePasswordBytes = 72
	maxTopicPrefixBytes    = 256
	// deviceSeenEvery is how often a device's last-seen time is written: a
	// reconnect storm must not become a write storm.
	deviceSeenEvery = time.Minute
	// noDeviceHash is a bcrypt hash (cost 10) of a password nobody uses, so
	// that an unknown username costs the same bcrypt time as a known one and
	// the answer time does not tell which usernames exist.
	noDeviceHash = "$2a$10$77b7RPgJpScuU.nKya4.beYF8e5UN8XvkGGHXbe8LqZO4BLC7w.IS"
)

// deviceBcryptCost is the cost of new device password hashes; the package's
// tests lower it so they stay fast. Nothing else writes it.
var deviceBcryptCost = 10

// Device is an MQTT client allowed to connect to the embedded broker with a
// username and password, limited to the topics under TopicPrefix.
type Device struct {
	ID          int64
	Username    string
	TopicPrefix string
	Disabled    bool
	CreatedMS   int64
	LastSeenMS  int64 // last successful authentication (written at most once a minute); 0 = never
}

// CreateDevice adds a device. plant.ErrInvalid (wrapped, with a message for
// the admin) for a username that is empty, too long or taken, a password
// under 10 characters, or a topic prefix that is empty, has wildcards or
// empty levels.
func (s *Store) CreateDevice(ctx context.Context, username, password, topicPrefix string) (Device, error) {
	if err := checkDeviceUsername(username); err != nil {
		return Device{}, err
	}
	prefix, err := cleanTopicPrefix(topicPrefix)
	if err != nil {
		return Device{}, err
	}
	hash, err := hashDevicePassword(password)
	if err != nil {
		return Device{}, err
	}
	d := Device{Username: username, TopicPrefix: prefix, CreatedMS: time.Now().UnixMilli()}
	res, err := s.w.ExecContext(ctx, `INSERT INTO devices(username, password_hash, topic_prefix, created_ms)
		VALUES (?, ?, ?, ?) ON CONFLICT(username) DO NOTHING`, username, hash, prefix, d.CreatedMS)
	if err != nil {
		return Device{}, fmt.Errorf("db: create device: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return Device{}, fmt.Errorf("db: create device: %w", err)
	} else if n == 0 {
		return Device{}, fmt.Errorf("db: a device named %q already exists: %w", username, plant.ErrInvalid)
	}
	if d.ID, err = res.LastInsertId(); err != nil {
		return Device{}, fmt.Errorf("db: create device: %w", err)
	}
	return d, nil
}

// Devices lists every device by username.
func (s *Store) Devices(ctx context.Context) ([]Device, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, username, topic_prefix, disabled, created_ms, last_seen_ms
		FROM devices ORDER BY username`)
	if err != nil {
		return nil, fmt.Errorf("db: devices: %w", err)
	}
	defer rows.Close()
	var ds []Device
	for rows.Next() {
		var d Device
		if err := rows.Scan(&d.ID, &d.Username, &d.TopicPrefix, &d.Disabled, &d.CreatedMS, &d.LastSeenMS); err != nil {
			return nil, fmt.Errorf("db: devices: %w", err)
		}
		ds = append(ds, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("db: devices: %w", err)
	}
	return ds, nil
}

// SetDeviceDisabled disables or enables a device. A disabled device cannot
// connect; the broker notices within its credential cache's lifetime.
func (s *Store) SetDeviceDisabled(ctx context.Context, id int64, disabled bool) error {
	res, err := s.w.ExecContext(ctx, `UPDATE devices SET disabled = ? WHERE id = ?`, disabled, id)
	if err != nil {
		return fmt.Errorf("db: device %d: set disabled: %w", id, err)
	}
	return deviceRowChanged(res, "device", id)
}

// SetDevicePassword replaces a device's password (same rules as CreateDevice).
func (s *Store) SetDevicePassword(ctx context.Context, id int64, password string) error {
	hash, err := hashDevicePassword(password)
	if err != nil {
		return err
	}
	res, err := s.w.ExecContext(ctx, `UPDATE devices SET password_hash = ? WHERE id = ?`, hash, id)
	if err != nil {
		return fmt.Errorf("db: device %d: set password: %w", id, err)
	}
	return deviceRowChanged(res, "device", id)
}

// DeleteDevice removes a device; its username can then be used again.
func (s *Store) DeleteDevice(ctx context.Context, id int64) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM devices WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("db: device %d: delete: %w", id, err)
	}
	return deviceRowChanged(res, "device", id)
}

// AuthenticateDevice checks a device's username and password. Unknown,
// disabled and wrong all give ErrBadCredentials, and an unknown username costs
// a bcrypt comparison too, so neither the answer nor its time tells which
// usernames exist. A success records when the device was last seen.
func (s *Store) AuthenticateDevice(ctx context.Context, username, password string) (Device, error) {
	var d Device
	var hash string
	err := s.r.QueryRowContext(ctx, `SELECT id, username, password_hash, topic_prefix, disabled, created_ms, last_seen_ms
		FROM devices WHERE username = ?`, username).
		Scan(&d.ID, &d.Username, &hash, &d.TopicPrefix, &d.Disabled, &d.CreatedMS, &d.LastSeenMS)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		_ = bcrypt.CompareHashAndPassword([]byte(noDeviceHash), []byte(password))
		return Device{}, fmt.Errorf("db: device: %w", ErrBadCredentials)
	case err != nil:
		return Device{}, fmt.Errorf("db: device: %w", err)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)); err != nil || d.Disabled {
		return Device{}, fmt.Errorf("db: device: %w", ErrBadCredentials)
	}
	now := time.Now().UnixMilli()
	if now-d.LastSeenMS >= deviceSeenEvery.Milliseconds() {
		if _, err := s.w.ExecContext(ctx, `UPDATE devices SET last_seen_ms = ? WHERE id = ?`, now, d.ID); err != nil {
			// The credentials are right; a failed bookkeeping write (the
			// database busy under a backlog) must not lock a device out of
			// the plant, so it is logged here and the login stands.
			s.log.Warn("db: device last-seen time not written", "device_id", d.ID, "error", err)
			return d, nil
		}
		d.LastSeenMS = now
	}
	return d, nil
}

// deviceRowChanged turns an UPDATE or DELETE that touched nothing into plant.ErrNotFound.
func deviceRowChanged(res sql.Result, what string, id int64) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("db: %s %d: %w", what, id, err)
	}
	if n == 0 {
		return fmt.Errorf("db: %s %d: %w", what, id, plant.ErrNotFound)
	}
	return nil
}

func checkDeviceUsername(u string) error {
	switch {
	case u == "":
		return fmt.Errorf("db: a device needs a username: %w", plant.ErrInvalid)
	case len(u) > maxDeviceUsernameBytes:
		return fmt.Errorf("db: a device username has at most %d bytes: %w", maxDeviceUsernameBytes, plant.ErrInvalid)
	case !utf8.ValidString(u) || strings.IndexFunc(u, unicode.IsControl) >= 0:
		return fmt.Errorf("db: a device username cannot contain control characters: %w", plant.ErrInvalid)
	case strings.TrimSpace(u) != u:
		return fmt.Errorf("db: a device username cannot start or end with a space: %w", plant.ErrInvalid)
	}
	return nil
}

func hashDevicePassword(pw string) (string, error) {
	switch {
	case utf8.RuneCountInString(pw) < minDevicePasswordRunes:
		return "", fmt.Errorf("db: a device password needs at least %d characters: %w", minDevicePasswordRunes, plant.ErrInvalid)
	case len(pw) > maxDevicePasswordBytes:
		return "", fmt.Errorf("db: a device password has at most %d bytes: %w", maxDevicePasswordBytes, plant.ErrInvalid)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), deviceBcryptCost)
	if err != nil {
		return "", fmt.Errorf("db: hash device password: %w", err)
	}
	return string(h), nil
}

// cleanTopicPrefix checks a device's topic prefix: one or more whole topic
// levels, none empty, without wildcards (MQTT-4.7.1-1) and not a $ topic,
// which belong to the broker (MQTT-4.7.2-1). An empty prefix is refused
// rather than taken as "every topic": a device limited to nothing by mistake
// must not become a device allowed everything. One trailing slash is dropped,
// since "acme/hall-1/" plainly means the levels under acme/hall-1.
func cleanTopicPrefix(p string) (string, error) {
	p = strings.TrimSuffix(strings.TrimSpace(p), "/")
	switch {
	case p == "":
		return "", fmt.Errorf("db: a device needs a topic prefix of at least one level, like acme/hall-1: %w", plant.ErrInvalid)
	case len(p) > maxTopicPrefixBytes:
		return "", fmt.Errorf("db: a topic prefix has at most %d bytes: %w", maxTopicPrefixBytes, plant.ErrInvalid)
	case strings.ContainsAny(p, "+#"):
		return "", fmt.Errorf("db: a topic prefix cannot contain the wildcards + or #: %w", plant.ErrInvalid)
	case strings.HasPrefix(p, "$"):
		return "", fmt.Errorf("db: a topic prefix cannot start with $: %w", plant.ErrInvalid)
	case !utf8.ValidString(p) || strings.IndexFunc(p, unicode.IsControl) >= 0:
		return "", fmt.Errorf("db: a topic prefix cannot contain control characters: %w", plant.ErrInvalid)
	}
	for _, level := range strings.Split(p, "/") {
		if level == "" {
			return "", fmt.Errorf("db: a topic prefix cannot have empty levels (//, or a leading /): %w", plant.ErrInvalid)
		}
	}
	return p, nil
}

// GenerateDevicePassword makes a device password of 24 random bytes (32
// URL-safe characters): typed once into a device, never remembered by a
// person, so it can be long.
func GenerateDevicePassword() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("db: generate a device password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
