package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

const backupSynopsis = "andon backup --data DIR --out FILE"

// backupCmd writes a consistent copy of the database while "andon serve"
// may be running on it: SQLite's VACUUM INTO reads one snapshot without
// stopping the writer (see db.Store.Backup).
func (env *environment) backupCmd(ctx context.Context, args []string) error {
	fset := flag.NewFlagSet("backup", flag.ContinueOnError)
	var data, out string
	fset.StringVar(&data, "data", "./data", "directory of the SQLite database (andon.db)")
	fset.StringVar(&out, "out", "", "the file to write; it must not exist yet")
	if _, err := env.parse(fset, args, backupSynopsis); err != nil {
		return err
	}
	if out == "" {
		return fmt.Errorf("backup: --out FILE is needed (for example --out andon-%s.db)", time.Now().Format("2006-01-02"))
	}
	store, err := env.openUserStore(ctx, data, false)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer store.Close()
	start := time.Now()
	if err := store.BackupFile(ctx, out); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	fi, err := os.Stat(out)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	abs, _ := filepath.Abs(out)
	fmt.Fprintf(env.stdout, "backup of %s written to %s (%.1f MB) in %s\n",
		store.Path(), abs, float64(fi.Size())/1e6, time.Since(start).Round(time.Millisecond))
	return nil
}
