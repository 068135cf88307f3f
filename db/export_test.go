package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"andon/plant"
)

// tagIDOf finds a tag by its topic.
func tagIDOf(t *testing.T, s *Store, topic string) int64 {
	t.Helper()
	var id int64
	if err := s.r.QueryRow(`SELECT id FROM tags WHERE topic = ?`, topic).Scan(&id); err != nil {
		t.Fatalf("tag %s: %v", topic, err)
	}
	return id
}

// collect runs EachReading and returns its rows.
func collect(t *testing.T, s *Store, q ReadingQuery) []ReadingRow {
	t.Helper()
	var out []ReadingRow
	if err := s.EachReading(context.Background(), q, func(r ReadingRow) error {
		out = append(out, r)
		return nil
	}); err != nil {
		t.Fatalf("EachReading: %v", err)
	}
	return out
}

func TestEachReadingRaw(t *testing.T) {
	s := OpenTest(t)
	ctx := context.Background()
	w := NewWriter(s, WriterConfig{})
	runWriter(t, w)
	press4 := plant.Path{Line: "line-1", Machine: "press-4"}
	if err := w.Write(ctx, []plant.Reading{
		reading(press3, "temp", 1000, 20.5),
		reading(press3, "temp", 3000, -21.25),
		reading(press3, "temp", 9000, 99), // at To: outside [From, To)
		reading(press4, "speed", 1000, 1200),
		reading(press4, "speed", 2000, 1300),
		word(press3, "state", 500, "running"),
		word(press3, "state", 3000, "down"),
	}); err != nil {
		t.Fatal(err)
	}
	temp := tagIDOf(t, s, press3.String()+"/temp")
	speed := tagIDOf(t, s, press4.String()+"/speed")
	state := tagIDOf(t, s, press3.String()+"/state")

	got := collect(t, s, ReadingQuery{TagIDs: []int64{temp, speed, state}, From: 0, To: 9000, Res: ResRaw})
	type row struct {
		tag  int
		ts   int64
		v    float64
		word string
	}
	var rows []row
	for _, r := range got {
		rows = append(rows, row{r.Tag, r.TS, r.Value, r.Word})
	}
	// Time order across tags; at the same instant the order of the query's
	// tags; words for the text tag.
	want := []row{
		{2, 500, rows[0].v, "running"},
		{0, 1000, 20.5, ""},
		{1, 1000, 1200, ""},
		{1, 2000, 1300, ""},
		{0, 3000, -21.25, ""},
		{2, 3000, rows[5].v, "down"},
	}
	if !slices.Equal(rows, want) {
		t.Errorf("rows =\n%v\nwant\n%v", rows, want)
	}
	if !got[0].Text || got[1].Text {
		t.Errorf("Text flags = %v, %v; want the state tag's rows marked text", got[0].Text, got[1].Text)
	}

	t.Run("range", func(t *testing.T) {
		got := collect(t, s, ReadingQuery{TagIDs: []int64{temp}, From: 1001, To: 9001})
		if len(got) != 2 || got[0].TS != 3000 || got[1].TS != 9000 {
			t.Errorf("rows = %+v, want 3000 and 9000", got)
		}
	})
	t.Run("unknown tag", func(t *testing.T) {
		err := s.EachReading(ctx, ReadingQuery{TagIDs: []int64{temp, 99999}, To: 10}, func(ReadingRow) error { return nil })
		if !errors.Is(err, plant.ErrNotFound) {
			t.Errorf("err = %v, want ErrNotFound", err)
		}
	})
	t.Run("fn error stops it", func(t *testing.T) {
		stop := errors.New("enough")
		n := 0
		err := s.EachReading(ctx, ReadingQuery{TagIDs: []int64{temp, speed}, To: 10_000}, func(ReadingRow) error {
			n++
			return stop
		})
		if !errors.Is(err, stop) || n != 1 {
			t.Errorf("err = %v after %d rows, want the fn's error after 1", err, n)
		}
	})
	t.Run("too many tags", func(t *testing.T) {
		ids := make([]int64, MaxExportTags+1)
		err := s.EachReading(ctx, ReadingQuery{TagIDs: ids, To: 10}, func(ReadingRow) error { return nil })
		if !errors.Is(err, plant.ErrInvalid) {
			t.Errorf("err = %v, want ErrInvalid", err)
		}
	})
}

