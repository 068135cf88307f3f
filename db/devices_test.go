package db

import (
	"context"
	"errors"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"andon/plant"
)

func init() {
	// Device passwords are hashed at bcrypt's lowest cost here, so the
	// package's tests stay fast; the cost itself is bcrypt's business.
	deviceBcryptCost = bcrypt.MinCost
}

func TestCreateDeviceValidates(t *testing.T) {
	ctx := context.Background()
	s := OpenTest(t)
	if _, err := s.CreateDevice(ctx, "press-01", "correct horse", "acme/hall-1/line-1"); err != nil {
		t.Fatalf("CreateDevice: %v", err)
	}
	tests := []struct {
		name, user, pw, prefix string
	}{
		{"taken", "press-01", "correct horse", "acme"},
		{"empty username", "", "correct horse", "acme"},
		{"spaces around username", " press-02", "correct horse", "acme"},
		{"control char", "press\n02", "correct horse", "acme"},
		{"short password", "press-02", "short", "acme"},
		{"password over 72 bytes", "press-02", string(make([]byte, 73)), "acme"},
		{"empty prefix", "press-02", "correct horse", ""},
		{"only a slash", "press-02", "correct horse", "/"},
		{"plus", "press-02", "correct horse", "acme/+/line-1"},
		{"hash", "press-02", "correct horse", "acme/#"},
		{"empty level", "press-02", "correct horse", "acme//line-1"},
		{"leading slash", "press-02", "correct horse", "/acme"},
		{"dollar", "press-02", "correct horse", "$SYS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.CreateDevice(ctx, tt.user, tt.pw, tt.prefix)
			if !errors.Is(err, plant.ErrInvalid) {
				t.Errorf("CreateDevice(%q, %q) = %v, want plant.ErrInvalid", tt.user, tt.prefix, err)
			}
		})
	}
	ds, err := s.Devices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 {
		t.Errorf("%d devices after refused creations, want 1: %+v", len(ds), ds)
	}
}

func TestDeviceLifecycle(t *testing.T) {
	ctx := context.Background()
	s := OpenTest(t)
	d, err := s.CreateDevice(ctx, "Press-01", "correct horse", " acme/hall-1/line-1/ ")
	if err != nil {
		t.Fatal(err)
	}
	if d.ID == 0 || d.TopicPrefix != "acme/hall-1/line-1" || d.CreatedMS == 0 || d.Disabled {
		t.Errorf("created %+v: want an id, the prefix trimmed of spaces and its trailing slash", d)
	}
	if _, err := s.CreateDevice(ctx, "saw-02", "another secret", "acme/hall-1/line-2"); err != nil {
		t.Fatal(err)
	}

	auth := func(user, pw string) (Device, error) { return s.AuthenticateDevice(ctx, user, pw) }
	got, err := auth("Press-01", "correct horse")
	if err != nil {
		t.Fatalf("right password: %v", err)
	}
	if got.ID != d.ID || got.TopicPrefix != d.TopicPrefix || got.LastSeenMS == 0 {
		t.Errorf("authenticated %+v, want device %d with a last-seen time", got, d.ID)
	}
	for _, tt := range []struct{ name, user, pw string }{
		{"wrong password", "Press-01", "correct horsE"},
		{"username is case-sensitive", "press-01", "correct horse"},
		{"unknown", "nobody", "correct horse"},
		{"other device's password", "Press-01", "another secret"},
	} {
		if _, err := auth(tt.user, tt.pw); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("%s: %v, want ErrBadCredentials", tt.name, err)
		}
	}

	ds, err := s.Devices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2 || ds[0].Username != "Press-01" || ds[1].Username != "saw-02" || ds[0].LastSeenMS == 0 || ds[1].LastSeenMS != 0 {
		t.Errorf("devices %+v", ds)
	}

	// Disabled: the right password no longer works; enabled again, it does.
	if err := s.SetDeviceDisabled(ctx, d.ID, true); err != nil {
		t.Fatal(err)
	}
	if _, err := auth("Press-01", "correct horse"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("disabled device: %v, want ErrBadCredentials", err)
	}
	if err := s.SetDeviceDisabled(ctx, d.ID, false); err != nil {
		t.Fatal(err)
	}
	if _, err := auth("Press-01", "correct horse"); err != nil {
		t.Errorf("enabled again: %v", err)
	}

	// A new password replaces the old one.
	if err := s.SetDevicePassword(ctx, d.ID, "short"); !errors.Is(err, plant.ErrInvalid) {
		t.Errorf("short new password: %v, want plant.ErrInvalid", err)
	}
	if err := s.SetDevicePassword(ctx, d.ID, "battery staple"); err != nil {
		t.Fatal(err)
	}
	if _, err := auth("Press-01", "correct horse"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("old password: %v, want ErrBadCredentials", err)
	}
	if _, err := auth("Press-01", "battery staple"); err != nil {
		t.Errorf("new password: %v", err)
	}

	// Deleted: gone, and the username is free again.
	if err := s.DeleteDevice(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := auth("Press-01", "battery staple"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("deleted device: %v, want ErrBadCredentials", err)
	}
	if _, err := s.CreateDevice(ctx, "Press-01", "correct horse", "acme"); err != nil {
		t.Errorf("username of a deleted device: %v", err)
	}

	// Unknown ids are not found.
	for name, err := range map[string]error{
		"disable":  s.SetDeviceDisabled(ctx, 9999, true),
		"password": s.SetDevicePassword(ctx, 9999, "long enough pw"),
		"delete":   s.DeleteDevice(ctx, 9999),
	} {
		if !errors.Is(err, plant.ErrNotFound) {
			t.Errorf("%s of an unknown device: %v, want plant.ErrNotFound", name, err)
		}
	}
}

func TestDevicePasswordStoredHashed(t *testing.T) {
	ctx := context.Background()
	s := OpenTest(t)
	if _, err := s.CreateDevice(ctx, "plc", "correct horse", "acme"); err != nil {
		t.Fatal(err)
	}
	var hash string
	if err := s.r.QueryRowContext(ctx, `SELECT password_hash FROM devices WHERE username = 'plc'`).Scan(&hash); err != nil {
		t.Fatal(err)
	}
	if hash == "correct horse" || bcrypt.CompareHashAndPassword([]byte(hash), []byte("correct horse")) != nil {
		t.Errorf("stored %q, want a bcrypt hash of the password", hash)
	}
}
