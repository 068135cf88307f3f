package web

import (
	"testing"
	"time"
)

// FuzzExportParams: the parameters of every CSV and JSON export (ids,
// ranges in epoch ms, RFC 3339 or days) never panic, and what they accept
// is sane: positive ids, within the bound, and a range that starts before
// it ends, or a clear error.
func FuzzExportParams(f *testing.F) {
	f.Add("1,2,3", "", "1732450000000", "1732453600000")
	f.Add("", "8h", "", "")
	f.Add(" 7 ,", "", "2026-11-01", "2026-11-30")
	f.Add("-1", "", "2026-11-25T06:00:00+01:00", "2026-11-25T05:00:00+01:00")
	f.Add("99999999999999999999", "7d", "x", "")
	f.Add("", "", "1e400", "0")
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		f.Fatal(err)
	}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, berlin)
	f.Fuzz(func(t *testing.T, ids, rng, from, to string) {
		got, err := parseIDs(ids)
		if err == nil {
			if len(got) > maxExportIDs {
				t.Fatalf("%d ids accepted, bound %d", len(got), maxExportIDs)
			}
			for _, id := range got {
				if id <= 0 {
					t.Fatalf("id %d accepted from %q", id, ids)
				}
			}
		}
		a, b, err := parseExportRange(rng, from, to, now, berlin)
		if err == nil && a >= b {
			t.Fatalf("range %q/%q/%q gave [%d, %d): it must start before it ends", rng, from, to, a, b)
		}
	})
}
