// Package ingest turns MQTT messages into plant readings: it parses payloads,
// maps topics onto the asset tree, runs inside the embedded broker as a hook
// and subscribes to an external broker. Everything it receives comes from
// devices and is treated as untrusted.
package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"andon/plant"
)

// Limits bound what one message may carry, so a misbehaving device cannot
// flood the asset tree or the store.
type Limits struct {
	MaxPayload int // bytes; larger payloads are rejected as too large
	MaxTopic   int // bytes of the whole topic
	MaxName    int // bytes per topic level and per metric name
	MaxValues  int // metrics in one JSON payload
	MaxWordLen int // bytes of a state word
	// MaxFuture is how far ahead of its arrival a reading's stated time may
	// be. A device whose clock runs ahead would otherwise write readings
	// that later, true readings of the same instant could not replace, and
	// its machine would look busy in a future no one has lived yet.
	MaxFuture time.Duration
	// MaxAge, when positive, is how far behind its arrival a reading's
	// stated time may be: readings older than what the store keeps would
	// only be deleted again.
	MaxAge time.Duration
}

// DefaultLimits are generous for real devices and small enough that one
// message cannot hurt the store.
func DefaultLimits() Limits {
	return Limits{
		MaxPayload: 64 << 10,
		MaxTopic:   256,
		MaxName:    128,
		MaxValues:  500,
		MaxWordLen: 64,
		MaxFuture:  10 * time.Minute,
	}
}

// withDefaults fills unset limits, so a zero Limits behaves like the defaults
// rather than rejecting everything.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxPayload <= 0 {
		l.MaxPayload = d.MaxPayload
	}
	if l.MaxTopic <= 0 {
		l.MaxTopic = d.MaxTopic
	}
	if l.MaxName <= 0 {
		l.MaxName = d.MaxName
	}
	if l.MaxValues <= 0 {
		l.MaxValues = d.MaxValues
	}
	if l.MaxWordLen <= 0 {
		l.MaxWordLen = d.MaxWordLen
	}
	if l.MaxFuture <= 0 {
		l.MaxFuture = d.MaxFuture
	}
	return l
}

// maxRejectPayload is how much of a rejected payload is kept for an admin to see.
const maxRejectPayload = 256

// maxUnitLen bounds the unit a payload may set; longer units are ignored.
const maxUnitLen = 32

// maxSkippedNamed is how many skipped fields a reject's detail names.
const maxSkippedNamed = 10

// Bounds of a plausible reading time. Anything outside is a device with a
// wrong clock or a value in the wrong unit, not a reading to store.
var (
	minTS = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	maxTS = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
)

// Timestamp keys of a JSON payload, in the order they are preferred when a
// payload carries several.
var tsKeys = []string{"timestamp_ms", "ts", "timestamp", "time"}

// Parse turns one MQTT message into readings. recvMS is the receive time
// (used when the payload has no ts). It returns readings, and a non-nil reject
// when something was wrong (possibly alongside readings from a multi-metric
// payload whose other fields were fine: then the reject's detail names the
// skipped fields). Topics starting with '$' are broker topics, not readings:
// Parse returns nil, nil for them.
func Parse(topic string, payload []byte, recvMS int64, lim Limits) ([]plant.Reading, *plant.Reject) {
	if strings.HasPrefix(topic, "$") {
		return nil, nil
	}
	lim = lim.withDefaults()
	m := Message{Topic: topic, Payload: payload, RecvMS: recvMS}
	if reason, detail := topicProblem(topic, lim); reason != "" {
		return nil, rejectOf(m, reason, detail)
	}
	if reason, detail := payloadProblem(payload, lim.MaxPayload); reason != "" {
		return nil, rejectOf(m, reason, detail)
	}
	return parseChecked(m, lim)
}

// payloadProblem refuses a payload over max bytes.
func payloadProblem(payload []byte, max int) (string, string) {
	if len(payload) > max {
		return plant.ReasonTooLarge, fmt.Sprintf("The payload is %d bytes; at most %d are accepted.", len(payload), max)
	}
	return "", ""
}

