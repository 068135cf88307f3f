package views

import (
	"sort"
	"strconv"
	"strings"

	"andon/plant"
)

// StateMapText shows a plant's own state words and codes one per line,
// "word = state", codes first, as the settings form takes them back.
func StateMapText(st plant.Settings) string {
	var codes []float64
	for c := range st.StateCodes {
		codes = append(codes, c)
	}
	sort.Float64s(codes)
	var lines []string
	for _, c := range codes {
		lines = append(lines, strconv.FormatFloat(c, 'f', -1, 64)+" = "+string(st.StateCodes[c]))
	}
	var words []string
	for w := range st.StateWords {
		words = append(words, w)
	}
	sort.Strings(words)
	for _, w := range words {
		lines = append(lines, w+" = "+string(st.StateWords[w]))
	}
	return strings.Join(lines, "\n")
}
