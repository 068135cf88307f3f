package web

import (
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Berlin on machines without a zone database
	"unicode/utf8"

	"andon/db"
	"andon/plant"
)

var updateCSV = flag.Bool("update-csv", false, "rewrite the export golden files in testdata")

// exFixture is a small plant with a fixed clock in Berlin (UTC+1 in
// November), so every exported time, KPI and cost is reproducible.
type exFixture struct {
	e                 *env
	raw               *sql.DB
	now               time.Time
	base              int64 // 2026-11-25 06:00 Berlin
	press, evil, saw  int64 // machines
	line1, line2      int64
	temp, speed, stat int64 // tags: press temp, evil speed, press state
	pressure          int64 // saw pressure, hidden from nothing: a third numeric tag
}

// evil is a speed reading of a machine published without site, area or
// line, so its path, too, is just its formula of a name.
func evil(name string, ts int64, v float64) plant.Reading {
	return plant.Reading{Path: plant.Path{Machine: name}, Metric: "speed", TS: ts, Value: v, Topic: name + "/speed"}
}

func newExFixture(t *testing.T) *exFixture {
	t.Helper()
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, berlin)
	e := newEnv(t, func(c *Config) {
		c.Location = berlin
		c.Now = func() time.Time { return now }
	})
	base := time.Date(2026, 11, 25, 6, 0, 0, 0, berlin).UnixMilli()
	// A machine named like a spreadsheet formula: names come from MQTT.
	evilName := `=HYPERLINK("evil.example","click")`
	e.write(t,
		reading("line-1", "press-01", "temperature", base+250, 21.5),
		reading("line-1", "press-01", "temperature", base+60_000, -3.25),
		reading("line-1", "press-01", "temperature", base+120_000, 1e-9),
		word("line-1", "press-01", "state", base, "running"),
		word("line-1", "press-01", "state", base+60_000, "down"),
		evil(evilName, base+60_000, 1200),
		evil(evilName, base+180_000, -0.5),
		reading("line-2", "saw-01", "pressure", base+30_000, 6.125),
		reading("line-1", "press-01", "good", base, 0),
		reading("line-1", "press-01", "good", base+4*3_600_000, 600),
		reading("line-1", "press-01", "scrap", base, 0),
		reading("line-1", "press-01", "scrap", base+4*3_600_000, 12),
	)
	f := &exFixture{e: e, now: now, base: base,
		press: e.machineID(t, "press-01"), evil: e.machineID(t, evilName), saw: e.machineID(t, "saw-01")}
	ids := e.lineIDs(t)
	f.line1, f.line2 = ids["line-1"], ids["line-2"]
	f.temp = e.tagID(t, "press-01", "temperature")
	f.speed = e.tagID(t, evilName, "speed")
	f.stat = e.tagID(t, "press-01", "state")
	f.pressure = e.tagID(t, "saw-01", "pressure")
	f.raw, err = sql.Open("sqlite", "file:"+e.store.Path()+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.raw.Close() })
	f.exec(t, `UPDATE tags SET unit = '°C' WHERE id = ?`, f.temp)
	return f
}

