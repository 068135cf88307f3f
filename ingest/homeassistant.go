package ingest

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"andon/plant"
)

// haPrefix is Home Assistant's default discovery prefix.
const haPrefix = "homeassistant"

// haStatusTopic is where Home Assistant's birth message says it is online;
// devices then publish their discovery configs again.
const haStatusTopic = haPrefix + "/status"

// haAbbrev expands the abbreviations Home Assistant allows in discovery
// payloads (those Andon reads).
var haAbbrev = map[string]string{
	"stat_t": "state_topic", "unit_of_meas": "unit_of_measurement", "val_tpl": "value_template",
	"dev": "device", "avty_t": "availability_topic", "avty": "availability", "pl_avail": "payload_available",
	"pl_not_avail": "payload_not_available", "pl_on": "payload_on", "pl_off": "payload_off",
	"dev_cla": "device_class", "uniq_id": "unique_id", "obj_id": "object_id", "t": "topic",
	"ids": "identifiers", "sa": "suggested_area", "mf": "manufacturer", "mdl": "model",
}

// haComponents are the components whose state is a reading.
var haComponents = map[string]bool{"sensor": true, "binary_sensor": true, "switch": true, "number": true, "light": true}

// haEntity is one discovered entity: where its state arrives and how a
// state becomes a reading.
type haEntity struct {
	config    string // its config topic, the key
	component string
	state     string // the state topic
	path      plant.Path
	metric    string
	unit      string
	tmpl      haTemplate
	on, off   string
	avail     []haAvail
}

// haAvail is an availability topic with its two words.
type haAvail struct{ topic, online, offline string }

// homeAssistant follows Home Assistant MQTT discovery: retained config
// messages describe entities, and their state topics then give readings
// with the entity's name and unit on the device's machine. Safe for
// concurrent use; at most max entities are held.
type homeAssistant struct {
	prefix string
	max    int

	entities atomic.Int64 // len(byConfig), read without the lock
	mu       sync.RWMutex
	byConfig map[string]*haEntity
	byState  map[string][]*haEntity
	byAvail  map[string][]*haEntity
}

func newHomeAssistant(maxEntities int) *homeAssistant {
	return &homeAssistant{prefix: haPrefix, max: maxEntities,
		byConfig: map[string]*haEntity{}, byState: map[string][]*haEntity{}, byAvail: map[string][]*haEntity{}}
}

// decode reads config messages, and the state and availability topics
// they named. ok is false for any other topic.
func (h *homeAssistant) decode(m Message, lim Limits) ([]plant.Reading, *plant.Reject, bool) {
	if component, node, object, ok := h.configTopic(m.Topic); ok {
		return nil, h.configure(m, component, node, object, lim), true
	}
	if h.entities.Load() == 0 {
		return nil, nil, false // the rule: no Home Assistant devices at all
	}
	h.mu.RLock()
	states, avails := h.byState[m.Topic], h.byAvail[m.Topic]
	h.mu.RUnlock()
	switch {
	case len(states) > 0:
		rs, rej := haStates(m, states, lim)
		return rs, rej, true
	case len(avails) > 0:
		return haAvailability(m, avails), nil, true
	}
	return nil, nil, false
}

// configTopic splits <prefix>/<component>/[<node_id>/]<object_id>/config.
func (h *homeAssistant) configTopic(topic string) (component, node, object string, ok bool) {
	// Every message passes here: the cheap checks first.
	if !strings.HasPrefix(topic, h.prefix+"/") || !strings.HasSuffix(topic, "/config") {
		return "", "", "", false
	}
	levels := strings.Split(topic, "/")
	n := len(levels)
	if (n != 4 && n != 5) || levels[0] != h.prefix || levels[n-1] != "config" {
		return "", "", "", false
	}
	if n == 5 {
		node = levels[2]
	}
	return levels[1], node, levels[n-2], true
}

