package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"andon/plant"
)

// Mapping rules (plant.MappingRule) let an admin say how topics that the
// default layout does not fit are read: where the machine's names are in the
// topic, where the value and its time are in the payload, and with which
// unit and scale. Rules and topics are both untrusted text: a pattern is
// compiled once, when the rules are loaded, into a regexp whose literal parts
// are quoted, and matching a topic then runs in linear time.

// Bounds of a compiled rule, beyond the text lengths plant.MappingRule.Validate checks.
const (
	maxPatternLevels = 32 // levels of a pattern
	maxSegmentName   = 32 // bytes of a {name}
	maxPathSteps     = 32 // steps of a JSON path
	maxPathIndex     = 1_000_000
	maxSuggestLeaves = 1000 // leaves SuggestRule looks at
)

// Segments that name the levels of a machine's path.
const (
	segSite    = "site"
	segArea    = "area"
	segLine    = "line"
	segMachine = "machine"
	segMetric  = "metric"
)

// RuleSet is a list of compiled mapping rules, tried in order. A nil or
// empty RuleSet matches nothing. It is immutable, so one RuleSet may serve
// every ingest goroutine; a change of rules builds a new one.
type RuleSet struct {
	rules []compiledRule
}

// compiledRule is a rule ready to match: its pattern as a regexp and its
// paths and metric template parsed.
type compiledRule struct {
	rule   plant.MappingRule
	n      int    // its 1-based place in the list, for messages
	prefix string // the pattern's literal start: a cheap first test
	re     *regexp.Regexp
	segs   map[string]int // segment name -> submatch index
	metric []tmplPart     // nil: the default metric name
	value  jsonPath       // nil: the whole payload
	ts     jsonPath       // nil: the default ts keys, else arrival
	// defMetric is the metric name when the rule names none and the
	// pattern has no {metric}: the value path's last name.
	defMetric string
}

// tmplPart is a literal or a {segment} of a metric template.
type tmplPart struct {
	lit, seg string
}

// CompileRules checks and compiles rules in order. Its error names the rule
// (its place in the list and its pattern) and wraps a *plant.MappingError
// that says which of the rule's fields is wrong.
func CompileRules(rules []plant.MappingRule) (*RuleSet, error) {
	rs := &RuleSet{rules: make([]compiledRule, 0, len(rules))}
	for i, r := range rules {
		c, err := compileRule(r)
		if err != nil {
			return nil, fmt.Errorf("mapping rule %d (pattern %q): %w", i+1, plant.Truncate(r.Pattern, 80), err)
		}
		c.n = i + 1
		rs.rules = append(rs.rules, c)
	}
	return rs, nil
}

// Len is the number of rules.
func (rs *RuleSet) Len() int {
	if rs == nil {
		return 0
	}
	return len(rs.rules)
}

// Match returns the index of the first rule whose pattern matches topic, or
// -1. The admin's inbox uses it to tell which unmapped topics a rule now
// covers.
func (rs *RuleSet) Match(topic string) int {
	if rs == nil || strings.HasPrefix(topic, "$") {
		return -1
	}
	for i := range rs.rules {
		if rs.rules[i].match(topic) != nil {
			return i
		}
	}
	return -1
}

// decode reads m with the first rule whose pattern matches its topic. ok is
// false when no rule matches (then the next decoder is asked); when one
// matches, its readings or its reject are the answer, and later rules are
// not tried. Broker topics ('$') and topics that break MQTT's rules are left
// to the default decoder, which rejects them with the right reason.
func (rs *RuleSet) decode(m Message, lim Limits) ([]plant.Reading, *plant.Reject, bool) {
	if rs == nil || len(rs.rules) == 0 || strings.HasPrefix(m.Topic, "$") {
		return nil, nil, false
	}
	for i := range rs.rules {
		c := &rs.rules[i]
		sub := c.match(m.Topic)
		if sub == nil {
			continue
		}
		// The topic is checked only once a rule matches it, so that the
		// many messages no rule is for cost a prefix test and no more.
		lim = lim.withDefaults()
		if _, reason, _ := splitTopic(m.Topic, lim); reason != "" {
			return nil, nil, false
		}
		readings, rej := c.apply(m, sub, lim)
		return readings, rej, true
	}
	return nil, nil, false
}

// PreviewRule shows an admin what one rule would make of a sample message:
// its readings, or the reject an admin would see. The error is the rule's
// compile error (wrapping a *plant.MappingError). A topic the pattern does
// not match is a reject with plant.ReasonUnmapped, saying so.
func PreviewRule(r plant.MappingRule, m Message, lim Limits) ([]plant.Reading, *plant.Reject, error) {
	c, err := compileRule(r)
	if err != nil {
		return nil, nil, err
	}
	c.n = 1
	lim = lim.withDefaults()
	if strings.HasPrefix(m.Topic, "$") {
		// MQTT-4.7.2-1: such topics are the broker's; no rule reads them.
		return nil, rejectOf(m, plant.ReasonTopicInvalid, "Topics starting with $ belong to the broker, not to devices."), nil
	}
	if _, reason, detail := splitTopic(m.Topic, lim); reason != "" {
		return nil, rejectOf(m, reason, detail), nil
	}
	sub := c.match(m.Topic)
	if sub == nil {
		return nil, rejectOf(m, plant.ReasonUnmapped,
			fmt.Sprintf("The topic does not match the pattern %s.", r.Pattern)), nil
	}
	readings, rej := c.apply(m, sub, lim)
	return readings, rej, nil
}