func (f *exFixture) exec(t *testing.T, q string, args ...any) int64 {
	t.Helper()
	res, err := f.raw.ExecContext(context.Background(), q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	id, _ := res.LastInsertId()
	return id
}

// rollups replaces whatever ingest rolled up with known buckets.
func (f *exFixture) rollups(t *testing.T) {
	t.Helper()
	f.exec(t, `DELETE FROM rollups_1m`)
	f.exec(t, `DELETE FROM rollups_1h`)
	var down int64
	if err := f.raw.QueryRow(`SELECT id FROM words WHERE word = 'down'`).Scan(&down); err != nil {
		t.Fatal(err)
	}
	ins := `INSERT INTO rollups_1m(tag_id, bucket_ms, min, max, sum, count, last, last_ts_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	f.exec(t, ins, f.temp, f.base, 20, 23, 43, 2, 21.5, f.base+250)
	f.exec(t, ins, f.temp, f.base+60_000, -3.25, -3.25, -3.25, 1, -3.25, f.base+60_000)
	f.exec(t, ins, f.stat, f.base+60_000, down, down, down, 1, down, f.base+60_000)
	f.exec(t, ins, f.speed, f.base+60_000, 1200, 1200, 1200, 1, 1200, f.base+60_000)
}

// stops adds spans, stops, codings and part counts: a coded stop whose
// comment starts with '+', a micro-stop whose comment starts with '-' and
// has a line break (the store trims leading tabs and spaces), and an ongoing
// stop.
func (f *exFixture) stops(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	const min = 60_000
	st := func(machine int64, state plant.State, start, end int64) int64 {
		var e any
		if end != 0 {
			e = end
		}
		return f.exec(t, `INSERT INTO stops (machine_id, state, start_ms, end_ms) VALUES (?, ?, ?, ?)`, machine, string(state), start, e)
	}
	span := func(machine int64, state plant.State, start, end int64) {
		var e any
		if end != 0 {
			e = end
		}
		f.exec(t, `INSERT INTO state_spans (machine_id, state, start_ms, end_ms) VALUES (?, ?, ?, ?)`, machine, string(state), start, e)
	}
	for _, m := range []int64{f.press, f.evil, f.saw} {
		span(m, plant.Running, f.base-6*60*min, f.base+60*min)
	}
	span(f.press, plant.Down, f.base+60*min, f.base+90*min)
	span(f.press, plant.Running, f.base+90*min, 0)
	span(f.evil, plant.Running, f.base+60*min, 0)
	span(f.saw, plant.Idle, f.base+60*min, 0)
	s1 := st(f.press, plant.Down, f.base+60*min, f.base+90*min)
	s2 := st(f.evil, plant.Idle, f.base+100*min, f.base+100*min+30_000) // a micro-stop
	st(f.saw, plant.Idle, f.base+60*min, 0)                             // ongoing
	rs, err := f.e.store.Reasons(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var reason int64
	for _, r := range rs {
		if r.ParentID != 0 && !r.Planned && !r.Hidden && reason == 0 {
			reason = r.ID
		}
	}
	if _, err := f.e.store.CodeStop(ctx, plant.Coding{StopID: s1, ReasonID: reason, Comment: "+1 bolt, -2 nuts", By: "@ann", At: f.base + 95*min}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.e.store.CodeStop(ctx, plant.Coding{StopID: s2, ReasonID: reason, Comment: "-jammed\r\nagain", By: "bob", At: f.base + 101*min}); err != nil {
		t.Fatal(err)
	}
	for _, m := range []int64{f.press, f.evil, f.saw} {
		if err := f.e.store.SetMachineConfig(ctx, m, plant.MachineConfig{IdealCycleS: 30, CostPerHour: 120, MarginPerUnit: 1.5}, ""); err != nil {
			t.Fatal(err)
		}
	}
}

// golden compares got with testdata/name, or rewrites it with -update-csv.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *updateCSV {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update-csv to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// parseCSV reads an export with encoding/csv, checking and dropping the BOM.
func parseCSV(t *testing.T, body string) [][]string {
	t.Helper()
	rest, ok := strings.CutPrefix(body, utf8BOM)
	if !ok {
		t.Fatalf("the CSV does not start with a UTF-8 BOM: %q", body[:min(len(body), 20)])
	}
	recs, err := csv.NewReader(strings.NewReader(rest)).ReadAll()
	if err != nil {
		t.Fatalf("parse CSV: %v\n%s", err, body)
	}
	return recs
}

func TestExportGolden(t *testing.T) {
	f := newExFixture(t)
	f.rollups(t)
	f.stops(t)
	id := func(v int64) string { return strconv.FormatInt(v, 10) }
	from, to := id(f.base), id(f.base+3_600_000)
	tags := id(f.temp) + "," + id(f.speed) + "," + id(f.stat)
	tests := []struct{ name, path string }{
		{"readings_long_raw.csv", "/export/readings.csv?tags=" + tags + "&from=" + from + "&to=" + to},
		{"readings_wide_raw.csv", "/export/readings.csv?tags=" + tags + "&from=" + from + "&to=" + to + "&format=wide"},
		{"readings_long_1m.csv", "/export/readings.csv?tags=" + tags + "&from=" + from + "&to=" + to + "&res=1m"},
		{"readings_wide_1m.csv", "/export/readings.csv?tags=" + tags + "&from=" + from + "&to=" + to + "&res=1m&format=wide"},
		{"downtime.csv", "/export/downtime.csv?show=all"},
		{"downtime_line2_uncoded.csv", "/export/downtime.csv?line=" + id(f.line2) + "&show=uncoded"},
		{"kpis_today.csv", "/export/kpis.csv?period=today"},
		{"kpis_line2_days.csv", "/export/kpis.csv?from=2026-11-24&to=2026-11-25&line=" + id(f.line2) + "&by=day"},
		{"tags.csv", "/export/tags.csv"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := f.e.asAdminClient().get(t, tt.path)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s = %d: %s", tt.path, resp.StatusCode, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
				t.Errorf("Content-Type = %q", ct)
			}
			if cd := resp.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, `attachment; filename="andon-`) {
				t.Errorf("Content-Disposition = %q", cd)
			}
			parseCSV(t, body) // valid RFC 4180
			golden(t, tt.name, body)
		})
	}
}