// parseChecked is Parse for a message whose topic and payload size were
// checked already (the router checks them before any dialect).
func parseChecked(m Message, lim Limits) ([]plant.Reading, *plant.Reject) {
	topic, recvMS := m.Topic, m.RecvMS
	reject := func(reason, detail string) *plant.Reject { return rejectOf(m, reason, detail) }
	levels, reason, detail := splitLevels(topic, lim)
	if reason != "" {
		return nil, reject(reason, detail)
	}
	body := bytes.TrimSpace(m.Payload)
	if len(body) == 0 {
		return nil, reject(plant.ReasonEmpty, "The payload is empty.")
	}

	if body[0] != '{' {
		path, metric, ok := singlePath(levels)
		if !ok {
			return nil, reject(plant.ReasonTopicTooShort, "A single value's topic needs at least <machine>/<metric>.")
		}
		v, word, reason, detail := parseBare(string(body), lim)
		if reason != "" {
			return nil, reject(reason, detail)
		}
		return []plant.Reading{{Path: path, Metric: metric, TS: recvMS, Arrival: true, Value: v, Word: word, Topic: topic}}, nil
	}

	obj, err := decodeObject(body)
	if err != nil {
		return nil, reject(plant.ReasonBadJSON, "The payload starts like a JSON object but is not valid JSON: "+err.Error()+".")
	}
	ts, stated, reason, detail := timestampOf(obj, recvMS, lim)
	if reason != "" {
		return nil, reject(reason, detail)
	}
	var rs []plant.Reading
	var rej *plant.Reject
	if _, ok := obj["value"]; ok {
		rs, rej = parseSingleJSON(topic, levels, obj, ts, lim, reject)
	} else {
		rs, rej = parseMultiJSON(topic, levels, obj, ts, lim, reject)
	}
	if !stated {
		for i := range rs {
			rs[i].Arrival = true
		}
	}
	return rs, rej
}

// decodeObject decodes a JSON object keeping numbers as text, so overflowing
// values such as 1e999 can be told apart from real numbers.
func decodeObject(body []byte) (map[string]any, error) {
	if obj, ok := decodeFlat(body); ok {
		return obj, nil
	}
	return decodeJSON(body)
}

// decodeJSON is decodeObject by encoding/json alone: everything decodeFlat
// does not take, and what decodeFlat is checked against.
func decodeJSON(body []byte) (map[string]any, error) {
	v, err := decodeValue(body)
	if err != nil {
		return nil, err
	}
	obj, ok := v.(map[string]any)
	if !ok || obj == nil {
		return nil, errors.New("not an object")
	}
	return obj, nil
}

// decodeValue decodes one JSON value of any kind, numbers kept as text
// (json.Number), and nothing after it.
func decodeValue(body []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the value")
	}
	return v, nil
}

// timestampOf returns the reading time a JSON payload states, or recvMS when
// it states none; stated says which.
func timestampOf(obj map[string]any, recvMS int64, lim Limits) (ts int64, stated bool, reason, detail string) {
	for _, k := range tsKeys {
		raw, ok := obj[k]
		if !ok {
			continue
		}
		ts, reason, detail := readTS(raw, fmt.Sprintf("The %q field", k), recvMS, lim)
		if reason != "" {
			return 0, false, reason, detail
		}
		return ts, true, "", ""
	}
	return recvMS, false, "", ""
}

// readTS reads a reading's stated time (parseTS) and bounds it around its
// arrival (boundTS); what names where it was found, for the reject.
func readTS(raw any, what string, recvMS int64, lim Limits) (int64, string, string) {
	ts, ok := parseTS(raw)
	if !ok {
		return 0, plant.ReasonBadTimestamp,
			what + " is not epoch milliseconds, epoch seconds or an RFC 3339 time between 2000 and 2200."
	}
	return boundTS(ts, what, recvMS, lim)
}

// boundTS refuses a stated time too far ahead of the message's arrival (a
// device clock running ahead) or, with MaxAge, older than what is kept.
func boundTS(ts int64, what string, recvMS int64, lim Limits) (int64, string, string) {
	if ahead := time.Duration(ts-recvMS) * time.Millisecond; ahead > lim.MaxFuture {
		return 0, plant.ReasonFutureTimestamp,
			fmt.Sprintf("%s is %s ahead of the time the message arrived; at most %s is accepted. Check the device's clock.",
				what, ahead.Round(time.Second), lim.MaxFuture)
	}
	if behind := time.Duration(recvMS-ts) * time.Millisecond; lim.MaxAge > 0 && behind > lim.MaxAge {
		return 0, plant.ReasonOldTimestamp,
			fmt.Sprintf("%s is %s before the time the message arrived; readings older than %s are not kept.",
				what, behind.Round(time.Second), lim.MaxAge)
	}
	return ts, "", ""
}