// configure adds, replaces or (with an empty payload) removes an entity.
func (h *homeAssistant) configure(m Message, component, node, object string, lim Limits) *plant.Reject {
	body := bytes.TrimSpace(m.Payload)
	if len(body) == 0 {
		h.mu.Lock()
		h.remove(m.Topic)
		h.mu.Unlock()
		return nil
	}
	if !haComponents[component] {
		return nil // a button, a camera...: nothing to chart
	}
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		return rejectOf(m, plant.ReasonBadJSON, "A Home Assistant discovery config is a JSON object; this one is not: "+err.Error()+".")
	}
	cfg := haExpand(raw)
	e, why := haEntityOf(m.Topic, component, node, object, cfg, lim)
	if why != "" {
		return rejectOf(m, plant.ReasonNameInvalid, "Home Assistant discovery config not used: "+why)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, known := h.byConfig[m.Topic]; !known && len(h.byConfig) >= h.max {
		return rejectOf(m, plant.ReasonTagLimit,
			fmt.Sprintf("Andon follows at most %d Home Assistant entities; this one is not followed.", h.max))
	}
	h.remove(m.Topic)
	h.byConfig[m.Topic] = e
	h.entities.Store(int64(len(h.byConfig)))
	h.byState[e.state] = append(h.byState[e.state], e)
	for _, a := range e.avail {
		h.byAvail[a.topic] = append(h.byAvail[a.topic], e)
	}
	return nil
}

// remove forgets the entity of a config topic; h.mu is held.
func (h *homeAssistant) remove(config string) {
	e := h.byConfig[config]
	if e == nil {
		return
	}
	delete(h.byConfig, config)
	h.entities.Store(int64(len(h.byConfig)))
	drop := func(idx map[string][]*haEntity, topic string) {
		list := idx[topic][:0]
		for _, x := range idx[topic] {
			if x != e {
				list = append(list, x)
			}
		}
		if len(list) == 0 {
			delete(idx, topic)
		} else {
			idx[topic] = list
		}
	}
	drop(h.byState, e.state)
	for _, a := range e.avail {
		drop(h.byAvail, a.topic)
	}
}

// haExpand expands abbreviated keys, in the config and its device, and
// the "~" base topic in topic values.
func haExpand(raw map[string]any) map[string]any {
	cfg := make(map[string]any, len(raw))
	for k, v := range raw {
		if full, ok := haAbbrev[k]; ok {
			k = full
		}
		cfg[k] = v
	}
	if dev, ok := cfg["device"].(map[string]any); ok {
		cfg["device"] = haExpand(dev)
	}
	base, _ := cfg["~"].(string)
	if base == "" {
		return cfg
	}
	tilde := func(s string) string {
		switch {
		case strings.HasPrefix(s, "~"):
			return base + s[1:]
		case strings.HasSuffix(s, "~"):
			return s[:len(s)-1] + base
		}
		return s
	}
	for k, v := range cfg {
		if s, ok := v.(string); ok && strings.HasSuffix(k, "_topic") {
			cfg[k] = tilde(s)
		}
	}
	if list, ok := cfg["availability"].([]any); ok {
		for _, a := range list {
			if am, ok := a.(map[string]any); ok {
				for k, v := range am {
					if s, ok := v.(string); ok && (k == "topic" || k == "t") {
						am[k] = tilde(s)
					}
				}
			}
		}
	}
	return cfg
}

// haEntityOf builds an entity from an expanded config, or says why not.
func haEntityOf(config, component, node, object string, cfg map[string]any, lim Limits) (*haEntity, string) {
	str := func(m map[string]any, k string) string { s, _ := m[k].(string); return s }
	e := &haEntity{config: config, component: component, state: str(cfg, "state_topic"),
		on: "ON", off: "OFF"}
	if e.state == "" {
		return nil, "it names no state_topic."
	}
	if !validTopic(e.state, lim) {
		return nil, "its state_topic is not a valid MQTT topic."
	}
	dev, _ := cfg["device"].(map[string]any)
	machine := cleanName(str(dev, "name"), lim)
	if machine == "" {
		machine = cleanName(node, lim)
	}
	if machine == "" {
		machine = cleanName(object, lim)
	}
	if machine == "" {
		return nil, "neither its device, node id nor object id gives a usable machine name."
	}
	e.path = plant.Path{Line: cleanName(str(dev, "suggested_area"), lim), Machine: machine}
	// A null name is the device's main entity (has_entity_name).
	e.metric = cleanName(str(cfg, "name"), lim)
	if e.metric == "" {
		e.metric = cleanName(str(cfg, "device_class"), lim)
	}
	if e.metric == "" {
		e.metric = cleanName(cmp.Or(str(cfg, "object_id"), object), lim)
	}
	if e.metric == "" {
		return nil, "it gives no usable entity name."
	}
	if u := str(cfg, "unit_of_measurement"); len(u) <= maxUnitLen && plant.ValidName(u) {
		e.unit = u
	}
	e.tmpl = parseHATemplate(str(cfg, "value_template"))
	if s := str(cfg, "payload_on"); s != "" {
		e.on = s
	}
	if s := str(cfg, "payload_off"); s != "" {
		e.off = s
	}
	online, offline := cmp.Or(str(cfg, "payload_available"), "online"), cmp.Or(str(cfg, "payload_not_available"), "offline")
	if t := str(cfg, "availability_topic"); t != "" && validTopic(t, lim) {
		e.avail = append(e.avail, haAvail{t, online, offline})
	}
	if list, ok := cfg["availability"].([]any); ok {
		for _, a := range list {
			am, _ := a.(map[string]any)
			am = haExpand(am)
			t := str(am, "topic")
			if t == "" || !validTopic(t, lim) || len(e.avail) >= 8 {
				continue
			}
			e.avail = append(e.avail, haAvail{t, cmp.Or(str(am, "payload_available"), online), cmp.Or(str(am, "payload_not_available"), offline)})
		}
	}
	return e, ""
}