// TestExportReadingsRoundTrip parses an export with encoding/csv and
// compares every value and time with the store's own series.
func TestExportReadingsRoundTrip(t *testing.T) {
	f := newExFixture(t)
	// More readings, with awkward values, on top of the fixture's.
	var rs []plant.Reading
	for i := range 500 {
		v := float64(i)*0.1 - 25 + 1.0/3.0
		rs = append(rs, reading("line-1", "press-01", "temperature", f.base+int64(i)*1000+7, v))
	}
	f.e.write(t, rs...)
	from, to := f.base, f.base+3_600_000
	path := "/export/readings.csv?tags=" + strconv.FormatInt(f.temp, 10) + "&from=" + strconv.FormatInt(from, 10) + "&to=" + strconv.FormatInt(to, 10)
	_, body := f.e.asAdminClient().get(t, path)
	recs := parseCSV(t, body)
	want, err := f.e.store.Series(f.e.ctx, f.temp, from, to-1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs)-1 != len(want) {
		t.Fatalf("%d rows, want %d", len(recs)-1, len(want))
	}
	if strings.Join(recs[0], ",") != "time,machine,tag,value,unit" {
		t.Errorf("header = %v", recs[0])
	}
	for i, p := range want {
		r := recs[i+1]
		ts, err := time.Parse(isoMS, r[0])
		if err != nil || ts.UnixMilli() != p.TS {
			t.Errorf("row %d: time %q (%v), want %d", i, r[0], err, p.TS)
		}
		if _, off := ts.Zone(); off != 3600 {
			t.Errorf("row %d: time %q is not at the plant's offset +01:00", i, r[0])
		}
		v, err := strconv.ParseFloat(r[3], 64)
		if err != nil || v != p.Value {
			t.Errorf("row %d: value %q (%v), want exactly %v", i, r[3], err, p.Value)
		}
		if r[1] != "acme/hall-1/line-1/press-01" || r[2] != "temperature" || r[4] != "°C" {
			t.Errorf("row %d: machine, tag, unit = %q, %q, %q", i, r[1], r[2], r[4])
		}
	}
}