// parseTS reads a timestamp: a number above 1e11 is epoch milliseconds (1e11
// seconds would be the year 5138), a smaller one epoch seconds, possibly
// fractional; a string is RFC 3339.
func parseTS(raw any) (int64, bool) {
	var ms int64
	switch v := raw.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, false
		}
		if math.Abs(f) <= 1e11 {
			f *= 1000
		}
		// Check the range as a float first: converting a huge float to int64 is undefined.
		if f < float64(minTS) || f > float64(maxTS) {
			return 0, false
		}
		ms = int64(math.Round(f))
	case string:
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return 0, false
		}
		ms = t.UnixMilli()
	default:
		return 0, false
	}
	if ms < minTS || ms > maxTS {
		return 0, false
	}
	return ms, true
}

// parseBare reads a value sent as plain text: a number, true/false, or a
// state word. It returns either a value or a word, or a reject reason and
// detail.
func parseBare(s string, lim Limits) (float64, string, string, string) {
	s = strings.TrimSpace(s)
	switch {
	case strings.EqualFold(s, "true"):
		return 1, "", "", ""
	case strings.EqualFold(s, "false"):
		return 0, "", "", ""
	case isNonFiniteWord(s):
		return 0, "", plant.ReasonNotFinite, "The value is not a finite number (NaN or infinity)."
	case isDecimal(s):
		f, reason, detail := parseNumber(s)
		return f, "", reason, detail
	case isWord(s, lim.MaxWordLen):
		return 0, s, "", ""
	}
	return 0, "", plant.ReasonNotANumber,
		fmt.Sprintf("The value is not a number, true/false or a state word (letters, digits, _ - . and space, starting with a letter, at most %d bytes).", lim.MaxWordLen)
}

// parseNumber converts decimal text to a finite float.
func parseNumber(s string) (float64, string, string) {
	f, err := strconv.ParseFloat(s, 64)
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, plant.ReasonNotFinite, "The value is not a finite number (it overflows a 64-bit float)."
	}
	// A range error with a finite result is an underflow to zero, which is a
	// fine reading; any other error means the text was no number at all.
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, plant.ReasonNotANumber, "The value is not a number."
	}
	return f, "", ""
}

// isNonFiniteWord reports the spellings of NaN and infinity that
// strconv.ParseFloat would accept; they look like words but are numbers a
// store and a chart cannot use.
func isNonFiniteWord(s string) bool {
	switch strings.ToLower(strings.TrimLeft(s, "+-")) {
	case "nan", "inf", "infinity":
		return true
	}
	return false
}

// isDecimal reports whether s is a plain decimal number: an optional sign,
// digits with an optional fraction, an optional exponent. It keeps out what
// strconv.ParseFloat also accepts but devices do not mean (hex floats,
// underscores).
func isDecimal(s string) bool {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			digits++
		}
	}
	if digits == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		exp := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			exp++
		}
		if exp == 0 {
			return false
		}
	}
	return i == len(s)
}

// isWord reports whether s is a state word: it starts with a letter and holds
// only letters, digits, '_', '-', '.' and spaces.
func isWord(s string, maxLen int) bool {
	if s == "" || len(s) > maxLen || !utf8.ValidString(s) {
		return false
	}
	for i, r := range s {
		if i == 0 && !unicode.IsLetter(r) {
			return false
		}
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !strings.ContainsRune("_-. ", r) {
			return false
		}
	}
	return true
}

// jsonValue turns one JSON value into a reading's value or word.
func jsonValue(raw any, lim Limits) (float64, string, string, string) {
	switch v := raw.(type) {
	case json.Number:
		if !isDecimal(string(v)) {
			return 0, "", plant.ReasonNotANumber, "The value is not a number."
		}
		f, reason, detail := parseNumber(string(v))
		return f, "", reason, detail
	case bool:
		if v {
			return 1, "", "", ""
		}
		return 0, "", "", ""
	case string:
		return parseBare(v, lim)
	case nil:
		return 0, "", plant.ReasonNotANumber, "The value is null."
	case []any:
		return 0, "", plant.ReasonNotANumber, "The value is an array."
	}
	return 0, "", plant.ReasonNotANumber, "The value is an object."
}

// parseSingleJSON handles {"value": ..., "ts": ..., "unit": ...} sent to a
// metric's own topic.
func parseSingleJSON(topic string, levels []string, obj map[string]any, ts int64, lim Limits,
	reject func(string, string) *plant.Reject) ([]plant.Reading, *plant.Reject) {
	path, metric, ok := singlePath(levels)
	if !ok {
		return nil, reject(plant.ReasonTopicTooShort, "A single value's topic needs at least <machine>/<metric>.")
	}
	v, word, reason, detail := jsonValue(obj["value"], lim)
	if reason != "" {
		return nil, reject(reason, detail)
	}
	r := plant.Reading{Path: path, Metric: metric, TS: ts, Value: v, Word: word, Topic: topic}
	if u, ok := obj["unit"].(string); ok && len(u) <= maxUnitLen && plant.ValidName(u) {
		r.Unit = u
	}
	return []plant.Reading{r}, nil
}

