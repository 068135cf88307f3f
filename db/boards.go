package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Board layouts.
const (
	LayoutTiles  = "tiles"  // one tile per machine
	LayoutLine   = "line"   // a line's big numbers
	LayoutPareto = "pareto" // this shift's stops by cost
)

// BoardLayouts lists the layouts in the order an admin picks from.
var BoardLayouts = []string{LayoutTiles, LayoutLine, LayoutPareto}

// MaxBoardRotateS is the longest a playlist shows one board.
const MaxBoardRotateS = 3600

// Board is a wall display's configuration.
type Board struct {
	ID        int64
	Name      string
	Layout    string  // "tiles" (one tile per machine), "line" (a line's big numbers), "pareto" (this shift's stops by cost)
	LineIDs   []int64 // which lines' machines to show; empty = all
	RotateS   int     // for a playlist: seconds before the next board (0 = no rotation)
	Next      int64   // playlist: the board shown after this one (0 = none); a chain of boards forms a playlist
	UpdatedMS int64   // changes when the board is edited, so open screens reload their layout
}

const boardColumns = `id, name, layout, line_ids, rotate_s, COALESCE(next_id, 0), updated_ms`

func scanBoard(sc interface{ Scan(...any) error }) (Board, error) {
	var b Board
	var lines string
	if err := sc.Scan(&b.ID, &b.Name, &b.Layout, &lines, &b.RotateS, &b.Next, &b.UpdatedMS); err != nil {
		return Board{}, err
	}
	ids, err := parseLineIDs(lines)
	if err != nil {
		return Board{}, fmt.Errorf("board %d: %w", b.ID, err)
	}
	b.LineIDs = ids
	return b, nil
}

// Boards lists every board by name.
func (s *Store) Boards(ctx context.Context) ([]Board, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+boardColumns+` FROM boards ORDER BY name COLLATE NOCASE, id`)
	if err != nil {
		return nil, fmt.Errorf("db: boards: %w", err)
	}
	defer rows.Close()
	var bs []Board
	for rows.Next() {
		b, err := scanBoard(rows)
		if err != nil {
			return nil, fmt.Errorf("db: boards: %w", err)
		}
		bs = append(bs, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("db: boards: %w", err)
	}
	return bs, nil
}

// Board returns one board, or plant.ErrNotFound.
func (s *Store) Board(ctx context.Context, id int64) (Board, error) {
	b, err := scanBoard(s.r.QueryRowContext(ctx, `SELECT `+boardColumns+` FROM boards WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Board{}, notFound("db: board %d", id)
	}
	if err != nil {
		return Board{}, fmt.Errorf("db: board %d: %w", id, err)
	}
	return b, nil
}

// SaveBoard inserts a board (ID 0) or replaces one, and returns its id. Its
// UpdatedMS becomes now (and always grows, so an open screen notices even two
// edits in one millisecond). plant.ErrInvalid for an empty or too long name,
// an unknown layout, RotateS outside 0…3600, a negative line id, or Next
// pointing to the board itself or to no board; plant.ErrNotFound when the
// board to replace does not exist. Boards may form a cycle through Next: that
// is a playlist that loops.
func (s *Store) SaveBoard(ctx context.Context, b Board) (int64, error) {
	name, err := checkName("board", b.Name)
	if err != nil {
		return 0, fmt.Errorf("db: save board: %w", err)
	}
	if !slices.Contains(BoardLayouts, b.Layout) {
		return 0, fmt.Errorf("db: save board: %w", invalid("layout %q: want tiles, line or pareto", b.Layout))
	}
	if b.RotateS < 0 || b.RotateS > MaxBoardRotateS {
		return 0, fmt.Errorf("db: save board: %w", invalid("rotation must be 0 to %d seconds", MaxBoardRotateS))
	}
	lines, err := formatLineIDs(b.LineIDs)
	if err != nil {
		return 0, fmt.Errorf("db: save board: %w", err)
	}
	if b.ID < 0 || b.Next < 0 {
		return 0, fmt.Errorf("db: save board: %w", invalid("board ids are positive"))
	}
	if b.ID != 0 && b.Next == b.ID {
		return 0, fmt.Errorf("db: save board: %w", invalid("a board cannot be its own next board"))
	}
	now := time.Now().UnixMilli()

	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("db: save board: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op

	var next any // NULL for none
	if b.Next != 0 {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM boards WHERE id = ?`, b.Next).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, fmt.Errorf("db: save board: %w", invalid("the next board (%d) does not exist", b.Next))
		}
		if err != nil {
			return 0, fmt.Errorf("db: save board: %w", err)
		}
		next = b.Next
	}
	id := b.ID
	if id == 0 {
		res, err := tx.ExecContext(ctx, `INSERT INTO boards(name, layout, line_ids, rotate_s, next_id, updated_ms)
			VALUES (?, ?, ?, ?, ?, ?)`, name, b.Layout, lines, b.RotateS, next, now)
		if err != nil {
			return 0, fmt.Errorf("db: save board: %w", err)
		}
		if id, err = res.LastInsertId(); err != nil {
			return 0, fmt.Errorf("db: save board: %w", err)
		}
	} else {
		res, err := tx.ExecContext(ctx, `UPDATE boards SET name = ?, layout = ?, line_ids = ?, rotate_s = ?, next_id = ?,
			updated_ms = MAX(?, updated_ms + 1) WHERE id = ?`, name, b.Layout, lines, b.RotateS, next, now, id)
		if err != nil {
			return 0, fmt.Errorf("db: save board %d: %w", id, err)
		}
		if err := deviceRowChanged(res, "board", id); err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("db: save board: %w", err)
	}
	return id, nil
}

// DeleteBoard removes a board (plant.ErrNotFound if there is none). Boards
// whose playlist went on to it stop there, and count as edited so their
// screens reload; display tokens made for it alone are revoked.
func (s *Store) DeleteBoard(ctx context.Context, id int64) error {
	now := time.Now().UnixMilli()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("db: board %d: delete: %w", id, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if _, err := tx.ExecContext(ctx, `UPDATE boards SET next_id = NULL, updated_ms = MAX(?, updated_ms + 1)
		WHERE next_id = ? AND id <> ?`, now, id, id); err != nil {
		return fmt.Errorf("db: board %d: delete: %w", id, err)
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM boards WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("db: board %d: delete: %w", id, err)
	}
	if err := deviceRowChanged(res, "board", id); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE tokens SET revoked_ms = ? WHERE kind = ? AND scope = ? AND revoked_ms = 0`,
		now, TokenDisplay, BoardScope(id)); err != nil {
		return fmt.Errorf("db: board %d: revoke its tokens: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("db: board %d: delete: %w", id, err)
	}
	return nil
}

// BoardScope is the display-token scope that grants one board.
func BoardScope(id int64) string { return boardScope + strconv.FormatInt(id, 10) }

// formatLineIDs stores line ids as ascending, distinct, comma-separated
// numbers. 0 is the implicit line of machines published without one.
func formatLineIDs(ids []int64) (string, error) {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	parts := make([]string, 0, len(ids))
	for _, id := range ids {
		if id < 0 {
			return "", invalid("line id %d: ids are not negative", id)
		}
		parts = append(parts, strconv.FormatInt(id, 10))
	}
	return strings.Join(parts, ","), nil
}

func parseLineIDs(s string) ([]int64, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	ids := make([]int64, 0, len(parts))
	for _, p := range parts {
		id, err := strconv.ParseInt(p, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("line ids %q: %w", s, err)
		}
		ids = append(ids, id)
	}
	return ids, nil
}