// cleanName makes a device's or entity's name usable as a machine or
// metric name: trimmed, no '/', no control characters, bounded.
func cleanName(s string, lim Limits) string {
	s = strings.TrimSpace(strings.ReplaceAll(s, "/", "-"))
	if !plant.ValidName(s) {
		return ""
	}
	return strings.TrimSpace(truncateBytes(s, lim.MaxName))
}

// truncateBytes shortens s to at most n bytes without splitting a character.
func truncateBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	t := plant.Truncate(s, n)
	return strings.TrimSuffix(t, "…")
}

// validTopic reports a topic fit to be matched: bounded, UTF-8, no
// wildcard or control character.
func validTopic(t string, lim Limits) bool {
	reason, _ := topicProblem(t, lim)
	return reason == ""
}

// haStates turns a state message into one reading per entity reading it.
func haStates(m Message, es []*haEntity, lim Limits) ([]plant.Reading, *plant.Reject) {
	body := bytes.TrimSpace(m.Payload)
	var obj map[string]any
	var objErr error
	needJSON := false
	for _, e := range es {
		needJSON = needJSON || e.tmpl.json
	}
	if needJSON {
		obj, objErr = decodeJSON(body)
	}
	ts, arrival := m.RecvMS, true
	if obj != nil {
		t, stated, reason, detail := timestampOf(obj, m.RecvMS, lim)
		if reason != "" {
			return nil, rejectOf(m, reason, detail)
		}
		ts, arrival = t, !stated
	}
	var rs []plant.Reading
	var problems []string
	var reason string // the first value's own reason; a template's is not_a_number
	for _, e := range es {
		if e.tmpl.unsupported != "" {
			problems = append(problems, fmt.Sprintf("%q: the value_template %q is not one Andon reads (it reads {{ value }} and {{ value_json.a.b }} with | float, | int or | round(n))", e.metric, plant.Truncate(e.tmpl.unsupported, 80)))
			continue
		}
		var raw any = string(body)
		if e.component == "light" && e.tmpl.path == nil && len(body) > 0 && body[0] == '{' {
			// A light of the JSON schema sends {"state": "ON", "brightness": ..}
			// on its state topic; Andon keeps the state only.
			if obj == nil && objErr == nil {
				obj, objErr = decodeJSON(body)
			}
			if s, ok := obj["state"].(string); ok {
				raw = s
			}
		}
		if e.tmpl.json {
			if objErr != nil {
				problems = append(problems, fmt.Sprintf("%q: the payload is not the JSON object its template reads", e.metric))
				continue
			}
			v, ok := e.tmpl.path.lookup(obj)
			if !ok {
				continue // zigbee2mqtt and others send partial objects
			}
			raw = v
		}
		v, word, skip, valueReason, why := e.value(raw, lim)
		switch {
		case skip:
			continue
		case valueReason != "":
			problems = append(problems, fmt.Sprintf("%q: %s", e.metric, strings.TrimSuffix(why, ".")))
			reason = cmp.Or(reason, valueReason)
			continue
		}
		rs = append(rs, plant.Reading{Path: e.path, Metric: e.metric, TS: ts, Arrival: arrival, Value: v, Word: word, Unit: e.unit, Topic: m.Topic})
	}
	if len(problems) > 0 {
		return rs, rejectOf(m, cmp.Or(reason, plant.ReasonNotANumber), plant.Truncate(strings.Join(problems, "; "), 1000)+".")
	}
	return rs, nil
}