// skipped is a field of a multi-metric payload that produced no reading.
type skipped struct {
	name, reason, why string
}

// parseMultiJSON handles a JSON object of several metrics sent to the
// machine's own topic. Fields that cannot be read are skipped and named in the
// reject, and the others still become readings.
func parseMultiJSON(topic string, levels []string, obj map[string]any, ts int64, lim Limits,
	reject func(string, string) *plant.Reject) ([]plant.Reading, *plant.Reject) {
	path, ok := machinePath(levels)
	if !ok {
		return nil, reject(plant.ReasonTopicTooShort, "A multi-metric payload's topic needs at least <machine>.")
	}
	return flatReadings(topic, path, "", obj, ts, lim, reject)
}

// flatReadings turns the fields of obj (but its timestamp keys) into
// readings of the machine at path, names prefixed by prefix; fields that
// cannot be read are named in the reject, the others still stored.
func flatReadings(topic string, path plant.Path, prefix string, obj map[string]any, ts int64, lim Limits,
	reject func(string, string) *plant.Reject) ([]plant.Reading, *plant.Reject) {
	top := make(map[string]any, len(obj))
	for k, v := range obj {
		if !slices.Contains(tsKeys, k) {
			top[k] = v
		}
	}
	f := flattener{lim: lim}
	if !f.walk(prefix, top) {
		return nil, reject(plant.ReasonTooManyValues, fmt.Sprintf("The payload holds more than %d values.", lim.MaxValues))
	}
	var rs []plant.Reading
	var skips []skipped
	for _, fld := range f.fields {
		if fld.reason != "" {
			skips = append(skips, skipped{fld.name, fld.reason, fld.why})
			continue
		}
		v, word, reason, why := jsonValue(fld.raw, lim)
		if reason != "" {
			skips = append(skips, skipped{fld.name, reason, why})
			continue
		}
		rs = append(rs, plant.Reading{Path: path, Metric: fld.name, TS: ts, Value: v, Word: word, Topic: topic})
	}
	switch {
	case len(skips) > 0:
		return rs, reject(skips[0].reason, skippedDetail(skips, len(rs)))
	case len(rs) == 0:
		return nil, reject(plant.ReasonEmpty, "The JSON object holds no metrics.")
	}
	return rs, nil
}

// skippedDetail is the sentence an admin reads for a partly rejected payload.
func skippedDetail(skips []skipped, kept int) string {
	var b strings.Builder
	if kept == 0 {
		b.WriteString("No field could be read: ")
	} else {
		fmt.Fprintf(&b, "%d field(s) stored, %d skipped: ", kept, len(skips))
	}
	for i, s := range skips {
		if i == maxSkippedNamed {
			fmt.Fprintf(&b, "; and %d more", len(skips)-i)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%q (%s)", plant.Truncate(s.name, 64), strings.TrimSuffix(s.why, "."))
	}
	b.WriteString(".")
	return b.String()
}

// field is one leaf of a flattened JSON object.
type field struct {
	name        string
	raw         any
	reason, why string // set when the name itself is unusable
}

// flattener turns nested objects into dotted metric names in a stable
// (sorted) order, counting leaves so a huge payload is refused early.
type flattener struct {
	lim    Limits
	fields []field
}

// walk adds the leaves of obj under prefix; it returns false when there are
// more than MaxValues of them.
func (f *flattener) walk(prefix string, obj map[string]any) bool {
	for _, k := range sortedKeys(obj) {
		name := k
		if prefix != "" {
			name = prefix + "." + k
		}
		if sub, ok := obj[k].(map[string]any); ok && len(name) <= f.lim.MaxName {
			if !f.walk(name, sub) {
				return false
			}
			continue
		}
		if len(f.fields) >= f.lim.MaxValues {
			return false
		}
		fld := field{name: name, raw: obj[k]}
		switch {
		case k == "" || !plant.ValidName(name):
			fld.reason, fld.why = plant.ReasonNameInvalid, "The name is empty, not valid UTF-8 or holds a control character."
		case len(name) > f.lim.MaxName:
			fld.reason, fld.why = plant.ReasonNameInvalid,
				fmt.Sprintf("The name is %d bytes long; at most %d are accepted.", len(name), f.lim.MaxName)
		}
		f.fields = append(f.fields, fld)
	}
	return true
}

// sortedKeys returns obj's keys in order, so readings come in a stable order.
func sortedKeys(obj map[string]any) []string {
	return slices.Sorted(maps.Keys(obj))
}
