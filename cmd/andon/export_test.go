package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"andon/db"
	"andon/plant"
)

// runCmd runs `andon args...` in-process and returns its stdout and stderr.
func runCmd(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := &environment{stdout: &out, stderr: &errOut, getenv: func(string) string { return "" }}
	err = env.run(context.Background(), args)
	return out.String(), errOut.String(), err
}

// servingStore opens DIR/andon.db with a running writer, as `andon serve`
// would hold it while the commands run beside it.
func servingStore(t *testing.T, data string) (*db.Store, *db.Writer) {
	t.Helper()
	store, err := db.Open(context.Background(), filepath.Join(data, "andon.db"), db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := db.NewWriter(store, db.WriterConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("writer: %v", err)
		}
		store.Close()
	})
	return store, w
}

func press(metric string, ts int64, v float64) plant.Reading {
	p := plant.Path{Site: "acme", Line: "line-1", Machine: "press-01"}
	return plant.Reading{Path: p, Metric: metric, TS: ts, Value: v, Topic: p.String() + "/" + metric}
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	body, ok := strings.CutPrefix(string(b), "\ufeff")
	if !ok {
		t.Errorf("%s has no UTF-8 BOM", path)
	}
	recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	return recs
}

func TestExportCommand(t *testing.T) {
	data := t.TempDir()
	_, w := servingStore(t, data)
	ctx := context.Background()
	base := time.Date(2026, 11, 25, 6, 0, 0, 0, time.UTC).UnixMilli()
	var rs []plant.Reading
	for i := range 1000 {
		rs = append(rs, press("temperature", base+int64(i)*1000, float64(i)/4-100))
		if i%10 == 0 {
			rs = append(rs, press("speed", base+int64(i)*1000, float64(i)))
		}
	}
	if err := w.Write(ctx, rs); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	from, to := strconv.FormatInt(base, 10), "2026-11-25"

	t.Run("readings of a machine", func(t *testing.T) {
		file := filepath.Join(out, "long.csv")
		_, stderr, err := runCmd(t, "export", "--data", data, "--kind", "readings", "--machines", "acme/line-1/press-01",
			"--from", from, "--to", to, "--time-zone", "UTC", "--out", file)
		if err != nil {
			t.Fatal(err)
		}
		recs := readCSV(t, file)
		if len(recs) != 1+1000+100 || strings.Join(recs[0], ",") != "time,machine,tag,value,unit" {
			t.Fatalf("%d records, header %v", len(recs), recs[0])
		}
		// Time order; the speed tag sorts first at shared instants (tag list order).
		if recs[1][0] != "2026-11-25T06:00:00.000Z" || recs[1][2] != "speed" || recs[2][2] != "temperature" || recs[2][3] != "-100" {
			t.Errorf("first rows = %v, %v", recs[1], recs[2])
		}
		if !strings.Contains(stderr, "1100 readings rows written to "+file) {
			t.Errorf("stderr = %q, want the plain final line", stderr)
		}
		if strings.Contains(stderr, "\r") {
			t.Errorf("stderr is no terminal but got a progress bar: %q", stderr)
		}
	})
	t.Run("wide by topic, to stdout", func(t *testing.T) {
		stdout, _, err := runCmd(t, "export", "--data", data, "--kind", "readings", "--format", "wide", "--bom=false",
			"--tags", "acme/line-1/press-01/speed,acme/line-1/press-01/temperature", "--from", from, "--to", to, "--time-zone", "UTC")
		if err != nil {
			t.Fatal(err)
		}
		recs, err := csv.NewReader(strings.NewReader(stdout)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 1001 || recs[0][1] != "acme/line-1/press-01/speed" || recs[2][1] != "" || recs[2][2] != "-99.75" {
			t.Errorf("%d records; header %v; second row %v", len(recs), recs[0], recs[2])
		}
	})
	t.Run("other kinds", func(t *testing.T) {
		for kind, header := range map[string]string{
			"downtime": "machine,line,state,start,end",
			"kpis":     "from,to,period,scope,line,machine,availability",
			"tags":     "id,machine,tag,topic,type",
		} {
			file := filepath.Join(out, kind+".csv")
			if _, _, err := runCmd(t, "export", "--data", data, "--kind", kind, "--from", "2026-11-25", "--to", "2026-11-25", "--out", file); err != nil {
				t.Fatalf("%s: %v", kind, err)
			}
			if recs := readCSV(t, file); !strings.HasPrefix(strings.Join(recs[0], ","), header) {
				t.Errorf("%s header = %v", kind, recs[0])
			}
		}
	})
	t.Run("errors", func(t *testing.T) {
		for _, tt := range []struct {
			args []string
			want string
		}{
			{[]string{"--kind", "bogus"}, "--kind"},
			{[]string{"--res", "5m", "--tags", "1"}, "--res"},
			{[]string{"--tags", "no/such/tag"}, `no tag "no/such/tag"`},
			{[]string{"--machines", "nobody"}, `no machine "nobody"`},
			{[]string{"--tags", "1", "--from", "soon"}, "--from"},
			{[]string{"--kind", "readings"}, "name the tags"},
			{[]string{"--tags", "1", "--from", "2026-11-25", "--to", "2026-11-24"}, "before"},
		} {
			file := filepath.Join(out, "bad.csv")
			_, _, err := runCmd(t, append([]string{"export", "--data", data, "--out", file}, tt.args...)...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("export %v = %v, want an error about %s", tt.args, err, tt.want)
			}
			if _, serr := os.Stat(file); serr == nil {
				t.Errorf("export %v left %s behind", tt.args, file)
			}
		}
		if _, _, err := runCmd(t, "export", "--data", t.TempDir(), "--tags", "1"); err == nil || !strings.Contains(err.Error(), "no database") {
			t.Errorf("export of an empty data dir = %v, want no database", err)
		}
	})
}

// TestBackupCommand backs up a database while readings are being committed
// into it, as `andon serve` would.
func TestBackupCommand(t *testing.T) {
	data := t.TempDir()
	_, w := servingStore(t, data)
	ctx := context.Background()
	var committed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for ts := int64(1); ; {
			select {
			case <-stop:
				return
			default:
			}
			batch := make([]plant.Reading, 200)
			for i := range batch {
				batch[i] = press("temperature", ts, float64(ts))
				ts++
			}
			if err := w.Write(ctx, batch); err != nil {
				t.Errorf("write: %v", err)
				return
			}
			committed.Add(200)
		}
	})
	for committed.Load() < 2000 && !t.Failed() {
		time.Sleep(time.Millisecond)
	}
	before := committed.Load()
	file := filepath.Join(t.TempDir(), "copy.db")
	stdout, _, err := runCmd(t, "backup", "--data", data, "--out", file)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, "written to "+file) {
		t.Errorf("stdout = %q", stdout)
	}
	b, err := sql.Open("sqlite", "file:"+file+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var check string
	var n int64
	if err := b.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Errorf("integrity_check = %q, %v", check, err)
	}
	if err := b.QueryRow(`SELECT COUNT(*) FROM readings`).Scan(&n); err != nil || n < before {
		t.Errorf("the copy holds %d readings (%v); %d were committed before the backup", n, err, before)
	}
	if _, _, err := runCmd(t, "backup", "--data", data, "--out", file); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("a backup over an existing file = %v, want a refusal", err)
	}
	if _, _, err := runCmd(t, "backup", "--data", data); err == nil || !strings.Contains(err.Error(), "--out") {
		t.Errorf("backup without --out = %v", err)
	}
}

func TestProgressLine(t *testing.T) {
	for _, tt := range []struct {
		done float64
		rows int64
		want string
	}{
		{0.5, 1234, "[###############...............]  50 %  1234 rows"},
		{1.7, 10, "[##############################] 100 %  10 rows"},
		{-1, 99, "  99 rows"},
		{0.25, -1, "[#######.......................]  25 %"},
	} {
		if got := progressLine(tt.done, tt.rows); got != tt.want {
			t.Errorf("progressLine(%v, %d) = %q, want %q", tt.done, tt.rows, got, tt.want)
		}
	}
}
