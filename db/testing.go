package db

import (
	"context"
	"path/filepath"
	"testing"
)

// OpenTest opens a fresh store on a file in t.TempDir() and closes it when the
// test ends. It lives outside _test files so other packages' tests can use it.
func OpenTest(t testing.TB) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "andon.db"), Options{})
	if err != nil {
		t.Fatalf("db.OpenTest: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("db.OpenTest: close: %v", err)
		}
	})
	return s
}
