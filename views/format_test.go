package views

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"andon/plant"
)

func TestFormatNumber(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0"},
		{23.5, "23.5"},
		{1200, "1,200"},
		{1234.5, "1,234.5"},
		{1234567.89, "1,234,567.9"},
		{-9876.54, "-9,876.5"},
		{3.14159, "3.14"},
		{150.26, "150.3"},
		{0.00123, "0.00123"},
		{-0.0000001, "-0.0000001"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			if got := FormatNumber(tc.in); got != tc.want {
				t.Errorf("FormatNumber(%v) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0 s"},
		{3 * time.Second, "3 s"},
		{4*time.Minute + 5*time.Second, "4 min 05 s"},
		{time.Hour + 23*time.Minute + 59*time.Second, "1 h 23 min"},
		{50 * time.Hour, "2 d 2 h"},
		{-time.Second, "0 s"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			if got := FormatDuration(tc.in); got != tc.want {
				t.Errorf("FormatDuration(%v) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
	if got := FormatAge(0, 1000); got != "never" {
		t.Errorf("FormatAge(0) = %q", got)
	}
	if got := FormatAge(1000, 4000); got != "3 s ago" {
		t.Errorf("FormatAge = %q", got)
	}
}

func TestEscapedPayload(t *testing.T) {
	tests := []struct {
		in   []byte
		want string
	}{
		{[]byte("23.5"), "23.5"},
		{[]byte("a\x00\xffb\n"), `a\x00\xffb\n`},
		{[]byte(`{"v":1}`), `{\"v\":1}`},
		{bytes.Repeat([]byte("x"), 300), strings.Repeat("x", 200) + "…"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			if got := EscapedPayload(tc.in); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestTileShowsStateNameAndUnits(t *testing.T) {
	tests := []struct {
		state plant.State
		label string
	}{
		{plant.Running, "Running"},
		{plant.PlannedStop, "Planned stop"},
		{plant.Offline, "Offline"},
		{plant.Unknown, "No state"},
	}
	for _, tc := range tests {
		t.Run(string(tc.state), func(t *testing.T) {
			tile := Tile{ID: 7, Name: "press-07", State: tc.state, LastSeen: 1000, NowMS: 4000,
				Values: []Value{{TagID: 1, Metric: "temperature", Unit: "°C", Number: 1234.5, TS: 1000}}}
			var buf bytes.Buffer
			if err := TileView(tile).Render(context.Background(), &buf); err != nil {
				t.Fatal(err)
			}
			html := buf.String()
			for _, want := range []string{">" + tc.label + "<", "1,234.5", "°C", `data-testid="machine-tile-7"`, "3 s ago", "state-" + string(tc.state)} {
				if !strings.Contains(html, want) {
					t.Errorf("tile lacks %q:\n%s", want, html)
				}
			}
		})
	}
}
