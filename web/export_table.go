package web

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"
)

// An export is a table: a header of column names and rows of typed cells.
// The same rows become CSV (for spreadsheets) or JSON (for the API), so the
// two always agree.

type cellKind uint8

const (
	cellEmpty cellKind = iota // n/a, no value: an empty CSV cell, JSON null
	cellText                  // names, words, comments: neutralised in CSV
	cellNum                   // a plain number, never quoted or prefixed
	cellTime                  // epoch ms, written as ISO 8601 in the plant's zone
	cellBool
)

type cell struct {
	kind cellKind
	s    string
	f    float64
	ms   int64
}

func textCell(s string) cell { return cell{kind: cellText, s: s} }

// numCell is a number; NaN and infinities (never stored, but computed
// ratios could be) are empty rather than a word a spreadsheet cannot sum.
func numCell(f float64) cell {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return cell{}
	}
	return cell{kind: cellNum, f: f}
}

func intCell(n int64) cell { return cell{kind: cellNum, f: float64(n)} }

// timeCell is an instant; 0 (not yet, never) is empty.
func timeCell(ms int64) cell {
	if ms == 0 {
		return cell{}
	}
	return cell{kind: cellTime, ms: ms}
}

func boolCell(b bool) cell {
	if b {
		return cell{kind: cellBool, f: 1}
	}
	return cell{kind: cellBool}
}

// isoMS is ISO 8601 with milliseconds and the zone's offset
// (2026-11-25T06:00:00.000+01:00): unambiguous across daylight-saving
// changes, and what Excel and LibreOffice read as a date and time.
const isoMS = "2006-01-02T15:04:05.000Z07:00"

// isoClock formats times for one export. Rows of an export mostly share
// their second with the row before (several tags at one instant, 1 Hz
// data), so it keeps the last second's text and only rewrites the
// milliseconds: time formatting was the largest cost of a row.
type isoClock struct {
	loc  *time.Location
	sec  int64
	text []byte // the last second's text, in isoMS
}

func (c *isoClock) appendTime(b []byte, ms int64) []byte {
	sec, frac := ms/1000, ms%1000
	if frac < 0 {
		sec, frac = sec-1, frac+1000
	}
	if c.text == nil || sec != c.sec {
		c.text = time.UnixMilli(ms).In(c.loc).AppendFormat(c.text[:0], isoMS)
		c.sec = sec
		// The milliseconds sit at a fixed place only for four-digit years.
		if len(c.text) < 23 || c.text[19] != '.' {
			t := c.text
			c.text = nil
			return append(b, t...)
		}
	}
	c.text[20] = byte('0' + frac/100)
	c.text[21] = byte('0' + frac/10%10)
	c.text[22] = byte('0' + frac%10)
	return append(b, c.text...)
}

// appendNum writes a number with '.' as the decimal point and no thousands
// separators, whatever the locale: the shortest text that reads back as the
// same float64. Very large or small magnitudes use an exponent (1e+21), which
// spreadsheets read as numbers too.
func appendNum(b []byte, f float64) []byte {
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		return strconv.AppendFloat(b, f, 'g', -1, 64)
	}
	return strconv.AppendFloat(b, f, 'f', -1, 64)
}

// table receives an export's header and rows.
type table interface {
	header(cols []string) error
	row(cells []cell) error
	finish() error
}

// exportFlushRows is how many rows pass between flushes to the client, so a long
// download shows progress and the write deadline moves on with it.
const exportFlushRows = 8192

// csvTable writes RFC 4180 CSV with encoding/csv, one record at a time: the
// csv.Writer's buffer is all it holds.
type csvTable struct {
	w     io.Writer
	cw    *csv.Writer
	clock isoClock
	bom   bool
	rec   []string
	buf   []byte
	rows  int64
	flush func() // extends the deadline and pushes bytes to the client; may be nil
}

func newCSVTable(w io.Writer, loc *time.Location, bom bool, flush func()) *csvTable {
	return &csvTable{w: w, cw: csv.NewWriter(w), clock: isoClock{loc: loc}, bom: bom, flush: flush}
}

func (t *csvTable) header(cols []string) error {
	if t.bom {
		if _, err := io.WriteString(t.w, utf8BOM); err != nil {
			return err
		}
	}
	t.rec = t.rec[:0]
	for _, c := range cols {
		// Column names carry tag and machine names in the wide format.
		t.rec = append(t.rec, csvCell(c))
	}
	return t.cw.Write(t.rec)
}