// TestExportFormulaInjection checks that text a device or user typed cannot
// become a formula, while numbers, negative ones included, stay numbers.
func TestExportFormulaInjection(t *testing.T) {
	f := newExFixture(t)
	f.stops(t)
	id := strconv.FormatInt
	_, body := f.e.asAdminClient().get(t, "/export/readings.csv?tags="+id(f.speed, 10)+"&from="+id(f.base, 10)+"&to="+id(f.base+3_600_000, 10))
	recs := parseCSV(t, body)
	if len(recs) != 3 {
		t.Fatalf("rows = %v", recs)
	}
	if got := recs[1][1]; got != `'=HYPERLINK("evil.example","click")` {
		t.Errorf("machine cell = %q, want the name behind a '", got)
	}
	if recs[1][3] != "1200" || recs[2][3] != "-0.5" {
		t.Errorf("values = %q, %q; want the plain numbers 1200 and -0.5", recs[1][3], recs[2][3])
	}
	// The wide header names the tag by its machine path and metric.
	_, wide := f.e.asAdminClient().get(t, "/export/readings.csv?format=wide&tags="+id(f.speed, 10)+"&from="+id(f.base, 10)+"&to="+id(f.base+3_600_000, 10))
	w := parseCSV(t, wide)
	if w[0][1] != `'=HYPERLINK("evil.example","click")/speed` || w[2][1] != "-0.5" {
		t.Errorf("wide header %q and value %q; want the header neutralised, the value -0.5", w[0][1], w[2][1])
	}

	_, body = f.e.asAdminClient().get(t, "/export/downtime.csv?show=all")
	recs = parseCSV(t, body)
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	byComment := map[string][]string{}
	for _, r := range recs[1:] {
		byComment[r[col["comment"]]] = r
	}
	plus, ok := byComment["'+1 bolt, -2 nuts"]
	if !ok {
		t.Fatalf("no comment neutralised as '+1 bolt, -2 nuts: %v", recs)
	}
	if plus[col["coded_by"]] != "'@ann" {
		t.Errorf("coded_by = %q, want '@ann", plus[col["coded_by"]])
	}
	if _, ok := byComment["'-jammed\nagain"]; !ok {
		t.Errorf("comment starting with - not neutralised (or its line break lost): %q", recs)
	}
	for _, r := range recs[1:] {
		if d := r[col["duration_s"]]; strings.HasPrefix(d, "'") {
			t.Errorf("duration %q was prefixed like text", d)
		}
		if strings.HasPrefix(r[col["machine"]], "=") {
			t.Errorf("machine %q starts a formula", r[col["machine"]])
		}
	}
	// A direct check of the rule, for every dangerous first character.
	for _, s := range []string{"=1+1", "+1", "-1", "@SUM(A1)", "\t1", "\r1"} {
		if got := csvCell(s); got != "'"+s {
			t.Errorf("csvCell(%q) = %q", s, got)
		}
	}
	if got := csvCell("a=1"); got != "a=1" {
		t.Errorf("csvCell(a=1) = %q, want it unchanged", got)
	}
}

// TestExportAccess checks who may download what: the access of the page an
// export comes from, and API read tokens on /api/v1.
func TestExportAccess(t *testing.T) {
	f := newExFixture(t)
	e := f.e
	tags := "tags=" + strconv.FormatInt(f.temp, 10)
	viewer := e.as(t, db.RoleViewer)
	read := e.bearer(t, "api", "read")
	ingest := e.bearer(t, "api", "ingest")
	disp := e.bearer(t, "display", "all")
	tests := []struct {
		name   string
		cl     *testClient
		path   string
		status int
	}{
		{"viewer readings csv", viewer, "/export/readings.csv?" + tags, 200},
		{"viewer downtime csv", viewer, "/export/downtime.csv", 200},
		{"viewer kpis csv", viewer, "/export/kpis.csv", 200},
		{"viewer tags csv is admin's", viewer, "/export/tags.csv", 403},
		{"viewer backup", viewer, "/admin/backup", 403},
		{"anonymous csv goes to login", e.anon(), "/export/readings.csv?" + tags, 303},
		{"anonymous api", e.anon(), "/api/v1/readings?" + tags, 401},
		{"anonymous api csv", e.anon(), "/api/v1/readings.csv?" + tags, 401},
		{"display token csv", disp, "/export/readings.csv?" + tags, 403},
		{"display token api", disp, "/api/v1/readings?" + tags, 403},
		{"ingest token api", ingest, "/api/v1/tags", 403},
		{"read token api", read, "/api/v1/readings?" + tags, 200},
		{"read token api csv", read, "/api/v1/kpis.csv", 200},
		{"read token page csv", read, "/export/readings.csv?" + tags, 403},
		{"read token backup", read, "/admin/backup", 403},
		{"viewer api", viewer, "/api/v1/downtime", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := tt.cl.get(t, tt.path)
			if resp.StatusCode != tt.status {
				t.Errorf("GET %s as %s = %d, want %d: %.200s", tt.path, tt.cl.name, resp.StatusCode, tt.status, body)
			}
			if tt.status == 303 && !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
				t.Errorf("redirect to %q, want the login page", resp.Header.Get("Location"))
			}
		})
	}
}

