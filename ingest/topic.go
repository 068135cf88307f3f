package ingest

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"andon/plant"
)

// historianLevel is the trailing level UMH puts on a machine's own topic for
// multi-metric payloads; it names no part of the plant, so it is dropped.
const historianLevel = "_historian"

// splitTopic checks a topic and returns its levels. Device topics are
// untrusted: the checks here keep wildcards, control characters and overlong
// names out of the asset tree.
func splitTopic(topic string, lim Limits) ([]string, string, string) {
	if reason, detail := topicProblem(topic, lim); reason != "" {
		return nil, reason, detail
	}
	return splitLevels(topic, lim)
}

// topicProblem checks a whole topic: its length, UTF-8, no wildcard and no
// control character. It returns a reject reason and detail, or "".
func topicProblem(topic string, lim Limits) (string, string) {
	if len(topic) > lim.MaxTopic {
		return plant.ReasonTopicTooLong,
			fmt.Sprintf("The topic is %d bytes long; at most %d are accepted.", len(topic), lim.MaxTopic)
	}
	if topic == "" {
		return plant.ReasonTopicInvalid, "The topic is empty."
	}
	if !utf8.ValidString(topic) {
		return plant.ReasonTopicInvalid, "The topic is not valid UTF-8."
	}
	for _, r := range topic {
		switch {
		case r == '+' || r == '#':
			// MQTT-4.7.1-1: wildcards belong in filters, never in a topic name.
			return plant.ReasonTopicInvalid, "The topic contains an MQTT wildcard (+ or #)."
		case unicode.IsControl(r):
			return plant.ReasonTopicInvalid, "The topic contains a control character."
		}
	}
	return "", ""
}

// splitLevels returns the levels of a topic topicProblem passed, checking
// each: none empty, none longer than a name may be.
func splitLevels(topic string, lim Limits) ([]string, string, string) {
	levels := strings.Split(topic, "/")
	for _, l := range levels {
		if l == "" {
			return nil, plant.ReasonTopicInvalid, "The topic has an empty level (a leading, trailing or double slash)."
		}
		if len(l) > lim.MaxName {
			return nil, plant.ReasonNameInvalid,
				fmt.Sprintf("A topic level is %d bytes long; at most %d are accepted.", len(l), lim.MaxName)
		}
	}
	return levels, "", ""
}

// pathOf maps topic levels that all name the machine onto the asset tree,
// right-aligned: the last level is the machine, then line, area and site.
// Levels beyond four are joined into the site, so that prefixes such as UMH's
// "factory/plant-2/<site>" stay together instead of being lost.
func pathOf(levels []string) plant.Path {
	var p plant.Path
	n := len(levels)
	if n == 0 {
		return p
	}
	p.Machine = levels[n-1]
	if n >= 2 {
		p.Line = levels[n-2]
	}
	if n >= 3 {
		p.Area = levels[n-3]
	}
	if n >= 4 {
		// Joined with dots: a '/' inside one level would make two paths
		// share a string, and the store refuses it.
		p.Site = strings.Join(levels[:n-3], ".")
	}
	return p
}

// singlePath maps the topic of a single value: the last level is the metric
// and the levels before it name the machine.
func singlePath(levels []string) (plant.Path, string, bool) {
	if len(levels) < 2 {
		return plant.Path{}, "", false
	}
	return pathOf(levels[:len(levels)-1]), levels[len(levels)-1], true
}

// machinePath maps the topic of a multi-metric payload, where every level
// names the machine, after dropping a trailing UMH "_historian" level.
func machinePath(levels []string) (plant.Path, bool) {
	if n := len(levels); n > 0 && levels[n-1] == historianLevel {
		levels = levels[:n-1]
	}
	if len(levels) == 0 {
		return plant.Path{}, false
	}
	return pathOf(levels), true
}
