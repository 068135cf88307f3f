package plant

import (
	"errors"
	"reflect"
	"testing"
)

func TestParseStateMap(t *testing.T) {
	tests := []struct {
		name      string
		text      string
		wantCodes map[float64]State
		wantWords map[string]State
		wantErr   bool
	}{
		{"empty", "", map[float64]State{}, map[string]State{}, false},
		{"words and codes", "Störung = down\n# a comment\n\n7 = running\n8=Planned_Stop",
			map[float64]State{7: Running, 8: PlannedStop}, map[string]State{"störung": Down}, false},
		{"no equals", "Störung down", nil, nil, true},
		{"unknown state", "x = broken", nil, nil, true},
		{"offline is Andon's conclusion", "x = offline", nil, nil, true},
		{"empty key", " = down", nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			codes, words, err := ParseStateMap(tt.text)
			if tt.wantErr {
				if err == nil || !errors.Is(err, ErrInvalid) {
					t.Fatalf("err = %v, want an ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(codes, tt.wantCodes) || !reflect.DeepEqual(words, tt.wantWords) {
				t.Errorf("got %v %v, want %v %v", codes, words, tt.wantCodes, tt.wantWords)
			}
		})
	}
	// A mapped word reaches the state: MapState uses the settings first.
	_, words, _ := ParseStateMap("Störung = down")
	if got := MapState("STÖRUNG", 0, true, Settings{StateWords: words}); got != Down {
		t.Errorf("MapState(STÖRUNG) = %q, want down", got)
	}
}