// value turns an entity's state into a value or a word; skip says the
// state means "no value now" (unavailable, unknown, empty), and reason and
// why what is wrong with a state that is none of these.
func (e *haEntity) value(raw any, lim Limits) (v float64, word string, skip bool, reason, why string) {
	if s, ok := raw.(string); ok {
		s = strings.TrimSpace(s)
		switch strings.ToLower(s) {
		case "", "unavailable", "unknown", "none", "null":
			return 0, "", true, "", ""
		}
		if e.component != "sensor" && e.component != "number" {
			switch s {
			case e.on:
				return 1, "", false, "", ""
			case e.off:
				return 0, "", false, "", ""
			}
		}
	}
	if raw == nil {
		return 0, "", true, "", ""
	}
	v, word, reason, why = jsonValue(raw, lim)
	if reason != "" {
		return 0, "", false, reason, why
	}
	if word == "" {
		v = e.tmpl.apply(v)
	}
	return v, word, false, "", ""
}

// haAvailability turns an availability message into announcements for the
// machines whose entities it covers.
func haAvailability(m Message, es []*haEntity) []plant.Reading {
	word := string(bytes.TrimSpace(m.Payload))
	if strings.HasPrefix(word, "{") {
		// zigbee2mqtt's bridge says {"state": "offline"}.
		var obj map[string]any
		if json.Unmarshal(m.Payload, &obj) == nil {
			for _, k := range []string{"state", "status", "value"} {
				if w, ok := obj[k].(string); ok {
					word = w
					break
				}
			}
		}
	}
	var rs []plant.Reading
	seen := map[plant.Path]bool{}
	for _, e := range es {
		for _, a := range e.avail {
			if a.topic != m.Topic || word != a.offline || seen[e.path] {
				continue
			}
			seen[e.path] = true
			rs = append(rs, plant.Reading{Path: e.path, TS: m.RecvMS, Offline: true, Topic: m.Topic})
		}
	}
	return rs
}

// haTemplate is the little of Jinja Andon reads from a value_template.
type haTemplate struct {
	json        bool     // reads value_json, else the payload itself
	path        jsonPath // into value_json
	op          string   // "", "int" or "round"
	digits      int      // for round
	unsupported string   // the template, when Andon cannot read it
}

// parseHATemplate reads {{ value }}, {{ value_json.a.b }},
// {{ value_json['a'][0] }}, each with optional | float, | int, | round(n)
// filters. Anything else is kept as unsupported: no template language is
// evaluated.
func parseHATemplate(s string) haTemplate {
	src := strings.TrimSpace(s)
	if src == "" {
		return haTemplate{}
	}
	bad := haTemplate{unsupported: src}
	if !strings.HasPrefix(src, "{{") || !strings.HasSuffix(src, "}}") || len(src) > 200 {
		return bad
	}
	parts := strings.Split(strings.TrimSpace(src[2:len(src)-2]), "|")
	var t haTemplate
	expr := strings.TrimSpace(parts[0])
	switch {
	case expr == "value":
	case strings.HasPrefix(expr, "value_json"):
		t.json = true
		rest := expr[len("value_json"):]
		if rest == "" || !plainDots(rest) {
			return bad
		}
		path, err := parsePath("$" + rest)
		if err != nil || len(path) > maxTemplateSteps {
			return bad
		}
		t.path = path
	default:
		return bad
	}
	for _, f := range parts[1:] {
		f = strings.ReplaceAll(strings.TrimSpace(f), " ", "")
		switch {
		case f == "float" || strings.HasPrefix(f, "float("):
		case f == "int" || strings.HasPrefix(f, "int("):
			t.op = "int"
		case f == "round":
			t.op, t.digits = "round", 0
		case strings.HasPrefix(f, "round(") && strings.HasSuffix(f, ")"):
			n, err := strconv.Atoi(strings.Split(f[len("round("):len(f)-1], ",")[0])
			if err != nil || n < 0 || n > 10 {
				return bad
			}
			t.op, t.digits = "round", n
		default:
			return bad
		}
	}
	return t
}

// maxTemplateSteps bounds a template's path: real ones have two or three.
const maxTemplateSteps = 16

// plainDots reports whether the names written after dots are plain
// identifiers: Jinja reads value_json.t * 10 as arithmetic, not as the
// key "t * 10". Bracketed keys may hold anything; parsePath reads them.
func plainDots(s string) bool {
	inBracket := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '[':
			inBracket = true
		case c == ']':
			inBracket = false
		case inBracket || c == '.' || isIdentByte(c):
		default:
			return false
		}
	}
	return true
}

// apply runs the template's filter on a number.
func (t haTemplate) apply(v float64) float64 {
	switch t.op {
	case "int":
		return math.Trunc(v)
	case "round":
		p := math.Pow(10, float64(t.digits))
		return math.Round(v*p) / p
	}
	return v
}

func isIdentByte(c byte) bool {
	return c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