func compileRule(r plant.MappingRule) (compiledRule, error) {
	if err := r.Validate(); err != nil {
		return compiledRule{}, err
	}
	c := compiledRule{rule: r}
	var err error
	if c.re, c.segs, c.prefix, err = compilePattern(r.Pattern); err != nil {
		return compiledRule{}, err
	}
	if c.value, err = parsePath(r.Value); err != nil {
		return compiledRule{}, &plant.MappingError{Field: "value", Msg: err.Error()}
	}
	if c.ts, err = parsePath(r.Timestamp); err != nil {
		return compiledRule{}, &plant.MappingError{Field: "timestamp", Msg: err.Error()}
	}
	if r.Availability {
		// An availability rule reads no value, so its metric, unit and
		// scale would silently do nothing: better to say so.
		switch {
		case r.Timestamp != "":
			return compiledRule{}, &plant.MappingError{Field: "timestamp", Msg: "an availability rule takes the time the message arrives, so it reads no timestamp"}
		case r.Metric != "":
			return compiledRule{}, &plant.MappingError{Field: "metric", Msg: "an availability rule stores no value, so it takes no metric"}
		case r.Unit != "":
			return compiledRule{}, &plant.MappingError{Field: "unit", Msg: "an availability rule stores no value, so it takes no unit"}
		case r.Scale != 1 || r.Offset != 0:
			return compiledRule{}, &plant.MappingError{Field: "scale", Msg: "an availability rule stores no value, so it takes no scale or offset"}
		}
		return c, nil
	}
	if r.Metric != "" {
		parts, names, err := parseTemplate(r.Metric)
		if err != nil {
			return compiledRule{}, &plant.MappingError{Field: "metric", Msg: err.Error()}
		}
		for _, n := range names {
			if _, ok := c.segs[n]; !ok {
				return compiledRule{}, &plant.MappingError{Field: "metric",
					Msg: fmt.Sprintf("{%s} is not a segment of the pattern", n)}
			}
		}
		c.metric = parts
	}
	if c.value != nil {
		c.defMetric = c.value.lastName()
		if c.metric == nil && c.defMetric == "" {
			if _, ok := c.segs[segMetric]; !ok {
				return compiledRule{}, &plant.MappingError{Field: "metric",
					Msg: fmt.Sprintf("the value path %s has no name to call the metric by: set a metric or add {metric} to the pattern", r.Value)}
			}
		}
	}
	return c, nil
}

// compilePattern turns a pattern into an anchored regexp, the submatch index
// of each named segment, and its literal prefix.
func compilePattern(p string) (*regexp.Regexp, map[string]int, string, error) {
	fail := func(format string, args ...any) (*regexp.Regexp, map[string]int, string, error) {
		return nil, nil, "", &plant.MappingError{Field: "pattern", Msg: fmt.Sprintf(format, args...)}
	}
	if strings.HasPrefix(p, "$") {
		return fail("topics starting with $ belong to the broker, not to devices")
	}
	levels := strings.Split(p, "/")
	if len(levels) > maxPatternLevels {
		return fail("%d levels; at most %d are allowed", len(levels), maxPatternLevels)
	}
	var b strings.Builder
	b.WriteString(`^(?s:`)
	segs := map[string]int{}
	group := 0
	prefix, literal := "", true
	for i, l := range levels {
		last := i == len(levels)-1
		switch {
		case l == "#" && last:
			// MQTT-4.7.1-2: '#' also matches the parent level, so "a/#"
			// matches "a" as well as "a/b/c".
			if i > 0 {
				b.WriteString(`(?:/[^\x00]*)?`)
			} else {
				b.WriteString(`[^\x00]*`)
			}
			literal = false
			continue
		case l == "#":
			return fail("'#' must be the last level (MQTT-4.7.1-2)")
		}
		if i > 0 {
			b.WriteString("/")
			if literal {
				prefix += "/"
			}
		}
		switch {
		case l == "":
			return fail("level %d is empty (a leading, trailing or double slash); device topics have no empty levels", i+1)
		case l == "+":
			b.WriteString(`[^/]+`)
			literal = false
			continue
		case strings.ContainsAny(l, "+#"):
			return fail("level %q: '+' and '#' must fill a whole level (MQTT-4.7.1-3); topics never contain them", l)
		}
		parts, _, err := parseTemplate(l)
		if err != nil {
			return fail("level %q: %v", l, err)
		}
		for j, pt := range parts {
			if pt.seg == "" {
				b.WriteString(regexp.QuoteMeta(pt.lit))
				if literal {
					prefix += pt.lit
				}
				continue
			}
			if j > 0 && parts[j-1].seg != "" {
				return fail("level %q: {%s} and {%s} need literal text between them to be told apart", l, parts[j-1].seg, pt.seg)
			}
			if _, dup := segs[pt.seg]; dup {
				return fail("{%s} appears twice", pt.seg)
			}
			// A segment takes at least one character and never '/'; it
			// takes as little as it can, so in "{line}-{machine}" the line
			// ends at the first '-'.
			b.WriteString(`([^/]+?)`)
			group++
			segs[pt.seg] = group
			literal = false
		}
	}
	b.WriteString(`)$`)
	if _, ok := segs[segMachine]; !ok {
		return fail("needs a {machine} segment: it says which machine a message is from")
	}
	re, err := regexp.Compile(b.String())
	if err != nil {
		return fail("%v", err)
	}
	return re, segs, prefix, nil
}

