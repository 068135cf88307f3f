package db

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"
)

// AuditEntry is one line of the audit log: who (a user name, "token:<prefix>"
// or "cli") did what to which object, and when (epoch ms).
type AuditEntry struct {
	ID, TS                        int64
	Actor, Action, Object, Detail string
}

// Caps on what an entry keeps. An audit entry is never refused for its
// length: a long detail is cut, so a change is still recorded.
const (
	maxAuditField  = 200
	maxAuditDetail = 2000
	defaultAudit   = 100
	maxAuditPage   = 1000
)

// clip cuts s to at most n characters, marking the cut.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// Audit appends an entry; a TS of 0 means now.
func (s *Store) Audit(ctx context.Context, e AuditEntry) error {
	if e.TS == 0 {
		e.TS = wallMS()
	}
	if strings.TrimSpace(e.Actor) == "" || strings.TrimSpace(e.Action) == "" {
		return fmt.Errorf("db: audit: %w", invalid("an entry needs an actor and an action"))
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO audit(ts_ms, actor, action, object, detail) VALUES (?, ?, ?, ?, ?)`,
		e.TS, clip(e.Actor, maxAuditField), clip(e.Action, maxAuditField), clip(e.Object, maxAuditField), clip(e.Detail, maxAuditDetail))
	if err != nil {
		return fmt.Errorf("db: audit %s: %w", e.Action, err)
	}
	return nil
}

// AuditLog returns a page of the log, newest first: the entries before
// beforeID (0: from the newest), at most limit of them (100 when limit is
// not positive, never more than 1,000). The last entry's ID is the next
// page's beforeID.
func (s *Store) AuditLog(ctx context.Context, beforeID int64, limit int) ([]AuditEntry, error) {
	if limit <= 0 {
		limit = defaultAudit
	}
	limit = min(limit, maxAuditPage)
	q := `SELECT id, ts_ms, actor, action, object, detail FROM audit ORDER BY id DESC LIMIT ?`
	args := []any{limit}
	if beforeID > 0 {
		q = `SELECT id, ts_ms, actor, action, object, detail FROM audit WHERE id < ? ORDER BY id DESC LIMIT ?`
		args = []any{beforeID, limit}
	}
	var out []AuditEntry
	err := s.auditRows(ctx, q, args, func(e AuditEntry) error {
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("db: audit log: %w", err)
	}
	return out, nil
}

// AuditAll calls each for every entry, oldest first, reading row by row so
// a CSV export of a long log does not hold it all in memory. An error from
// each stops the walk and is returned.
func (s *Store) AuditAll(ctx context.Context, each func(AuditEntry) error) error {
	err := s.auditRows(ctx, `SELECT id, ts_ms, actor, action, object, detail FROM audit ORDER BY id`, nil, each)
	if err != nil {
		return fmt.Errorf("db: audit export: %w", err)
	}
	return nil
}

func (s *Store) auditRows(ctx context.Context, q string, args []any, each func(AuditEntry) error) error {
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var e AuditEntry
		if err := rows.Scan(&e.ID, &e.TS, &e.Actor, &e.Action, &e.Object, &e.Detail); err != nil {
			return err
		}
		if err := each(e); err != nil {
			return err
		}
	}
	return rows.Err()
}