func (t *csvTable) row(cells []cell) error {
	t.rec = t.rec[:0]
	for _, c := range cells {
		switch c.kind {
		case cellText:
			t.rec = append(t.rec, csvCell(c.s))
		case cellNum:
			t.buf = appendNum(t.buf[:0], c.f)
			t.rec = append(t.rec, string(t.buf))
		case cellTime:
			t.buf = t.clock.appendTime(t.buf[:0], c.ms)
			t.rec = append(t.rec, string(t.buf))
		case cellBool:
			t.rec = append(t.rec, strconv.FormatBool(c.f != 0))
		default:
			t.rec = append(t.rec, "")
		}
	}
	if err := t.cw.Write(t.rec); err != nil {
		return err
	}
	t.rows++
	if t.rows%exportFlushRows == 0 {
		t.cw.Flush()
		if err := t.cw.Error(); err != nil {
			return err
		}
		if t.flush != nil {
			t.flush()
		}
	}
	return nil
}

func (t *csvTable) finish() error {
	t.cw.Flush()
	return t.cw.Error()
}

// jsonTable writes {"<meta>": ..., "rows": [{"col": value, ...}, ...]}
// streamed row by row. A time column "time" also gets "time_ms" (epoch ms)
// beside its ISO 8601 text, so scripts need not parse dates.
type jsonTable struct {
	bw      *bufio.Writer
	clock   isoClock
	started bool
	meta    []jsonField
	cols    [][]byte // each column name, quoted
	msKey   [][]byte // "<col>_ms", quoted
	buf     []byte
	rows    int64
	flush   func()
}

type jsonField struct {
	Key   string
	Value any
}

func newJSONTable(w io.Writer, loc *time.Location, flush func(), meta ...jsonField) *jsonTable {
	return &jsonTable{bw: bufio.NewWriterSize(w, 32<<10), clock: isoClock{loc: loc}, meta: meta, flush: flush}
}

func (t *jsonTable) header(cols []string) error {
	t.started = true
	t.bw.WriteByte('{')
	for _, m := range t.meta {
		k, _ := json.Marshal(m.Key)
		v, err := json.Marshal(m.Value)
		if err != nil {
			return fmt.Errorf("web: json export: %s: %w", m.Key, err)
		}
		t.bw.Write(k)
		t.bw.WriteByte(':')
		t.bw.Write(v)
		t.bw.WriteByte(',')
	}
	t.bw.WriteString(`"rows":[`)
	for _, c := range cols {
		k, _ := json.Marshal(c)
		ms, _ := json.Marshal(c + "_ms")
		t.cols = append(t.cols, k)
		t.msKey = append(t.msKey, ms)
	}
	return nil
}

func (t *jsonTable) row(cells []cell) error {
	b := t.buf[:0]
	if t.rows > 0 {
		b = append(b, ',')
	}
	b = append(b, '{')
	for i, c := range cells {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, t.cols[i]...)
		b = append(b, ':')
		switch c.kind {
		case cellText:
			q, _ := json.Marshal(c.s)
			b = append(b, q...)
		case cellNum:
			b = appendNum(b, c.f)
		case cellTime:
			b = append(b, '"')
			b = t.clock.appendTime(b, c.ms)
			b = append(b, '"', ',')
			b = append(b, t.msKey[i]...)
			b = append(b, ':')
			b = strconv.AppendInt(b, c.ms, 10)
		case cellBool:
			b = strconv.AppendBool(b, c.f != 0)
		default:
			b = append(b, "null"...)
		}
	}
	b = append(b, '}')
	t.buf = b
	if _, err := t.bw.Write(b); err != nil {
		return err
	}
	t.rows++
	if t.rows%exportFlushRows == 0 {
		if err := t.bw.Flush(); err != nil {
			return err
		}
		if t.flush != nil {
			t.flush()
		}
	}
	return nil
}

func (t *jsonTable) finish() error {
	if !t.started {
		// No header was written: still a valid document.
		if err := t.header(nil); err != nil {
			return err
		}
	}
	t.bw.WriteString("]}\n")
	return t.bw.Flush()
}

// streamFlusher pushes what an export has written to the client and moves
// the server's write deadline on: the server's WriteTimeout bounds a page,
// but a ten-million-row export may take minutes, and it only needs to be
// making progress.
func streamFlusher(w http.ResponseWriter) func() {
	rc := http.NewResponseController(w)
	return func() {
		_ = rc.SetWriteDeadline(time.Now().Add(time.Minute))
		_ = rc.Flush()
	}
}