func TestExportBadRequests(t *testing.T) {
	f := newExFixture(t)
	id := strconv.FormatInt(f.temp, 10)
	tests := []struct{ path, want string }{
		{"/export/readings.csv", "choose at least one tag"},
		{"/export/readings.csv?tags=1,x", "comma-separated"},
		{"/export/readings.csv?tags=" + id + "&res=5m", "res must be"},
		{"/export/readings.csv?tags=" + id + "&format=tall", "format must be"},
		{"/export/readings.csv?tags=" + id + "&from=2026-11-25&to=2026-11-24", "before"},
		{"/export/readings.csv?tags=" + id + "&from=0&to=" + strconv.FormatInt(1<<50, 10), "longer than"},
		{"/export/readings.csv?tags=" + id + "&range=3y", "range must be"},
		{"/export/readings.csv?tags=" + id + "&from=yesterday", "not epoch milliseconds"},
		{"/export/kpis.csv?by=week", "by must be"},
		{"/export/kpis.csv?from=2026-01-01&to=2026-11-01", "at most"},
		{"/api/v1/readings?format=wide&tags=" + id, "format=wide is for CSV"},
		{"/export/downtime.csv?line=x", "line must be"},
	}
	for _, tt := range tests {
		resp, body := f.e.asAdminClient().get(t, tt.path)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, tt.want) {
			t.Errorf("GET %s = %d %.300q, want 400 saying %q", tt.path, resp.StatusCode, body, tt.want)
		}
	}
	for _, p := range []string{"/export/readings.csv?tags=99999", "/export/downtime.csv?line=99999", "/api/v1/readings?tags=99999"} {
		if resp, body := f.e.asAdminClient().get(t, p); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %d %.200q, want 404", p, resp.StatusCode, body)
		}
	}
}

// TestAPIv1 reads each JSON endpoint and checks its rows against the CSV
// of the same parameters.
func TestAPIv1(t *testing.T) {
	f := newExFixture(t)
	f.rollups(t)
	f.stops(t)
	read := f.e.bearer(t, "api", "read")
	id := strconv.FormatInt
	q := "tags=" + id(f.temp, 10) + "," + id(f.stat, 10) + "&from=" + id(f.base, 10) + "&to=" + id(f.base+3_600_000, 10)

	type doc struct {
		Kind string           `json:"kind"`
		Res  string           `json:"res"`
		Rows []map[string]any `json:"rows"`
	}
	getJSON := func(path string) doc {
		t.Helper()
		resp, body := read.get(t, path)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s = %d: %s", path, resp.StatusCode, body)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("Content-Type = %q", ct)
		}
		var d doc
		dec := json.NewDecoder(strings.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&d); err != nil {
			t.Fatalf("GET %s: %v\n%s", path, err, body)
		}
		return d
	}
	for _, kind := range []string{"readings?" + q, "readings?res=1m&" + q, "downtime?show=all", "kpis?period=today&by=day", "tags"} {
		t.Run(kind, func(t *testing.T) {
			d := getJSON("/api/v1/" + kind)
			name, params, _ := strings.Cut(kind, "?")
			_, csvBody := read.get(t, "/api/v1/"+name+".csv?"+params)
			recs := parseCSV(t, csvBody)
			if d.Kind != name || len(d.Rows) != len(recs)-1 || len(d.Rows) == 0 {
				t.Fatalf("kind %q with %d rows; the CSV has %d", d.Kind, len(d.Rows), len(recs)-1)
			}
			for i, row := range d.Rows {
				for j, h := range recs[0] {
					c := recs[i+1][j]
					v, ok := row[h]
					if !ok {
						t.Fatalf("row %d has no %q: %v", i, h, row)
					}
					var s string
					switch x := v.(type) {
					case nil:
						s = ""
					case json.Number:
						s = x.String()
					case bool:
						s = strconv.FormatBool(x)
					case string:
						// encoding/csv writes a line break in a cell as \n.
						s = strings.ReplaceAll(x, "\r\n", "\n")
						c = strings.TrimPrefix(c, "'") // the CSV neutralised it; JSON needs no such thing
					}
					if s != c {
						t.Errorf("row %d %s: JSON %q, CSV %q", i, h, s, c)
					}
					if strings.HasSuffix(h, "time") || h == "start" || h == "end" || h == "from" || h == "to" || h == "coded_at" {
						if ms, ok := row[h+"_ms"]; s != "" && !ok {
							t.Errorf("row %d: %s has no %s_ms twin", i, h, h)
						} else if ok && s != "" {
							tm, _ := time.Parse(isoMS, s)
							if n, _ := ms.(json.Number).Int64(); n != tm.UnixMilli() {
								t.Errorf("row %d: %s_ms = %v, %s = %s", i, h, ms, h, s)
							}
						}
					}
				}
			}
		})
	}
	if d := getJSON("/api/v1/readings?res=1m&" + q); d.Res != "1m" || d.Rows[0]["avg"] == nil {
		t.Errorf("1m readings: res %q, first row %v", d.Res, d.Rows[0])
	}
}

