package db

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"andon/plant"
)

func TestBoardsRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := OpenTest(t)
	if bs, err := s.Boards(ctx); err != nil || len(bs) != 0 {
		t.Fatalf("Boards of a new store = %v, %v; want none", bs, err)
	}
	a, err := s.SaveBoard(ctx, Board{Name: " Hall 1 ", Layout: LayoutTiles, LineIDs: []int64{7, 3, 7}, RotateS: 30})
	if err != nil {
		t.Fatalf("SaveBoard: %v", err)
	}
	b, err := s.SaveBoard(ctx, Board{Name: "Pareto", Layout: LayoutPareto, Next: a})
	if err != nil {
		t.Fatalf("SaveBoard: %v", err)
	}
	got, err := s.Board(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "Hall 1" || got.Layout != LayoutTiles || !slices.Equal(got.LineIDs, []int64{3, 7}) ||
		got.RotateS != 30 || got.Next != 0 || got.UpdatedMS == 0 || got.ID != a {
		t.Errorf("Board(%d) = %+v", a, got)
	}
	// A playlist loop: a → b → a.
	got.Next = b
	got.LineIDs = nil
	if _, err := s.SaveBoard(ctx, got); err != nil {
		t.Fatalf("SaveBoard(loop): %v", err)
	}
	edited, err := s.Board(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if edited.Next != b || edited.LineIDs != nil || edited.UpdatedMS <= got.UpdatedMS {
		t.Errorf("edited board = %+v; want next %d, all lines, UpdatedMS > %d", edited, b, got.UpdatedMS)
	}
	bs, err := s.Boards(ctx)
	if err != nil || len(bs) != 2 || bs[0].Name != "Hall 1" || bs[1].Name != "Pareto" || bs[1].Next != a {
		t.Fatalf("Boards = %+v, %v", bs, err)
	}

	// Deleting a ends b's playlist there and marks b edited; a's display
	// tokens are revoked, others stay.
	_, secretA, err := s.CreateToken(ctx, TokenDisplay, BoardScope(a), "board a", "test")
	if err != nil {
		t.Fatal(err)
	}
	_, secretB, err := s.CreateToken(ctx, TokenDisplay, BoardScope(b), "board b", "test")
	if err != nil {
		t.Fatal(err)
	}
	before, _ := s.Board(ctx, b)
	if err := s.DeleteBoard(ctx, a); err != nil {
		t.Fatalf("DeleteBoard: %v", err)
	}
	if _, err := s.Board(ctx, a); !errors.Is(err, plant.ErrNotFound) {
		t.Errorf("Board of a deleted board: %v, want ErrNotFound", err)
	}
	after, err := s.Board(ctx, b)
	if err != nil || after.Next != 0 || after.UpdatedMS <= before.UpdatedMS {
		t.Errorf("board after its next was deleted = %+v, %v; want Next 0 and a newer UpdatedMS than %d", after, err, before.UpdatedMS)
	}
	if _, err := s.TokenBySecret(ctx, secretA, after.UpdatedMS); err == nil {
		t.Error("a deleted board's display token still works")
	}
	if _, err := s.TokenBySecret(ctx, secretB, after.UpdatedMS); err != nil {
		t.Errorf("another board's display token stopped working: %v", err)
	}
	if err := s.DeleteBoard(ctx, a); !errors.Is(err, plant.ErrNotFound) {
		t.Errorf("DeleteBoard twice: %v, want ErrNotFound", err)
	}
	if _, err := s.SaveBoard(ctx, Board{ID: a, Name: "x", Layout: LayoutTiles}); !errors.Is(err, plant.ErrNotFound) {
		t.Errorf("SaveBoard of a deleted board: %v, want ErrNotFound", err)
	}
	// Ids are never reused, so an old board:<id> token cannot grant a new board.
	c, err := s.SaveBoard(ctx, Board{Name: "New", Layout: LayoutLine})
	if err != nil || c == a {
		t.Errorf("new board id %d (%v), want not the deleted %d", c, err, a)
	}
}

func TestSaveBoardValidates(t *testing.T) {
	ctx := context.Background()
	s := OpenTest(t)
	a, err := s.SaveBoard(ctx, Board{Name: "A", Layout: LayoutTiles})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		b    Board
	}{
		{"empty name", Board{Name: "  ", Layout: LayoutTiles}},
		{"long name", Board{Name: strings.Repeat("x", maxNameLen+1), Layout: LayoutTiles}},
		{"no layout", Board{Name: "B"}},
		{"unknown layout", Board{Name: "B", Layout: "carousel"}},
		{"negative rotation", Board{Name: "B", Layout: LayoutTiles, RotateS: -1}},
		{"rotation over an hour", Board{Name: "B", Layout: LayoutTiles, RotateS: 3601}},
		{"next is itself", Board{ID: a, Name: "A", Layout: LayoutTiles, Next: a}},
		{"next unknown", Board{Name: "B", Layout: LayoutTiles, Next: a + 100}},
		{"negative next", Board{Name: "B", Layout: LayoutTiles, Next: -1}},
		{"negative line", Board{Name: "B", Layout: LayoutTiles, LineIDs: []int64{-2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.SaveBoard(ctx, tt.b); !errors.Is(err, plant.ErrInvalid) {
				t.Errorf("SaveBoard(%+v) = %v, want ErrInvalid", tt.b, err)
			}
		})
	}
	if bs, _ := s.Boards(ctx); len(bs) != 1 {
		t.Errorf("%d boards after refused saves, want 1", len(bs))
	}
	if _, err := s.SaveBoard(ctx, Board{Name: "B", Layout: LayoutLine, RotateS: 3600, Next: a}); err != nil {
		t.Errorf("the limits themselves are refused: %v", err)
	}
}
