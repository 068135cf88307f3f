package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"andon/db"
	"andon/plant"
)

func TestStoragePage(t *testing.T) {
	e := newEnv(t)
	base := time.Now().Add(-3 * time.Hour).Truncate(time.Hour).UnixMilli()
	e.write(t, readingsEvery("line-1", "press-01", "temperature", base, 10_000, 600)...) // 100 minutes
	if _, err := db.NewRetention(e.ctx, e.w, db.RetentionConfig{Raw: 30 * 24 * time.Hour, Minute: 730 * 24 * time.Hour, MaxBytes: 5 << 30}); err != nil {
		t.Fatal(err)
	}

	resp, body := e.get(t, "/admin/storage")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for sel, want := range map[string]string{
		`[data-testid="rows-raw"]`:    "600",
		`[data-testid="rows-1m"]`:     "100",
		`[data-testid="keep-raw"]`:    "30 days",
		`[data-testid="keep-1m"]`:     "2 years",
		`[data-testid="keep-1h"]`:     "forever",
		`[data-testid="storage-cap"]`: "5.0 GiB",
	} {
		if got := strings.TrimSpace(doc.Find(sel).Text()); got != want {
			t.Errorf("%s = %q, want %q", sel, got, want)
		}
	}
	if doc.Find(`[data-testid="admin-nav"] a[href="/admin/storage"]`).Length() != 1 {
		t.Error("no link to /admin/storage in the admin navigation")
	}
	// Only admins see it.
	if resp, _ := e.as(t, db.RoleViewer).get(t, "/admin/storage"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("viewer: status %d, want 403", resp.StatusCode)
	}

	// The same figures as Prometheus gauges.
	e.reg.MustRegister(db.NewStorageCollector(e.store))
	_, metrics := e.bearer(t, "api", "read").get(t, "/metrics")
	for _, want := range []string{
		`andon_db_rows{resolution="raw"} 600`,
		`andon_db_rows{resolution="1m"} 100`,
		`andon_db_rows{resolution="1h"} 2`,
		`andon_rollup_backfill_done 1`,
		`andon_db_retention_seconds{resolution="raw"} 2.592e+06`,
		`andon_db_used_bytes `,
		`andon_db_oldest_timestamp_seconds{resolution="raw"} ` + fmt.Sprint(float64(base)/1000),
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestSeriesAPIResolution(t *testing.T) {
	e := newEnv(t)
	base := time.Now().Add(-3 * time.Hour).Truncate(time.Hour).UnixMilli()
	e.write(t, readingsEvery("line-1", "press-01", "temperature", base, 10_000, 600)...)
	id := e.tagID(t, "press-01", "temperature")
	get := func(query string) (string, int) {
		t.Helper()
		resp, body := e.get(t, fmt.Sprintf("/api/v1/tags/%d/series?from=%d&to=%d&%s", id, base, base+6_000_000, query))
		var got struct {
			Res string    `json:"res"`
			T   []float64 `json:"t"`
		}
		if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &got) != nil {
			t.Fatalf("%s: status %d: %s", query, resp.StatusCode, body)
		}
		return got.Res, len(got.T)
	}
	for _, tc := range []struct {
		query, res string
		points     int
	}{
		{"max=2000", "raw", 600},
		{"max=100", "1m", 100}, // 100 minutes, flat within each: one point per minute
		{"res=1h", "1h", 4},    // two hours, each its min and max
		{"res=raw&max=100", "raw", 100},
	} {
		if res, n := get(tc.query); res != tc.res || n != tc.points {
			t.Errorf("%s: res %s with %d points, want %s with %d", tc.query, res, n, tc.res, tc.points)
		}
	}
	if resp, body := e.get(t, fmt.Sprintf("/api/v1/tags/%d/series?res=5m", id)); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "res must be") {
		t.Errorf("res=5m: status %d %s, want 400 with a message", resp.StatusCode, body)
	}
}

// readingsEvery is n readings of one tag, step ms apart from base, the same
// value within each minute.
func readingsEvery(line, machine, metric string, base, step int64, n int) []plant.Reading {
	rs := make([]plant.Reading, n)
	for i := range rs {
		ts := base + int64(i)*step
		rs[i] = reading(line, machine, metric, ts, float64(ts/60_000%7))
	}
	return rs
}