// parseTemplate splits text with {name} segments into parts. "{{" and "}}"
// stand for literal braces. Each name may appear once.
func parseTemplate(s string) ([]tmplPart, []string, error) {
	var parts []tmplPart
	var names []string
	var lit strings.Builder
	seen := map[string]bool{}
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "{{"):
			lit.WriteByte('{')
			i += 2
		case strings.HasPrefix(s[i:], "}}"):
			lit.WriteByte('}')
			i += 2
		case s[i] == '}':
			return nil, nil, errors.New("'}' without '{' (write }} for a literal brace)")
		case s[i] == '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return nil, nil, errors.New("'{' without '}' (write {{ for a literal brace)")
			}
			name := s[i+1 : i+end]
			if !segmentName(name) {
				return nil, nil, fmt.Errorf("{%s}: a segment's name is a letter or '_' followed by letters, digits or '_', at most %d bytes",
					plant.Truncate(name, 40), maxSegmentName)
			}
			if seen[name] {
				return nil, nil, fmt.Errorf("{%s} appears twice", name)
			}
			seen[name] = true
			if lit.Len() > 0 {
				parts = append(parts, tmplPart{lit: lit.String()})
				lit.Reset()
			}
			parts = append(parts, tmplPart{seg: name})
			names = append(names, name)
			i += end + 1
		default:
			lit.WriteByte(s[i])
			i++
		}
	}
	if lit.Len() > 0 {
		parts = append(parts, tmplPart{lit: lit.String()})
	}
	return parts, names, nil
}

