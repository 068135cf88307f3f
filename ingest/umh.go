package ingest

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"andon/plant"
)

// United Manufacturing Hub topics. Classic UMH (v0.x data bridges) puts an
// ISA-95 location in MQTT levels and a schema level after it; UMH Core
// publishes one dotted level with a data contract and a tag name.
const (
	umhClassicPrefix = "umh/v1/"
	umhCorePrefix    = "umh.v1."
	umhHistorian     = "_historian"
)

// decodeUMH reads UMH classic historian messages
// (umh/v1/<enterprise>/<site>/<area>/<line>/<workcell>/_historian[/<tag group>…])
// and UMH Core messages (umh.v1.<location path>._<contract>.<tag>). ok is
// false for other topics, and for classic topics without a schema level,
// which the default layout reads.
func decodeUMH(m Message, lim Limits) ([]plant.Reading, *plant.Reject, bool) {
	switch {
	case strings.HasPrefix(m.Topic, umhClassicPrefix):
		return decodeUMHClassic(m, lim)
	case strings.HasPrefix(m.Topic, umhCorePrefix):
		rs, rej := decodeUMHCore(m, lim)
		return rs, rej, true
	}
	return nil, nil, false
}

func decodeUMHClassic(m Message, lim Limits) ([]plant.Reading, *plant.Reject, bool) {
	levels := strings.Split(strings.TrimPrefix(m.Topic, umhClassicPrefix), "/")
	schema := -1
	for i, l := range levels {
		if strings.HasPrefix(l, "_") {
			schema = i
			break
		}
	}
	if schema < 0 {
		return nil, nil, false
	}
	if levels[schema] != umhHistorian {
		return nil, rejectOf(m, plant.ReasonTopicInvalid,
			fmt.Sprintf("UMH schema %q is not historian data; only %s messages become readings.", plant.Truncate(levels[schema], 64), umhHistorian)), true
	}
	path, rej := umhPath(m, levels[:schema], lim)
	if rej != nil {
		return nil, rej, true
	}
	for _, l := range levels[schema+1:] {
		if l == "" || !plant.ValidName(l) {
			return nil, rejectOf(m, plant.ReasonTopicInvalid, "A tag group level after _historian is empty or holds a control character."), true
		}
	}
	rs, rej := umhPayload(m, path, strings.Join(levels[schema+1:], "."), lim)
	return rs, rej, true
}

func decodeUMHCore(m Message, lim Limits) ([]plant.Reading, *plant.Reject) {
	rest := strings.TrimPrefix(m.Topic, umhCorePrefix)
	loc, contractTag, found := strings.Cut(rest, "._")
	if !found || loc == "" {
		return nil, rejectOf(m, plant.ReasonTopicInvalid,
			"A UMH Core topic reads umh.v1.<location path>._<contract>.<tag>; this one has no ._<contract> part.")
	}
	contract, tag, _ := strings.Cut(contractTag, ".")
	if contract == "" {
		return nil, rejectOf(m, plant.ReasonTopicInvalid, "The UMH Core topic's data contract is empty.")
	}
	if tag != "" && (strings.HasPrefix(tag, ".") || strings.HasSuffix(tag, ".") || strings.Contains(tag, "..")) {
		return nil, rejectOf(m, plant.ReasonTopicInvalid, "The UMH Core tag name has an empty part (a leading, trailing or double dot).")
	}
	path, rej := umhPath(m, strings.Split(loc, "."), lim)
	if rej != nil {
		return nil, rej
	}
	return umhPayload(m, path, tag, lim)
}

// umhPath maps an ISA-95 location (enterprise, site, area, line, work
// cell, and deeper levels such as an origin id) onto the asset tree: the
// site, area and line by name, and the work cell as the machine. With fewer
// levels the deepest one is the machine; deeper levels than the work cell
// are part of no machine's name and are dropped.
func umhPath(m Message, loc []string, lim Limits) (plant.Path, *plant.Reject) {
	if len(loc) == 0 {
		return plant.Path{}, rejectOf(m, plant.ReasonTopicTooShort, "The UMH topic names no location (enterprise, site, ...) before its schema.")
	}
	for _, l := range loc {
		switch {
		case l == "":
			return plant.Path{}, rejectOf(m, plant.ReasonTopicInvalid, "The topic's location has an empty level.")
		case len(l) > lim.MaxName:
			return plant.Path{}, rejectOf(m, plant.ReasonNameInvalid,
				fmt.Sprintf("A location level is %d bytes long; at most %d are accepted.", len(l), lim.MaxName))
		case !plant.ValidName(l) || strings.Contains(l, "/"):
			return plant.Path{}, rejectOf(m, plant.ReasonNameInvalid, "A location level holds a control character or a '/'.")
		}
	}
	if len(loc) == 1 {
		return plant.Path{Machine: loc[0]}, nil
	}
	named := loc[1:min(len(loc), 5)] // site, area, line, work cell
	var p plant.Path
	fields := []*string{&p.Site, &p.Area, &p.Line}
	for i, l := range named[:len(named)-1] {
		*fields[i] = l
	}
	p.Machine = named[len(named)-1]
	return p, nil
}

// umhPayload reads a UMH JSON payload: {"timestamp_ms": .., "value": ..}
// is one value named by the tag, any other object a metric per field,
// nested objects flattened with dots and prefixed by the tag path.
func umhPayload(m Message, path plant.Path, tag string, lim Limits) ([]plant.Reading, *plant.Reject) {
	body := bytes.TrimSpace(m.Payload)
	if len(body) == 0 || body[0] != '{' {
		return nil, rejectOf(m, plant.ReasonBadJSON, `A UMH payload is a JSON object such as {"timestamp_ms": 1732450000123, "temperature": 23.5}.`)
	}
	obj, err := decodeObject(body)
	if err != nil {
		return nil, rejectOf(m, plant.ReasonBadJSON, "The payload is not valid JSON: "+err.Error()+".")
	}
	ts, stated, reason, detail := timestampOf(obj, m.RecvMS, lim)
	if reason != "" {
		return nil, rejectOf(m, reason, detail)
	}
	reject := func(reason, detail string) *plant.Reject { return rejectOf(m, reason, detail) }
	var rs []plant.Reading
	var rej *plant.Reject
	if raw, ok := obj["value"]; ok && tag != "" && onlyValue(obj) {
		if len(tag) > lim.MaxName || !plant.ValidName(tag) {
			return nil, reject(plant.ReasonNameInvalid, "The tag name is too long or holds a control character.")
		}
		v, word, reason, detail := jsonValue(raw, lim)
		if reason != "" {
			return nil, reject(reason, detail)
		}
		rs = []plant.Reading{{Path: path, Metric: tag, TS: ts, Value: v, Word: word, Topic: m.Topic}}
	} else {
		rs, rej = flatReadings(m.Topic, path, tag, obj, ts, lim, reject)
	}
	if !stated {
		for i := range rs {
			rs[i].Arrival = true
		}
	}
	return rs, rej
}

// onlyValue reports whether obj is {"value": ..} with at most timestamp
// keys beside it: UMH's single-tag shape. {"value": 1, "quality": 2} is
// two fields of a tag group, not one value.
func onlyValue(obj map[string]any) bool {
	for k := range obj {
		if k != "value" && !slices.Contains(tsKeys, k) {
			return false
		}
	}
	return true
}