// TestBackupDownload checks the admin's download is a database that opens,
// is intact, and holds the readings.
func TestBackupDownload(t *testing.T) {
	f := newExFixture(t)
	resp, body := f.e.asAdminClient().get(t, "/admin/backup")
	if resp.StatusCode != 200 {
		t.Fatalf("GET /admin/backup = %d: %.300s", resp.StatusCode, body)
	}
	if !strings.HasPrefix(body, "SQLite format 3\x00") {
		t.Fatalf("the download is not a SQLite file: %q", body[:min(len(body), 16)])
	}
	path := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var check string
	var n int
	if err := b.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Errorf("integrity_check = %q, %v", check, err)
	}
	if err := b.QueryRow(`SELECT COUNT(*) FROM readings`).Scan(&n); err != nil || n != 12 {
		t.Errorf("readings in the copy = %d, %v; want 12", n, err)
	}
	entries, err := f.e.store.AuditLog(f.e.ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range entries {
		found = found || (a.Action == "backup.download" && a.Actor == "admin")
	}
	if !found {
		t.Errorf("no backup.download by admin in the audit log: %+v", entries)
	}
}

// TestISOClock checks the cached time formatting against time.Format, across
// a daylight-saving change, within one second and for times before 1970.
func TestISOClock(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	c := isoClock{loc: berlin}
	dst := time.Date(2026, 3, 29, 1, 59, 59, 0, time.UTC).UnixMilli() // 03:00 CEST a second later
	for _, ms := range []int64{dst - 1000, dst - 1, dst, dst + 1, dst + 999, dst + 1000, dst + 1001, 0, -1, -999, -1000, -1001, 1732450000123, 1732450000999} {
		got := string(c.appendTime(nil, ms))
		want := time.UnixMilli(ms).In(berlin).Format(isoMS)
		if got != want {
			t.Errorf("appendTime(%d) = %s, want %s", ms, got, want)
		}
	}
}

// brokenStops fails an export of stops after its first row, as a disk
// error in the middle of a long download would.
type brokenStops struct{ Store }

func (b brokenStops) EachStop(ctx context.Context, f db.StopFilter, fn func(plant.Stop) error) error {
	return b.Store.EachStop(ctx, f, func(st plant.Stop) error {
		if err := fn(st); err != nil {
			return err
		}
		return errBroken
	})
}

// TestExportFailureCutsTheDownload checks that an export failing after its
// first bytes ends the response abnormally: the client must not receive what
// looks like a whole, shorter file.
func TestExportFailureCutsTheDownload(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Store = brokenStops{c.Store} })
	e.write(t, word("line-1", "press-01", "state", time.Now().UnixMilli(), "down"))
	raw, err := sql.Open("sqlite", "file:"+e.store.Path()+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`INSERT INTO stops (machine_id, state, start_ms, end_ms) VALUES (?, 'down', 1000, 2000), (?, 'down', 3000, 4000)`,
		e.machineID(t, "press-01"), e.machineID(t, "press-01")); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(e.ts.URL + "/export/downtime.csv?show=all")
	if err != nil {
		return // cut before the headers left the buffer: no file at all
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Errorf("the download ended normally after a failure: %q", body)
	}
}

