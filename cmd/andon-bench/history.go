package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// The history figures come from Go benchmarks, which build their data
// straight into SQLite (a year of a 1 Hz tag takes far too long to publish):
// each is run -count runs times and every run is one sample.
type goBench struct {
	pkg, bench string // package and -bench pattern
	sub        string // the result line's name, without the -N suffix
	metric     string // the unit reported, e.g. "ms/query"; "ns/op" scaled by scale
	scale      float64
	row        row
}

var historyBenches = []goBench{
	{"./db/", "^BenchmarkSeriesRanges$", "BenchmarkSeriesRanges/range=1h", "ms/query", 1,
		row{section: "History", name: "chart query, 1 h of a 1 Hz tag, 2,000 points", unit: "ms", atMost: 50, headline: true}},
	{"./db/", "^BenchmarkSeriesRanges$", "BenchmarkSeriesRanges/range=24h", "ms/query", 1,
		row{section: "History", name: "chart query, 24 h", unit: "ms", atMost: 50, headline: true}},
	{"./db/", "^BenchmarkSeriesRanges$", "BenchmarkSeriesRanges/range=30d", "ms/query", 1,
		row{section: "History", name: "chart query, 30 days", unit: "ms", atMost: 50, headline: true}},
	{"./db/", "^BenchmarkSeriesRanges$", "BenchmarkSeriesRanges/range=1y", "ms/query", 1,
		row{section: "History", name: "chart query, 1 year", unit: "ms", atMost: 50, headline: true}},
	{"./db/", "^BenchmarkSeriesRanges$", "BenchmarkSeriesRanges/range=24h/res=raw", "ms/query", 1,
		row{section: "History", name: "baseline: the 24 h chart from raw readings (86,400 rows)", unit: "ms"}},
	{"./db/", "^BenchmarkStorage$", "BenchmarkStorage", "B/reading-raw", 1,
		row{section: "History", name: "storage per raw reading (readings table, 100 machines × 10 metrics at 1 Hz)", unit: "B", atMost: 26, headline: true}},
	{"./db/", "^BenchmarkStorage$", "BenchmarkStorage", "B/reading-file", 1,
		row{section: "History", name: "whole file per raw reading (with rollups, tags, indexes)", unit: "B"}},
	{"./plant/", "^BenchmarkMonth100Machines$", "BenchmarkMonth100Machines", "ns/op", 1e-6,
		row{section: "History", name: "KPIs of 100 machines × 30 days (per machine, shift and day)", unit: "ms"}},
	{"./web/", "^BenchmarkExportCSV$", "BenchmarkExportCSV/long", "rows/s", 1,
		row{section: "History", name: "CSV export, long format, 1 million readings", unit: "rows/s"}},
}

// history runs each package's benchmarks once with -count runs and files
// every matching result line as a sample.
func (b *bench) history(runs int) error {
	type key struct{ pkg, bench string }
	done := map[key][]byte{}
	for _, gb := range historyBenches {
		k := key{gb.pkg, gb.bench}
		if _, ok := done[k]; ok {
			continue
		}
		args := []string{"test", "-run", "^$", "-bench", gb.bench, "-count", strconv.Itoa(runs), "-timeout", "30m", gb.pkg}
		b.step("go %s", strings.Join(args, " "))
		cmd := exec.Command("go", args...)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
		}
		done[k] = out
	}
	for _, gb := range historyBenches {
		vals := parseBench(done[key{gb.pkg, gb.bench}], gb.sub, gb.metric)
		if len(vals) == 0 {
			return fmt.Errorf("%s %s: no %q in the output", gb.pkg, gb.sub, gb.metric)
		}
		for _, v := range vals {
			b.r.add(gb.row, v*gb.scale, 0)
		}
	}
	return nil
}

// parseBench finds the lines of benchmark name (any -GOMAXPROCS suffix) and
// returns the value before unit on each.
func parseBench(out []byte, name, unit string) []float64 {
	var vals []float64
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 {
			continue
		}
		n := f[0]
		if i := strings.LastIndexByte(n, '-'); i > 0 {
			if _, err := strconv.Atoi(n[i+1:]); err == nil {
				n = n[:i]
			}
		}
		if n != name {
			continue
		}
		for i := 2; i+1 < len(f); i += 2 {
			if f[i+1] == unit {
				if v, err := strconv.ParseFloat(f[i], 64); err == nil {
					vals = append(vals, v)
				}
			}
		}
	}
	return vals
}