// segmentName reports whether s is a valid segment name.
func segmentName(s string) bool {
	if s == "" || len(s) > maxSegmentName {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// match returns the topic's submatches, or nil if the pattern does not match.
func (c *compiledRule) match(topic string) []string {
	if !strings.HasPrefix(topic, c.prefix) {
		return nil
	}
	return c.re.FindStringSubmatch(topic)
}

// seg is the value of a named segment of a match, "" if the pattern has none.
func (c *compiledRule) seg(sub []string, name string) string {
	if i, ok := c.segs[name]; ok {
		return sub[i]
	}
	return ""
}

// metricName is the metric a single value is stored under: the rule's
// template, else the {metric} segment, else the value path's last name.
func (c *compiledRule) metricName(sub []string) string {
	if c.metric != nil {
		var b strings.Builder
		for _, p := range c.metric {
			if p.seg != "" {
				b.WriteString(c.seg(sub, p.seg))
			} else {
				b.WriteString(p.lit)
			}
		}
		return b.String()
	}
	if m := c.seg(sub, segMetric); m != "" {
		return m
	}
	return c.defMetric
}

// ruleName is how a reject's detail names the rule.
func (c *compiledRule) ruleName() string {
	return fmt.Sprintf("Mapping rule %d (%s)", c.n, plant.Truncate(c.rule.Pattern, 80))
}

// apply reads a message whose topic the rule matched.
func (c *compiledRule) apply(m Message, sub []string, lim Limits) ([]plant.Reading, *plant.Reject) {
	reject := func(reason, detail string) *plant.Reject { return rejectOf(m, reason, detail) }
	path := plant.Path{
		Site: c.seg(sub, segSite), Area: c.seg(sub, segArea),
		Line: c.seg(sub, segLine), Machine: c.seg(sub, segMachine),
	}
	if len(m.Payload) > lim.MaxPayload {
		return nil, reject(plant.ReasonTooLarge,
			fmt.Sprintf("The payload is %d bytes; at most %d are accepted.", len(m.Payload), lim.MaxPayload))
	}
	body := bytes.TrimSpace(m.Payload)
	if len(body) == 0 {
		return nil, reject(plant.ReasonEmpty, "The payload is empty.")
	}

	// The payload is read as JSON when it looks like an object or array, or
	// when the rule looks inside it. A bare word or number is read as text.
	var doc any
	isJSON := false
	if body[0] == '{' || body[0] == '[' || c.value != nil || c.ts != nil {
		var err error
		if doc, err = decodeAny(body); err == nil {
			isJSON = true
		} else if body[0] == '{' || body[0] == '[' || c.value != nil {
			return nil, reject(plant.ReasonBadJSON, fmt.Sprintf("%s reads a JSON payload, but this one is not valid JSON: %s.",
				c.ruleName(), plant.Truncate(err.Error(), 120)))
		}
	}

	if c.rule.Availability {
		return c.availability(m, path, body, doc, isJSON, reject)
	}

	// The reading's time: where the rule says, else the default ts keys of
	// an object, else arrival.
	ts, stated := m.RecvMS, false
	switch {
	case c.ts != nil:
		if !isJSON {
			return nil, reject(plant.ReasonBadTimestamp,
				fmt.Sprintf("%s reads the time at %s, but the payload is not JSON.", c.ruleName(), c.rule.Timestamp))
		}
		raw, ok := c.ts.lookup(doc)
		if !ok {
			return nil, reject(plant.ReasonBadTimestamp,
				fmt.Sprintf("%s reads the time at %s, but the payload has nothing there.", c.ruleName(), c.rule.Timestamp))
		}
		var reason, detail string
		if ts, reason, detail = readTS(raw, "The time at "+c.rule.Timestamp, m.RecvMS, lim); reason != "" {
			return nil, reject(reason, detail)
		}
		stated = true
	case isJSON:
		if obj, ok := doc.(map[string]any); ok {
			var reason, detail string
			if ts, stated, reason, detail = timestampOf(obj, m.RecvMS, lim); reason != "" {
				return nil, reject(reason, detail)
			}
		}
	}

	var rs []plant.Reading
	var rej *plant.Reject
	switch {
	case c.value != nil:
		raw, ok := c.value.lookup(doc)
		if !ok {
			return nil, reject(plant.ReasonUnmapped,
				fmt.Sprintf("%s matched the topic, but the payload has no value at %s.", c.ruleName(), c.rule.Value))
		}
		rs, rej = c.single(m, path, c.metricName(sub), raw, ts, lim, reject)
	case !isJSON:
		rs, rej = c.single(m, path, c.metricName(sub), string(body), ts, lim, reject)
	default:
		rs, rej = c.whole(m, path, c.metricName(sub), doc, ts, lim, reject)
	}
	if !stated {
		for i := range rs {
			rs[i].Arrival = true
		}
	}
	return rs, rej
}

// single makes one reading of raw: a JSON value, or the bare payload's text.
func (c *compiledRule) single(m Message, path plant.Path, metric string, raw any, ts int64, lim Limits,
	reject func(string, string) *plant.Reject) ([]plant.Reading, *plant.Reject) {
	if metric == "" {
		return nil, reject(plant.ReasonUnmapped,
			fmt.Sprintf("%s names no metric for a single value: set its metric or add {metric} to its pattern.", c.ruleName()))
	}
	if reason, detail := checkMetric(metric, lim); reason != "" {
		return nil, reject(reason, detail)
	}
	v, word, reason, detail := c.number(raw, lim)
	if reason != "" {
		return nil, reject(reason, detail)
	}
	return []plant.Reading{{Path: path, Metric: metric, TS: ts, Value: v, Word: word, Unit: c.rule.Unit, Topic: m.Topic}}, nil
}

// whole reads a JSON payload the rule takes as a whole. An object in the
// default single-value shape ({"value": ..., "unit": ...}) is one value when
// the rule names its metric; any other object gives a metric per field,
// named by the field (after the rule's metric and a dot, if it names one),
// without the rule's scale and unit, which are meant for one value.
func (c *compiledRule) whole(m Message, path plant.Path, metric string, doc any, ts int64, lim Limits,
	reject func(string, string) *plant.Reject) ([]plant.Reading, *plant.Reject) {
	obj, ok := doc.(map[string]any)
	if !ok {
		return nil, reject(plant.ReasonUnmapped,
			fmt.Sprintf("%s takes the whole payload, but it is a JSON array or value, not an object: set the rule's value path, like [0].value.", c.ruleName()))
	}
	if v, ok := obj["value"]; ok && metric != "" {
		rs, rej := c.single(m, path, metric, v, ts, lim, reject)
		if len(rs) == 1 && rs[0].Unit == "" {
			if u, ok := obj["unit"].(string); ok && len(u) <= maxUnitLen && plant.ValidName(u) {
				rs[0].Unit = u
			}
		}
		return rs, rej
	}
	top := make(map[string]any, len(obj))
	for k, v := range obj {
		top[k] = v
	}
	if c.ts != nil {
		// The time is no metric: leave out the field it was read from.
		if len(c.ts) == 1 && !c.ts[0].isIndex {
			delete(top, c.ts[0].key)
		}
	} else {
		for _, k := range tsKeys {
			delete(top, k)
		}
	}
	f := flattener{lim: lim}
	if !f.walk("", top) {
		return nil, reject(plant.ReasonTooManyValues, fmt.Sprintf("The payload holds more than %d values.", lim.MaxValues))
	}
	var rs []plant.Reading
	var skips []skipped
	for _, fld := range f.fields {
		if fld.reason != "" {
			skips = append(skips, skipped{fld.name, fld.reason, fld.why})
			continue
		}
		name := fld.name
		if metric != "" {
			name = metric + "." + name
		}
		if reason, why := checkMetric(name, lim); reason != "" {
			skips = append(skips, skipped{fld.name, reason, why})
			continue
		}
		v, word, reason, why := jsonValue(fld.raw, lim)
		if reason != "" {
			skips = append(skips, skipped{fld.name, reason, why})
			continue
		}
		rs = append(rs, plant.Reading{Path: path, Metric: name, TS: ts, Value: v, Word: word, Topic: m.Topic})
	}
	if len(skips) == 0 {
		if len(rs) == 0 {
			return nil, reject(plant.ReasonEmpty, "The JSON object holds no metrics.")
		}
		return rs, nil
	}
	return rs, reject(skips[0].reason, skippedDetail(skips, len(rs)))
}

// number turns a value into a reading's number (scaled) or word. true and
// false are 1 and 0 and are not scaled: a scale is meant for measurements.
func (c *compiledRule) number(raw any, lim Limits) (float64, string, string, string) {
	switch x := raw.(type) {
	case bool:
		if x {
			return 1, "", "", ""
		}
		return 0, "", "", ""
	case string:
		s := strings.TrimSpace(x)
		if strings.EqualFold(s, "true") || strings.EqualFold(s, "false") {
			return parseBare(s, lim)
		}
		if isDecimal(s) {
			break
		}
		// A quoted JSON string sent as the whole payload is the text inside.
		if len(s) >= 2 && s[0] == '"' {
			var u string
			if json.Unmarshal([]byte(s), &u) == nil {
				return c.number(u, lim)
			}
		}
	}
	v, word, reason, detail := jsonValue(raw, lim)
	if reason != "" || word != "" {
		return v, word, reason, detail
	}
	v = v*c.rule.Scale + c.rule.Offset
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, "", plant.ReasonNotFinite, "The value times the rule's scale is not a finite number."
	}
	return v, "", "", ""
}

// availability reads a payload that says whether the machine is online.
func (c *compiledRule) availability(m Message, path plant.Path, body []byte, doc any, isJSON bool,
	reject func(string, string) *plant.Reject) ([]plant.Reading, *plant.Reject) {
	var word string
	switch {
	case c.value != nil:
		raw, ok := c.value.lookup(doc)
		if !ok {
			return nil, reject(plant.ReasonUnmapped,
				fmt.Sprintf("%s matched the topic, but the payload has nothing at %s.", c.ruleName(), c.rule.Value))
		}
		word = scalarText(raw)
	case isJSON:
		// A JSON string, number or boolean as the whole payload; an object
		// or array is no word.
		word = scalarText(doc)
	default:
		word = string(body)
		// A JSON string that is not valid JSON as a whole was never
		// decoded; one that is was, above. Either way a quoted word
		// counts as the word.
		var u string
		if len(body) > 1 && body[0] == '"' && json.Unmarshal(body, &u) == nil {
			word = u
		}
	}
	switch {
	case strings.EqualFold(strings.TrimSpace(word), strings.TrimSpace(c.rule.OfflineWord())):
		return []plant.Reading{{Path: path, TS: m.RecvMS, Offline: true, Topic: m.Topic}}, nil
	case strings.EqualFold(strings.TrimSpace(word), strings.TrimSpace(c.rule.OnlineWord())):
		// Online says nothing new: the machine's next reading is what
		// ends an offline.
		return nil, nil
	}
	return nil, reject(plant.ReasonUnmapped, fmt.Sprintf("%s expects %q or %q, not %q.",
		c.ruleName(), c.rule.OnlineWord(), c.rule.OfflineWord(), plant.Truncate(strings.ToValidUTF8(word, "?"), 40)))
}

// scalarText is a JSON scalar as text; "" for objects, arrays and null.
func scalarText(raw any) string {
	switch x := raw.(type) {
	case string:
		return x
	case json.Number:
		return string(x)
	case bool:
		return strconv.FormatBool(x)
	}
	return ""
}

// checkMetric checks a metric name made by a rule.
func checkMetric(name string, lim Limits) (string, string) {
	switch {
	case name == "" || !plant.ValidName(name):
		return plant.ReasonNameInvalid, "The metric name is empty, not valid UTF-8 or holds a control character."
	case len(name) > lim.MaxName:
		return plant.ReasonNameInvalid, fmt.Sprintf("The metric name is %d bytes long; at most %d are accepted.", len(name), lim.MaxName)
	}
	return "", ""
}

// decodeAny decodes any JSON value, numbers kept as text (json.Number);
// objects take the default decoder's fast path.
func decodeAny(body []byte) (any, error) {
	if body[0] == '{' {
		return decodeObject(body)
	}
	return decodeValue(body)
}

// jsonPath is a parsed JSON path: keys and array indexes from the root.
type jsonPath []pathStep

type pathStep struct {
	key     string
	index   int
	isIndex bool
}

// parsePath parses "a.b.c", "a[0].b", "$.a", `a["key with.dots"]` or
// "a['key']". "" is no path (nil); "$" alone is refused, since "" already
// means the whole payload.
func parsePath(s string) (jsonPath, error) {
	if s == "" {
		return nil, nil
	}
	var p jsonPath
	i := 0
	if s[0] == '$' {
		i = 1
		if len(s) == 1 {
			return nil, errors.New("$ alone is the whole payload: leave the path empty for that")
		}
		if s[1] != '.' && s[1] != '[' {
			return nil, errors.New("after $ comes '.' or '['")
		}
	}
	for i < len(s) {
		if len(p) == maxPathSteps {
			return nil, fmt.Errorf("more than %d steps", maxPathSteps)
		}
		switch {
		case s[i] == '.':
			if i == 0 {
				return nil, errors.New("a path starts with a name, '$' or '['")
			}
			i++
			fallthrough
		case i == 0 && s[i] != '[':
			j := i
			for j < len(s) && s[j] != '.' && s[j] != '[' && s[j] != ']' {
				j++
			}
			if j == i {
				return nil, fmt.Errorf("a name is missing at byte %d", i+1)
			}
			key := s[i:j]
			if strings.ContainsAny(key, `"'`) || !plant.ValidName(key) {
				return nil, fmt.Errorf("%q: quote a name with quotes or control characters as [\"...\"]", plant.Truncate(key, 40))
			}
			p = append(p, pathStep{key: key})
			i = j
		case s[i] == '[':
			step, n, err := parseBracket(s[i:])
			if err != nil {
				return nil, err
			}
			p = append(p, step)
			i += n
		default:
			return nil, fmt.Errorf("unexpected %q at byte %d: steps are .name, [0] or [\"name\"]", s[i], i+1)
		}
	}
	return p, nil
}

// parseBracket parses one [N], ["key"] or ['key'] at the start of s and
// returns the step and its length.
func parseBracket(s string) (pathStep, int, error) {
	if len(s) < 3 {
		return pathStep{}, 0, errors.New("an unclosed '['")
	}
	switch q := s[1]; q {
	case '"':
		// A JSON string: find its closing quote, skipping escapes.
		j := 2
		for j < len(s) && s[j] != '"' {
			if s[j] == '\\' {
				j++
			}
			j++
		}
		if j+1 >= len(s) || s[j+1] != ']' {
			return pathStep{}, 0, errors.New(`a ["name"] is not closed by "]`)
		}
		var key string
		if err := json.Unmarshal([]byte(s[1:j+1]), &key); err != nil {
			return pathStep{}, 0, fmt.Errorf("%s is not a JSON string", plant.Truncate(s[1:j+1], 40))
		}
		return pathStep{key: key}, j + 2, nil
	case '\'':
		end := strings.Index(s[2:], "']")
		if end < 0 {
			return pathStep{}, 0, errors.New("a ['name'] is not closed by ']")
		}
		return pathStep{key: s[2 : 2+end]}, end + 4, nil
	}
	end := strings.IndexByte(s, ']')
	if end < 0 {
		return pathStep{}, 0, errors.New("an unclosed '['")
	}
	digits := s[1:end]
	n, err := strconv.Atoi(digits)
	if err != nil || n < 0 || n > maxPathIndex || digits != strconv.Itoa(n) {
		return pathStep{}, 0, fmt.Errorf("[%s]: an index is a whole number from 0 to %d, or a quoted name", plant.Truncate(digits, 20), maxPathIndex)
	}
	return pathStep{index: n, isIndex: true}, end + 1, nil
}

// lookup follows the path through a decoded JSON value.
func (p jsonPath) lookup(doc any) (any, bool) {
	cur := doc
	for _, st := range p {
		switch x := cur.(type) {
		case map[string]any:
			if st.isIndex {
				return nil, false
			}
			v, ok := x[st.key]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			if !st.isIndex || st.index >= len(x) {
				return nil, false
			}
			cur = x[st.index]
		default:
			return nil, false
		}
	}
	return cur, true
}

// lastName is the path's last key, "" if it has none.
func (p jsonPath) lastName() string {
	for i := len(p) - 1; i >= 0; i-- {
		if !p[i].isIndex {
			return p[i].key
		}
	}
	return ""
}

// String writes the path back as text that parsePath reads: simple names
// after dots, anything else quoted in brackets.
func (p jsonPath) String() string {
	var b strings.Builder
	for i, st := range p {
		switch {
		case st.isIndex:
			if i == 0 {
				b.WriteByte('$')
			}
			fmt.Fprintf(&b, "[%d]", st.index)
		case simpleKey(st.key):
			if i > 0 {
				b.WriteByte('.')
			}
			b.WriteString(st.key)
		default:
			if i == 0 {
				b.WriteByte('$')
			}
			b.WriteString("[" + jsonQuote(st.key) + "]")
		}
	}
	return b.String()
}

// jsonQuote quotes a key as a JSON string that holds no control character
// as such (a rule's text may not), escaping those as \uXXXX.
func jsonQuote(k string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range k {
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteRune(c)
		case unicode.IsControl(c):
			fmt.Fprintf(&b, `\u%04x`, c)
		case c == utf8.RuneError:
			b.WriteString(`\ufffd`)
		default:
			b.WriteRune(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// simpleKey reports a key that needs no quoting in a path.
func simpleKey(k string) bool {
	if k == "" || k == "$" {
		return false
	}
	for _, c := range k {
		switch {
		case c == '_', c == '-', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		default:
			return false
		}
	}
	return true
}

// --- Suggestions ---

// Levels that look like fixed parts of a topic scheme rather than names of
// things: kept literally in a suggested pattern.
var constantLevels = map[string]bool{
	"factory": true, "plant": true, "site": true, "tele": true, "stat": true, "cmnd": true, "tasmota": true,
	"shellies": true, "homeassistant": true, "umh": true, "spbv1.0": true, "data": true, "telemetry": true,
	"sensor": true, "sensors": true, "state": true, "status": true, "json": true, "device": true,
	"devices": true, "machines": true, "events": true, "metrics": true, "measurements": true,
	"readings": true, "values": true, "lwt": true, "availability": true, "online": true, "_historian": true,
	"iot": true, "mqtt": true, "out": true, "up": true, "raw": true, "zigbee2mqtt": true,
}

// Levels that carry a device's availability.
var availabilityLevels = map[string]bool{"lwt": true, "status": true, "availability": true, "online": true, "connected": true, "state": true}

// Keys whose value is usually a reading's time.
var tsLeafNames = map[string]bool{
	"ts": true, "t": true, "time": true, "timestamp": true, "timestamp_ms": true, "datetime": true,
	"date_time": true, "_timestamp": true, "@timestamp": true, "time_ms": true, "utc": true,
}

// Segment names given to a topic's levels, right to left.
var suggestSegments = []string{segMachine, segLine, segArea, segSite}

// SuggestRule guesses a rule from a sample message, for the admin to check
// and save: the topic's right-most levels become {machine}, {line}, {area}
// and {site}, levels that look fixed ("factory", a leading "tele", "SENSOR")
// stay literal; for a JSON payload the value is its first number (else its
// first true/false or word) and the time a field named like a time; a bare
// "online" or "offline" makes an availability rule.
func SuggestRule(topic string, payload []byte) plant.MappingRule {
	r := plant.MappingRule{Scale: 1, Source: plant.RuleFromAdmin}
	levels := strings.Split(topic, "/")
	body := bytes.TrimSpace(payload)
	bare := len(body) == 0 || (body[0] != '{' && body[0] != '[')
	var word string
	if bare {
		word = string(body)
		var u string
		if len(body) > 1 && body[0] == '"' && json.Unmarshal(body, &u) == nil {
			word = u
		}
		word = strings.TrimSpace(word)
	}
	last := strings.ToLower(levels[len(levels)-1])

	// A device's availability: a bare online/offline, or true/false on a
	// level named like availability (Shelly's ".../online").
	switch {
	case bare && (strings.EqualFold(word, plant.DefaultOnlineWord) || strings.EqualFold(word, plant.DefaultOfflineWord)):
		r.Availability = true
	case bare && len(levels) > 1 && availabilityLevels[last] && (strings.EqualFold(word, "true") || strings.EqualFold(word, "false")):
		r.Availability = true
		r.Online, r.Offline = "true", "false"
	}
	if r.Availability {
		if len(levels) > 1 {
			r.Pattern = suggestPattern(levels[:len(levels)-1]) + "/" + escapeLiteral(levels[len(levels)-1])
		} else {
			r.Pattern = "{machine}"
		}
		r.Note = "The device says whether it is online."
		return r
	}

	if bare {
		// A single value: the last level names the metric.
		if len(levels) > 1 {
			r.Pattern = suggestPattern(levels[:len(levels)-1]) + "/{metric}"
		} else {
			r.Pattern = "{machine}"
			r.Metric = "value"
		}
		return r
	}

	leaves := jsonLeaves(body)
	var value, tsLeaf *leaf
	for i := range leaves {
		l := &leaves[i]
		if tsLeaf == nil && tsLeafNames[strings.ToLower(l.path.lastName())] {
			if _, ok := parseTS(l.raw); ok {
				tsLeaf = l
				continue
			}
		}
	}
	// The value: the first number, else the first true/false, else the
	// first word, leaving out the time.
	for _, want := range []func(any) bool{
		func(v any) bool {
			switch x := v.(type) {
			case json.Number:
				return true
			case string:
				return isDecimal(strings.TrimSpace(x))
			}
			return false
		},
		func(v any) bool { _, ok := v.(bool); return ok },
		func(v any) bool { s, ok := v.(string); return ok && isWord(s, DefaultLimits().MaxWordLen) },
	} {
		for i := range leaves {
			if &leaves[i] != tsLeaf && want(leaves[i].raw) && len(leaves[i].path.String()) <= plant.MaxRulePath {
				value = &leaves[i]
				break
			}
		}
		if value != nil {
			break
		}
	}
	if tsLeaf != nil {
		r.Timestamp = tsLeaf.path.String()
	}
	if value == nil {
		r.Pattern = suggestPattern(levels)
		return r
	}
	r.Value = value.path.String()
	if !value.path[0].isIndex && value.path[0].key == "value" && len(levels) > 1 {
		// The default single-value shape: the topic's last level is the metric.
		r.Pattern = suggestPattern(levels[:len(levels)-1]) + "/{metric}"
	} else {
		r.Pattern = suggestPattern(levels)
		if name := value.path.lastName(); name != "" && len(name) <= plant.MaxRuleMetric && plant.ValidName(name) {
			r.Metric = escapeLiteral(name)
		} else {
			r.Metric = "value"
		}
	}
	if obj, ok := mustObject(body); ok {
		if u, ok := obj["unit"].(string); ok && len(u) <= plant.MaxRuleUnit && plant.ValidName(u) {
			r.Unit = u
		}
	}
	return r
}

// suggestPattern names the levels that name the machine, right to left,
// keeping levels that look fixed, and everything left of the site, literal.
func suggestPattern(levels []string) string {
	out := make([]string, len(levels))
	next := 0
	for i := len(levels) - 1; i >= 0; i-- {
		l := levels[i]
		switch {
		case next < len(suggestSegments) && !looksConstant(l, i):
			out[i] = "{" + suggestSegments[next] + "}"
			next++
		default:
			out[i] = escapeLiteral(l)
		}
	}
	if next == 0 {
		// Every level looked fixed; the machine is still one of them: the last.
		out[len(out)-1] = "{machine}"
	}
	return strings.Join(out, "/")
}

// looksConstant reports a level that is probably the same for every device:
// a known scheme word, a version ("v1"), or an all-capitals word such as
// Tasmota's SENSOR and STATE.
func looksConstant(l string, i int) bool {
	low := strings.ToLower(l)
	if constantLevels[low] {
		return true
	}
	if len(low) >= 2 && low[0] == 'v' && isDigits(low[1:]) {
		return true
	}
	upper := len(l) >= 3
	for _, c := range l {
		if c < 'A' || c > 'Z' {
			upper = false
			break
		}
	}
	return upper && i > 0
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// escapeLiteral doubles braces, so that literal text in a pattern or metric
// template is not read as a segment.
func escapeLiteral(s string) string {
	return strings.NewReplacer("{", "{{", "}", "}}").Replace(s)
}

// mustObject decodes body as a JSON object, if it is one.
func mustObject(body []byte) (map[string]any, bool) {
	if len(body) == 0 || body[0] != '{' {
		return nil, false
	}
	obj, err := decodeObject(body)
	return obj, err == nil
}

// leaf is one scalar of a JSON document and the path to it.
type leaf struct {
	path jsonPath
	raw  any
}

// jsonLeaves lists a JSON document's scalars in the order they are written
// (a map would lose it, and "the first number" means the first one a person
// reads), up to maxSuggestLeaves. A document that is not valid JSON gives
// what was read before the error.
func jsonLeaves(body []byte) []leaf {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var out []leaf
	// stack holds, per open container, the path to it, whether it is an
	// array, and the next index or the pending key.
	type frame struct {
		path    jsonPath
		isArray bool
		index   int
		key     string
		haveKey bool
	}
	var stack []frame
	child := func() (jsonPath, bool) {
		if len(stack) == 0 {
			return nil, true
		}
		f := &stack[len(stack)-1]
		p := append(jsonPath(nil), f.path...)
		if f.isArray {
			p = append(p, pathStep{index: f.index, isIndex: true})
			f.index++
		} else {
			if !f.haveKey {
				return nil, false
			}
			p = append(p, pathStep{key: f.key})
			f.haveKey = false
		}
		return p, len(p) <= maxPathSteps
	}
	for len(out) < maxSuggestLeaves {
		tok, err := dec.Token()
		if err != nil {
			return out
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				p, _ := child()
				stack = append(stack, frame{path: p, isArray: t == '['})
			default:
				if len(stack) > 0 {
					stack = stack[:len(stack)-1]
				}
			}
		default:
			if len(stack) > 0 && !stack[len(stack)-1].isArray && !stack[len(stack)-1].haveKey {
				if k, ok := t.(string); ok {
					stack[len(stack)-1].key, stack[len(stack)-1].haveKey = k, true
					continue
				}
			}
			if p, ok := child(); ok && len(p) > 0 {
				out = append(out, leaf{path: p, raw: t})
			}
		}
	}
	return out
}
