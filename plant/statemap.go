package plant

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ParseStateMap reads a plant's own state words and codes, one per line as
// "word = state" or "7 = state" (blank lines and lines starting with # are
// skipped). The state must be one a device can report: running, idle, down,
// changeover or planned_stop. Errors name the line.
func ParseStateMap(text string) (codes map[float64]State, words map[string]State, err error) {
	codes, words = map[float64]State{}, map[string]State{}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		if !ok || key == "" || val == "" {
			return nil, nil, fmt.Errorf("line %d: %q: want word = state, e.g. Störung = down: %w", i+1, line, ErrInvalid)
		}
		if err := AddStateMapping(codes, words, key, val); err != nil {
			return nil, nil, fmt.Errorf("line %d: %w", i+1, err)
		}
	}
	return codes, words, nil
}

// AddStateMapping adds one "key = state" pair: a number is a code, anything
// else a word (matched case-insensitively).
func AddStateMapping(codes map[float64]State, words map[string]State, key, state string) error {
	s := State(strings.ToLower(strings.TrimSpace(state)))
	switch s {
	case Running, Idle, Down, Changeover, PlannedStop:
	default:
		return fmt.Errorf("%q: want running, idle, down, changeover or planned_stop: %w", state, ErrInvalid)
	}
	if len(key) > 64 {
		return fmt.Errorf("%q: at most 64 characters: %w", key, ErrInvalid)
	}
	if f, err := strconv.ParseFloat(key, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
		codes[f] = s
		return nil
	}
	words[strings.ToLower(key)] = s
	return nil
}
