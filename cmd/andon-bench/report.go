package main

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// row is one measured figure, with a sample per run.
type row struct {
	section, name, unit string
	note                string
	// baseline names what ratios compare against; "" for no ratio.
	baseline string
	// Targets; zero means none. zeroOK makes atMost: 0 a real target.
	atLeast, atMost, ratioAtLeast float64
	zeroOK                        bool
	headline                      bool

	samples, ratios []float64
}

type report struct {
	env   machineEnv
	runs  int
	order []string
	rows  map[string]*row
}

func newReport(env machineEnv, runs int) *report {
	return &report{env: env, runs: runs, rows: map[string]*row{}}
}

// add records one run's sample (and its ratio to the baseline, when the
// row has one) under the row's section and name.
func (r *report) add(def row, v, ratio float64) {
	key := def.section + "\x00" + def.name
	cur := r.rows[key]
	if cur == nil {
		cur = &def
		r.rows[key] = cur
		r.order = append(r.order, key)
	}
	cur.samples = append(cur.samples, v)
	if cur.baseline != "" {
		cur.ratios = append(cur.ratios, ratio)
	}
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return math.NaN()
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// verdict says whether the row's median meets its target: "met",
// "**missed**", or "" for no target.
func (w *row) verdict() string {
	m := median(w.samples)
	ok, has := true, false
	if w.atLeast > 0 {
		has = true
		ok = ok && m >= w.atLeast
	}
	if w.atMost > 0 || w.zeroOK {
		has = true
		ok = ok && m <= w.atMost
	}
	if w.ratioAtLeast > 0 {
		has = true
		ok = ok && median(w.ratios) >= w.ratioAtLeast
	}
	switch {
	case !has:
		return ""
	case ok:
		return "met"
	default:
		return "**missed**"
	}
}

func (w *row) target() string {
	var ts []string
	if w.atLeast > 0 {
		ts = append(ts, "≥ "+format(w.atLeast, w.unit))
	}
	if w.atMost > 0 || w.zeroOK {
		if w.zeroOK && w.atMost < 1 {
			ts = append(ts, "0")
		} else {
			ts = append(ts, "≤ "+format(w.atMost, w.unit))
		}
	}
	if w.ratioAtLeast > 0 {
		ts = append(ts, fmt.Sprintf("≥ %.2f× %s", w.ratioAtLeast, w.baseline))
	}
	return strings.Join(ts, ", ")
}

// format prints a figure with the precision its size deserves.
func format(v float64, unit string) string {
	var s string
	switch a := math.Abs(v); {
	case math.IsNaN(v):
		s = "—"
	case unit == "×":
		s = strconv.FormatFloat(v, 'f', 2, 64)
	case a >= 1000:
		s = thousands(v)
	case a >= 100 || v == math.Trunc(v):
		s = strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		s = strconv.FormatFloat(v, 'f', 1, 64)
	default:
		s = strconv.FormatFloat(v, 'f', 2, 64)
	}
	if unit == "" || unit == "×" {
		return s + map[bool]string{true: "×", false: ""}[unit == "×"]
	}
	return s + " " + unit
}

// thousands prints a whole number with thousands separators.
func thousands(v float64) string {
	s := strconv.FormatFloat(math.Round(math.Abs(v)), 'f', 0, 64)
	var b strings.Builder
	if v < 0 {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func spread(xs []float64, unit string) string {
	if len(xs) < 2 {
		return "one run"
	}
	return format(slices.Min(xs), unit) + " – " + format(slices.Max(xs), unit)
}

// markdown is the report: where and when, then one table per section.
func (r *report) markdown() string {
	var b strings.Builder
	e := r.env
	fmt.Fprintf(&b, "Measured %s on %s; commit %s; %s.\n", e.date, e.machine, e.commit, e.goVersion)
	fmt.Fprintf(&b, "Load average before and after: %s / %s (other work on a shared machine shows here). ", e.loadBefore, e.loadAfter)
	fmt.Fprintf(&b, "Each figure is the median of %d run(s), with min – max; a ratio compares Andon with the baseline measured "+
		"next to it in the same run (the median of the per-run ratios).\n", r.runs)
	// Sections in the order they were first measured, rows within them in
	// theirs.
	var sections []string
	for _, key := range r.order {
		if s := r.rows[key].section; !slices.Contains(sections, s) {
			sections = append(sections, s)
		}
	}
	var keys []string
	for _, s := range sections {
		for _, key := range r.order {
			if r.rows[key].section == s {
				keys = append(keys, key)
			}
		}
	}
	section := ""
	for _, key := range keys {
		w := r.rows[key]
		if w.section != section {
			section = w.section
			fmt.Fprintf(&b, "\n**%s**\n\n", section)
			b.WriteString("| measure | median | min – max | ratio to baseline | target | |\n|---|---|---|---|---|---|\n")
		}
		ratio := ""
		if w.baseline != "" && len(w.ratios) > 0 {
			ratio = fmt.Sprintf("%s of %s", format(median(w.ratios), "×"), w.baseline)
			if len(w.ratios) > 1 {
				ratio += fmt.Sprintf(" (%s – %s)", format(slices.Min(w.ratios), "×"), format(slices.Max(w.ratios), "×"))
			}
		}
		name := w.name
		if w.note != "" {
			name += " (" + w.note + ")"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", name, format(median(w.samples), w.unit), spread(w.samples, w.unit),
			ratio, w.target(), w.verdict())
	}
	return b.String()
}

// missed lists the rows whose targets the medians do not meet.
func (r *report) missed() []string {
	var out []string
	for _, key := range r.order {
		w := r.rows[key]
		if w.verdict() == "**missed**" {
			out = append(out, fmt.Sprintf("%s / %s: %s (target %s)", w.section, w.name, format(median(w.samples), w.unit), w.target()))
		}
	}
	return out
}

const (
	markStart = "<!-- andon-bench:start -->"
	markEnd   = "<!-- andon-bench:end -->"
)

// writeInto replaces what lies between the markers in path with table, or
// puts the markers and the table after the file's first paragraph.
func writeInto(path, table string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	s := string(old)
	block := markStart + "\n" + table + markEnd
	if i, j := strings.Index(s, markStart), strings.Index(s, markEnd); i >= 0 && j > i {
		s = s[:i] + block + s[j+len(markEnd):]
	} else {
		s = "# Benchmarks\n\n" + block + "\n\n" + strings.TrimPrefix(s, "# Benchmarks\n\n")
	}
	return os.WriteFile(path, []byte(s), 0o644)
}

// machineEnv describes where and when the figures were taken.
type machineEnv struct {
	machine, date, commit, goVersion string
	loadBefore, loadAfter            string
}

func describeMachine() machineEnv {
	e := machineEnv{date: time.Now().UTC().Format("2006-01-02 15:04 UTC"), goVersion: runtime.Version(), loadBefore: loadAverage()}
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		f := strings.Fields(string(b))
		if len(f) > 1 {
			kb, _ := strconv.ParseFloat(f[1], 64)
			mem = fmt.Sprintf(", %.0f GiB RAM", kb/(1<<20))
		}
	}
	kernel := ""
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = ", Linux " + strings.TrimSpace(string(b))
	}
	e.machine = fmt.Sprintf("%s, %d cores%s%s", cpu, runtime.NumCPU(), mem, kernel)
	e.commit = "unknown"
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		e.commit = strings.TrimSpace(string(out))
		if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
			e.commit += " (with uncommitted changes)"
		}
	}
	return e
}

func (e machineEnv) summary() string { return e.machine + " · " + e.commit }

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
