package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"andon/db"
	"andon/plant"
	"andon/web"
)

const exportSynopsis = "andon export --data DIR --kind readings|downtime|kpis|tags|rejects [--tags LIST] [--machines LIST] [--from T] [--to T] [--out FILE]"

const exportUsage = `usage:
  ` + exportSynopsis + `

Writes the CSV files the web's download buttons give, from the data directory. It works
while "andon serve" runs: it reads a consistent snapshot beside the ingest.

  --kind readings   --tags and/or --machines (all their tags), --from/--to (default: the last
                    24 hours), --res raw|1m|1h, --format long|wide
  --kind downtime   --machines and/or --line, --from/--to (default: every stop), --uncoded
  --kind kpis       --line, --from/--to (days; default: today), --by period|day|shift
  --kind tags       every tag
  --kind rejects    the newest messages that could not be read (as on /admin/rejects)

Tags are ids, topics or machine-path/metric; machines are ids, paths or names; a line is an
id or a name. Times are days (2026-11-25, in --time-zone), RFC 3339 or epoch milliseconds;
a day as --to includes that day.
`

// exportCmd writes a CSV export. It runs the web's own export code on the
// store, so a file from the command line and one from a download button
// are the same.
func (env *environment) exportCmd(ctx context.Context, args []string) error {
	fset := flag.NewFlagSet("export", flag.ContinueOnError)
	var (
		data, kind, tags, machines, line, from, to, res, format, by, out, zone string
		uncoded, bom                                                           bool
	)
	fset.StringVar(&data, "data", "./data", "directory of the SQLite database (andon.db)")
	fset.StringVar(&kind, "kind", "readings", "readings, downtime, kpis, tags or rejects")
	fset.StringVar(&tags, "tags", "", "readings: tags, comma-separated (ids, topics or machine-path/metric)")
	fset.StringVar(&machines, "machines", "", "machines, comma-separated (ids, paths or names)")
	fset.StringVar(&line, "line", "", "downtime, kpis: one line (id or name)")
	fset.StringVar(&from, "from", "", "start: a day, RFC 3339 or epoch ms")
	fset.StringVar(&to, "to", "", "end: a day (included), RFC 3339 or epoch ms; default now")
	fset.StringVar(&res, "res", "raw", "readings: raw, 1m or 1h")
	fset.StringVar(&format, "format", "long", "readings: long (a row per reading) or wide (a column per tag)")
	fset.StringVar(&by, "by", "period", "kpis: a row per machine and line for the whole period, per day or per shift")
	fset.BoolVar(&uncoded, "uncoded", false, "downtime: only stops still waiting for a reason")
	fset.BoolVar(&bom, "bom", true, "start the file with a UTF-8 byte order mark (Excel needs it to read names right)")
	fset.StringVar(&out, "out", "-", "the file to write; - is standard output")
	fset.StringVar(&zone, "time-zone", "Local", "the plant's time zone for times and days (IANA name, e.g. Europe/Berlin)")
	if len(args) > 0 && (args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
		fmt.Fprint(env.stdout, exportUsage)
		return nil
	}
	if _, err := env.parse(fset, args, exportSynopsis); err != nil {
		return err
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return fmt.Errorf("export: --time-zone %q: %w", zone, err)
	}
	x := web.Export{Kind: kind}
	switch kind {
	case web.ExportReadings, web.ExportDowntime, web.ExportKPIs, web.ExportTags, web.ExportRejects:
	default:
		return fmt.Errorf("export: --kind %q: want readings, downtime, kpis, tags or rejects", kind)
	}
	if x.Res, err = db.ParseResolution(res); err != nil || x.Res == db.ResAuto {
		return fmt.Errorf("export: --res %q: want raw, 1m or 1h", res)
	}
	switch format {
	case "long":
	case "wide":
		x.Wide = true
	default:
		return fmt.Errorf("export: --format %q: want long or wide", format)
	}
	switch by {
	case "period", "day", "shift":
		x.By = by
	default:
		return fmt.Errorf("export: --by %q: want period, day or shift", by)
	}
	x.Uncoded = uncoded

	now := time.Now()
	switch {
	case to != "":
		if x.To, err = web.ParseInstant(to, loc, true); err != nil {
			return fmt.Errorf("export: --to: %w", err)
		}
	case kind == web.ExportKPIs:
		_, x.To = plant.Day(now.UnixMilli(), loc)
	default:
		x.To = now.UnixMilli() + 1
	}
	switch {
	case from != "":
		if x.From, err = web.ParseInstant(from, loc, false); err != nil {
			return fmt.Errorf("export: --from: %w", err)
		}
	case kind == web.ExportKPIs:
		x.From, _ = plant.Day(x.To-1, loc)
	case kind == web.ExportReadings:
		x.From = x.To - 24*time.Hour.Milliseconds()
	case kind == web.ExportDowntime && to == "":
		x.To = 0 // every stop
	}

	store, err := env.openUserStore(ctx, data, false)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer store.Close()
	srv, err := web.New(web.Config{Store: store, Location: loc, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := resolveNames(ctx, store, &x, tags, machines, line); err != nil {
		return fmt.Errorf("export: %w", err)
	}

	w := env.stdout
	var file *os.File
	if out != "-" && out != "" {
		// Written beside its final name and renamed when complete, so a
		// failed export never leaves a file that looks whole.
		if file, err = os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*.tmp"); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		defer os.Remove(file.Name()) // a no-op after the rename
		defer file.Close()
		w = file
	}
	bar := env.progressBar()
	x.Progress = bar.update
	start := time.Now()
	rows, err := srv.WriteCSV(ctx, w, x, web.CSVOptions{BOM: bom})
	bar.done()
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	where := "standard output"
	if file != nil {
		if err := file.Close(); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		if err := os.Rename(file.Name(), out); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		where = out
	}
	fmt.Fprintf(env.stderr, "andon export: %d %s rows written to %s in %s\n", rows, kind, where, time.Since(start).Round(time.Millisecond))
	return nil
}

// resolveNames turns the --tags, --machines and --line lists into ids.
func resolveNames(ctx context.Context, store *db.Store, x *web.Export, tags, machines, line string) error {
	lines, err := store.Lines(ctx)
	if err != nil {
		return err
	}
	all, err := store.Tags(ctx)
	if err != nil {
		return err
	}
	for _, name := range splitList(machines) {
		var found []plant.Machine
		for _, l := range lines {
			for _, m := range l.Machines {
				if name == strconv.FormatInt(m.ID, 10) || name == m.Path.String() || name == m.Name || name == m.Path.Machine {
					found = append(found, m)
				}
			}
		}
		switch len(found) {
		case 0:
			return fmt.Errorf("--machines: no machine %q", name)
		case 1:
		default:
			return fmt.Errorf("--machines: %q names %d machines; use its path or id", name, len(found))
		}
		x.MachineIDs = append(x.MachineIDs, found[0].ID)
	}
	for _, name := range splitList(tags) {
		var found []int64
		for _, t := range all {
			if name == strconv.FormatInt(t.ID, 10) || name == t.Topic || name == t.Machine+"/"+t.Metric {
				found = append(found, t.ID)
			}
		}
		switch len(found) {
		case 0:
			return fmt.Errorf("--tags: no tag %q", name)
		case 1:
		default:
			return fmt.Errorf("--tags: %q names %d tags; use its id", name, len(found))
		}
		x.TagIDs = append(x.TagIDs, found[0])
	}
	if x.Kind == web.ExportReadings && tags == "" {
		// Every tag of the machines, in the order the tag list shows them.
		for _, t := range all {
			for _, id := range x.MachineIDs {
				if t.MachineID == id && !t.Hidden {
					x.TagIDs = append(x.TagIDs, t.ID)
				}
			}
		}
		if len(x.TagIDs) == 0 {
			return errors.New("readings: name the tags (--tags) or machines (--machines) to export")
		}
	}
	if line != "" {
		found := false
		for _, l := range lines {
			if line == strconv.FormatInt(l.ID, 10) || (l.ID != 0 && line == l.Name) || line == l.Path {
				id := l.ID
				x.Line, found = &id, true
				break
			}
		}
		if !found {
			return fmt.Errorf("--line: no line %q", line)
		}
	}
	return nil
}

// progress draws a bar on a terminal, at most ten times a second, and
// nothing otherwise: a log or a pipe gets only the final line.
type progress struct {
	w     io.Writer
	mu    sync.Mutex
	last  time.Time
	drawn bool
}

func (env *environment) progressBar() *progress {
	f, ok := env.stderr.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return &progress{}
	}
	return &progress{w: f}
}

func (p *progress) update(done float64, rows int64) {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	p.drawn = true
	fmt.Fprint(p.w, "\r"+progressLine(done, rows))
}

func (p *progress) done() {
	if p.w != nil && p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

// progressLine is "[#########...........]  45 %  1234567 rows"; done < 0
// (unknown) shows the rows alone.
func progressLine(done float64, rows int64) string {
	const width = 30
	var b strings.Builder
	if done >= 0 {
		done = min(done, 1)
		n := int(done * width)
		b.WriteString("[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]")
		fmt.Fprintf(&b, " %3.0f %%", done*100)
	}
	if rows >= 0 {
		fmt.Fprintf(&b, "  %d rows", rows)
	}
	return b.String()
}