func TestEachReadingRollups(t *testing.T) {
	s := OpenTest(t)
	ctx := context.Background()
	w := NewWriter(s, WriterConfig{})
	runWriter(t, w)
	if err := w.Write(ctx, []plant.Reading{
		reading(press3, "temp", 1000, 20),
		word(press3, "state", 1000, "running"),
		word(press3, "state", 2000, "idle"),
	}); err != nil {
		t.Fatal(err)
	}
	temp := tagIDOf(t, s, press3.String()+"/temp")
	state := tagIDOf(t, s, press3.String()+"/state")
	var idle int64
	if err := s.r.QueryRow(`SELECT id FROM words WHERE word = 'idle'`).Scan(&idle); err != nil {
		t.Fatal(err)
	}
	// Rollups are written by hand: this tests the export, not how ingest
	// keeps them.
	for _, table := range []string{"rollups_1m", "rollups_1h"} {
		if _, err := s.w.Exec(`DELETE FROM ` + table); err != nil {
			t.Fatal(err)
		}
	}
	ins := `INSERT INTO rollups_1m(tag_id, bucket_ms, min, max, sum, count, last, last_ts_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	for _, r := range [][]any{
		{temp, 0, -5, 15, 30, 4, 12, 59_000},
		{temp, 60_000, 1, 3, 4, 2, 3, 61_000},
		{temp, 120_000, 7, 7, 7, 1, 7, 120_000}, // at To: left out
		{state, 60_000, idle, idle, idle * 2, 2, idle, 62_000},
	} {
		if _, err := s.w.Exec(ins, r...); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.w.Exec(`INSERT INTO rollups_1h(tag_id, bucket_ms, min, max, sum, count, last, last_ts_ms) VALUES (?, 0, 1, 2, 3, 2, 2, 10)`, temp); err != nil {
		t.Fatal(err)
	}

	got := collect(t, s, ReadingQuery{TagIDs: []int64{temp, state}, From: 0, To: 120_000, Res: Res1m})
	if len(got) != 3 {
		t.Fatalf("rows = %+v, want 3", got)
	}
	r0, r1, r2 := got[0], got[1], got[2]
	if r0.TS != 0 || r0.Min != -5 || r0.Max != 15 || r0.Avg != 7.5 || r0.Count != 4 || r0.Last != 12 {
		t.Errorf("first bucket = %+v, want min -5, max 15, avg 7.5, count 4, last 12", r0)
	}
	if r1.TS != 60_000 || r1.Tag != 0 || r1.Avg != 2 {
		t.Errorf("second row = %+v, want temp's 60 000 bucket with avg 2", r1)
	}
	if r2.Tag != 1 || !r2.Text || r2.Word != "idle" || r2.Count != 2 {
		t.Errorf("state bucket = %+v, want last word idle, count 2", r2)
	}
	hours := collect(t, s, ReadingQuery{TagIDs: []int64{temp}, To: 3_600_000, Res: Res1h})
	if len(hours) != 1 || hours[0].Avg != 1.5 {
		t.Errorf("1h rows = %+v, want one with avg 1.5", hours)
	}
}

// TestEachStopAgreesWithStops checks the export's filters against the
// list's query: the same stops, oldest first instead of newest first.
func TestEachStopAgreesWithStops(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	const min = 60_000
	s1 := f.stop(t, f.m1, plant.Down, 0, 5*min)
	f.stop(t, f.m2, plant.Idle, 10*min, 10*min+30000)
	f.stop(t, f.m3, plant.Down, 20*min, 30*min)
	f.stop(t, f.m1, plant.Changeover, 40*min, 0)
	if _, err := f.s.CodeStop(ctx, plant.Coding{StopID: s1, ReasonID: f.brk, Comment: "=cmd", By: "ann"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		f    StopFilter
		q    StopQuery
	}{
		{"all", StopFilter{}, StopQuery{}},
		{"machines", StopFilter{MachineIDs: []int64{f.m1}}, StopQuery{MachineID: f.m1}},
		{"line", StopFilter{LineID: f.line1}, StopQuery{LineID: f.line1}},
		{"uncoded, long enough", StopFilter{Uncoded: true, MinMS: min, Now: 45 * min}, StopQuery{Uncoded: true, MinMS: min, Now: 45 * min}},
		{"overlap", StopFilter{From: 4 * min, To: 20*min + 1}, StopQuery{From: 4 * min, To: 20*min + 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []plant.Stop
			if err := f.s.EachStop(ctx, tt.f, func(st plant.Stop) error {
				got = append(got, st)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			tt.q.Limit = maxStopLimit
			want, err := f.s.Stops(ctx, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			slices.Reverse(want)
			if len(got) == 0 || !slices.Equal(got, want) {
				t.Errorf("EachStop =\n%+v\nStops reversed =\n%+v", got, want)
			}
		})
	}
	var first plant.Stop
	if err := f.s.EachStop(ctx, StopFilter{}, func(st plant.Stop) error {
		if first.ID == 0 {
			first = st
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if first.ID != s1 || first.Reason != "Break" || !first.Planned || first.Comment != "=cmd" || first.CodedBy != "ann" {
		t.Errorf("first stop = %+v, want s1 coded Break (planned) by ann", first)
	}
}

// TestBackupDuringIngest takes a backup while a writer commits batches
// without pause: the copy must open, pass integrity_check and hold every
// reading whose commit was reported before the backup began.
func TestBackupDuringIngest(t *testing.T) {
	s := OpenTest(t)
	ctx := context.Background()
	w := NewWriter(s, WriterConfig{})
	runWriter(t, w)

	var committed atomic.Int64 // readings whose Write has returned
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		ts := int64(1)
		for {
			select {
			case <-stop:
				return
			default:
			}
			batch := make([]plant.Reading, 500)
			for i := range batch {
				batch[i] = reading(press3, "temp", ts, float64(ts))
				ts++
			}
			if err := w.Write(ctx, batch); err != nil {
				t.Errorf("write: %v", err)
				return
			}
			committed.Add(int64(len(batch)))
		}
	})
	// Let some batches land first.
	for committed.Load() < 5000 {
		if t.Failed() {
			t.FailNow()
		}
		time.Sleep(time.Millisecond)
	}
	before := committed.Load()
	dest := filepath.Join(t.TempDir(), "backup.db")
	if err := s.BackupFile(ctx, dest); err != nil {
		t.Fatal(err)
	}
	after := committed.Load()
	close(stop)
	wg.Wait()

	b, err := sql.Open("sqlite", "file:"+dest+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var check string
	if err := b.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check = %q, %v", check, err)
	}
	var n, maxTS int64
	if err := b.QueryRow(`SELECT COUNT(*), COALESCE(MAX(ts_ms), 0) FROM readings`).Scan(&n, &maxTS); err != nil {
		t.Fatal(err)
	}
	// Batches commit whole, in order: the copy holds a prefix of them, at
	// least those reported before it began.
	if n < before || n > after+500 || n%500 != 0 || maxTS != n {
		t.Errorf("backup holds %d readings (max ts %d); %d were committed before it began, %d after it ended", n, maxTS, before, after)
	}
	if err := s.BackupFile(ctx, dest); err == nil {
		t.Error("a second backup over an existing file succeeded; want a refusal")
	}
	if err := s.Backup(ctx, s.Path()); err == nil {
		t.Error("a backup onto the database itself succeeded")
	}
}

// BenchmarkEachReading measures the store side of an export: merged cursors
// over 4 tags of a raw range.
func BenchmarkEachReading(b *testing.B) {
	s := OpenTest(b)
	ctx := context.Background()
	const perTag = 50_000
	var ids []int64
	for tag := range 4 {
		res, err := s.w.Exec(`INSERT INTO assets(kind, name, path, created_ms) VALUES ('machine', ?, ?, 1)`,
			fmt.Sprint("m", tag), fmt.Sprint("m", tag))
		if err != nil {
			b.Fatal(err)
		}
		mid, _ := res.LastInsertId()
		res, err = s.w.Exec(`INSERT INTO tags(machine_id, metric, topic, created_ms) VALUES (?, 'v', ?, 1)`, mid, fmt.Sprint("m", tag, "/v"))
		if err != nil {
			b.Fatal(err)
		}
		id, _ := res.LastInsertId()
		ids = append(ids, id)
		if _, err := s.w.Exec(`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ? - 1)
			INSERT INTO readings(tag_id, ts_ms, value) SELECT ?, i * 1000, i * 0.5 FROM n`, perTag, id); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	var rows int64
	for b.Loop() {
		err := s.EachReading(ctx, ReadingQuery{TagIDs: ids, To: math.MaxInt64}, func(ReadingRow) error {
			rows++
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}