// TestDownloadButtons follows each page's download link and checks that it
// exports what the page shows: the charts' tags and range, the list's line
// and filter, the report's period and line.
func TestDownloadButtons(t *testing.T) {
	f := newExFixture(t)
	f.stops(t)
	id := func(v int64) string { return strconv.FormatInt(v, 10) }
	tests := []struct {
		page, sel string
		want      []string // in the link
		header    string   // of the CSV it gives
	}{
		{"/machines/" + id(f.press) + "?range=8h", `[data-testid="export-charts"]`,
			[]string{"tags=" + id(f.good(t)), "range=8h"}, "time,machine,tag,value,unit"},
		{"/downtime?line=" + id(f.line2) + "&show=all", `[data-testid="export-downtime"]`,
			[]string{"line=" + id(f.line2), "show=all"}, "machine,line,state"},
		{"/reports?period=yesterday&line=" + id(f.line1), `[data-testid="export-kpis"] a`,
			[]string{"period=yesterday", "line=" + id(f.line1), "by=period"}, "from,to,period,scope"},
		{"/machines/" + id(f.press) + "?range=24h", `[data-testid="export-machine-stops"]`,
			[]string{"machine=" + id(f.press), "range=24h"}, "machine,line,state"},
		{"/admin/tags", `[data-testid="export-tags"]`, []string{"/export/tags.csv"}, "id,machine,tag"},
		{"/admin/rejects", `[data-testid="export-rejects"]`, []string{"/export/rejects.csv"}, "time,topic,reason,detail,payload"},
	}
	for _, tt := range tests {
		t.Run(tt.page, func(t *testing.T) {
			d := f.e.doc(t, tt.page, http.StatusOK)
			href, ok := d.Find(tt.sel).First().Attr("href")
			if !ok {
				t.Fatalf("no download link %s on %s", tt.sel, tt.page)
			}
			for _, w := range tt.want {
				if !strings.Contains(href, w) {
					t.Errorf("link %q lacks %q", href, w)
				}
			}
			resp, body := f.e.asAdminClient().get(t, href)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s = %d: %.300s", href, resp.StatusCode, body)
			}
			if recs := parseCSV(t, body); !strings.HasPrefix(strings.Join(recs[0], ","), tt.header) {
				t.Errorf("GET %s: header %v, want %s…", href, recs[0], tt.header)
			}
		})
	}
}

// good is the press's first charted tag (numeric tags in metric order).
func (f *exFixture) good(t *testing.T) int64 { return f.e.tagID(t, "press-01", "good") }

// TestExportRejects: the dead letters export as text a spreadsheet cannot
// run, in valid UTF-8 whatever bytes the device sent.
func TestExportRejects(t *testing.T) {
	f := newExFixture(t)
	f.e.w.Reject(plant.Reject{TS: time.Date(2026, 11, 25, 11, 0, 0, 0, time.UTC).UnixMilli(), Topic: "=cmd|' /C calc'!A0", Reason: plant.ReasonNotANumber,
		Detail: "The payload is not a number.", Payload: []byte("@SUM(1)\xff\x00")})
	f.e.write(t, reading("l", "m", "x", time.Date(2026, 11, 25, 11, 0, 0, 0, time.UTC).UnixMilli(), 1)) // a commit that carries the reject
	resp, body := f.e.asAdminClient().get(t, "/export/rejects.csv")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /export/rejects.csv = %d: %.300s", resp.StatusCode, body)
	}
	if !utf8.ValidString(body) {
		t.Errorf("the export is not valid UTF-8")
	}
	recs := parseCSV(t, body)
	if len(recs) != 2 {
		t.Fatalf("%d records, want the header and one reject: %q", len(recs), body)
	}
	if got := recs[1]; got[1] != "'=cmd|' /C calc'!A0" || got[2] != plant.ReasonNotANumber || !strings.HasPrefix(got[4], "'@SUM(1)") {
		t.Errorf("reject row %q: want the topic and payload neutralised", got)
	}
}
