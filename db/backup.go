package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
)

// Backup writes a consistent copy of the database to dest, which must not
// exist yet (or be empty), while ingest goes on. It uses VACUUM INTO: one
// read transaction on the source, so the copy holds exactly the commits made
// before it began, and the writer is never blocked (WAL readers do not block
// the writer). The copy is compacted and has no WAL of its own, so it is a
// single file that opens anywhere.
//
// It runs on a connection of its own: the read pool is query_only, which
// SQLite takes to forbid VACUUM INTO as well.
func (s *Store) Backup(ctx context.Context, dest string) error {
	abs, err := filepath.Abs(dest)
	if err != nil {
		return fmt.Errorf("db: backup to %s: %w", dest, err)
	}
	if abs == s.path {
		return fmt.Errorf("db: backup to %s: that is the database itself", dest)
	}
	b, err := sql.Open("sqlite", dsn(s.path, url.Values{"_pragma": {"busy_timeout(5000)"}}))
	if err != nil {
		return fmt.Errorf("db: backup to %s: %w", dest, err)
	}
	defer b.Close()
	b.SetMaxOpenConns(1)
	if _, err := b.ExecContext(ctx, "VACUUM INTO ?", abs); err != nil {
		return fmt.Errorf("db: backup to %s: %w", dest, err)
	}
	return nil
}

// BackupTo writes a consistent copy of the database to w: Backup into a
// temporary file beside the database (the same disk, which has room for
// it; /tmp is often a small RAM disk), copied to w and removed. It returns
// the bytes written.
func (s *Store) BackupTo(ctx context.Context, w io.Writer) (int64, error) {
	f, err := os.CreateTemp(filepath.Dir(s.path), ".andon-backup-*.db")
	if err != nil {
		return 0, fmt.Errorf("db: backup: %w", err)
	}
	name := f.Name()
	defer os.Remove(name)
	// VACUUM INTO accepts an existing empty file; ours stays empty until then.
	if err := f.Close(); err != nil {
		return 0, fmt.Errorf("db: backup: %w", err)
	}
	if err := s.Backup(ctx, name); err != nil {
		return 0, err
	}
	f, err = os.Open(name)
	if err != nil {
		return 0, fmt.Errorf("db: backup: %w", err)
	}
	defer f.Close()
	n, err := io.Copy(w, f)
	if err != nil {
		return n, fmt.Errorf("db: backup: copy: %w", err)
	}
	return n, nil
}

// BackupFile writes a consistent copy to path, refusing to overwrite a file
// that exists: the copy is made under a temporary name in the same
// directory and renamed when complete, so path is never a half-written file.
func (s *Store) BackupFile(ctx context.Context, path string) error {
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("db: backup to %s: the file exists; choose a new name", path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("db: backup to %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("db: backup to %s: %w", path, err)
	}
	tmp := f.Name()
	f.Close()
	defer os.Remove(tmp) // a no-op after the rename
	if err := s.Backup(ctx, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("db: backup to %s: %w", path, err)
	}
	return nil
}
