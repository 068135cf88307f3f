package db

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenMigrates(t *testing.T) {
	ctx := context.Background()
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 {
		t.Fatal("no embedded migrations")
	}
	// A directory that does not exist yet, with a character that means
	// something in a URI, to check the parent is created and the path escaped.
	path := filepath.Join(t.TempDir(), "new dir#1", "andon.db")

	for round := range 3 {
		s, err := Open(ctx, path, Options{})
		if err != nil {
			t.Fatalf("open, round %d: %v", round, err)
		}
		var v int
		if err := s.r.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v != len(ms) {
			t.Errorf("round %d: user_version = %d, want %d", round, v, len(ms))
		}
		if got := countRows(t, s, "assets"); got != 0 {
			t.Errorf("round %d: assets = %d, want 0", round, got)
		}
		if err := s.Ping(ctx); err != nil {
			t.Errorf("ping: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
	}
}

func TestOpenPragmas(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		sync     string
		wantSync int
		wantErr  bool
	}{
		{name: "default is NORMAL", sync: "", wantSync: 1},
		{name: "FULL", sync: "FULL", wantSync: 2},
		{name: "lower case", sync: "normal", wantSync: 1},
		{name: "unknown", sync: "OFF", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(ctx, filepath.Join(t.TempDir(), "a.db"), Options{Synchronous: tt.sync})
			if tt.wantErr {
				if err == nil {
					s.Close()
					t.Fatal("Open succeeded, want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var syncMode int
			var journal string
			var fk int
			if err := s.w.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&syncMode); err != nil {
				t.Fatal(err)
			}
			if err := s.w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&journal); err != nil {
				t.Fatal(err)
			}
			if err := s.w.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil {
				t.Fatal(err)
			}
			if syncMode != tt.wantSync || journal != "wal" || fk != 1 {
				t.Errorf("synchronous=%d journal=%s foreign_keys=%d, want %d wal 1", syncMode, journal, fk, tt.wantSync)
			}
			// The read pool must refuse writes.
			_, err = s.r.ExecContext(ctx, "INSERT INTO words(word) VALUES ('x')")
			if err == nil || !strings.Contains(strings.ToLower(err.Error()), "readonly") {
				t.Errorf("write on the read pool: err = %v, want a read-only error", err)
			}
		})
	}
}

func TestOpenRejectsNewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a.db")
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, "PRAGMA user_version = 999"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(ctx, path, Options{})
	if err == nil {
		s.Close()
		t.Fatal("Open of a newer schema succeeded, want an error")
	}
	if !strings.Contains(err.Error(), "newer") {
		t.Errorf("err = %v, want it to say the schema is newer", err)
	}
}

// TestNewFileHasLargePages: a new database gets 8 KiB pages (they waste less
// of each page under readings of many tags), and an existing one keeps the
// size it was made with.
func TestNewFileHasLargePages(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	pageSize := func(s *Store) int {
		var n int
		if err := s.r.QueryRowContext(ctx, `PRAGMA page_size`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	s, err := Open(ctx, filepath.Join(dir, "new.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := pageSize(s); got != 8192 {
		t.Errorf("new file: page size %d, want 8192", got)
	}
	var mode string
	if err := s.r.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal mode %q (%v), want wal", mode, err)
	}
	s.Close()

	old := filepath.Join(dir, "old.db")
	raw, err := sql.Open("sqlite", "file:"+old+"?_pragma=page_size(4096)&_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`CREATE TABLE x(a)`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	s, err = Open(ctx, old, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := pageSize(s); got != 4096 {
		t.Errorf("existing file: page size %d, want the 4096 it was made with", got)
	}
}
