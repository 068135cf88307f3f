package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"

	"andon/ingest"
	"andon/plant"
)

// mappingYAML is one rule of the config file's `mapping:` list:
//
//	mapping:
//	  - pattern: "tele/{machine}/SENSOR"
//	    value: ENERGY.Power
//	    timestamp: Time
//	    unit: W
//	  - pattern: "tele/{machine}/LWT"
//	    availability: true
//	    online: Online
//	    offline: Offline
//
// The keys are the names the admin form and the errors use.
type mappingYAML struct {
	Pattern      string   `yaml:"pattern"`
	Value        string   `yaml:"value"`
	Timestamp    string   `yaml:"timestamp"`
	Metric       string   `yaml:"metric"`
	Unit         string   `yaml:"unit"`
	Scale        *float64 `yaml:"scale"` // absent: 1
	Offset       float64  `yaml:"offset"`
	Availability bool     `yaml:"availability"`
	Online       string   `yaml:"online"`
	Offline      string   `yaml:"offline"`
	Note         string   `yaml:"note"`
}

// rule is the YAML rule as the store and ingest take it.
func (m mappingYAML) rule() plant.MappingRule {
	r := plant.MappingRule{
		Pattern: strings.TrimSpace(m.Pattern), Value: strings.TrimSpace(m.Value),
		Timestamp: strings.TrimSpace(m.Timestamp), Metric: strings.TrimSpace(m.Metric),
		Unit: strings.TrimSpace(m.Unit), Scale: 1, Offset: m.Offset, Availability: m.Availability,
		Online: strings.TrimSpace(m.Online), Offline: strings.TrimSpace(m.Offline),
		Note: strings.TrimSpace(m.Note), Source: plant.RuleFromConfig,
	}
	if m.Scale != nil {
		r.Scale = *m.Scale
	}
	return r
}

// readMappingSection reads the `mapping:` list of the config file, strictly
// (a misspelt key is an error naming it), and compiles every rule as ingest
// will, so a wrong rule stops the start with a message that names the rule
// (its place in the list, its line and its pattern) and the key that is
// wrong. No file, or no `mapping:`, is no rules.
func readMappingSection(path string) ([]plant.MappingRule, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var doc struct {
		Mapping []mappingYAML  `yaml:"mapping"`
		Rest    map[string]any `yaml:",inline"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) { // io.EOF: an empty file
		return nil, fmt.Errorf("config %s: mapping: %w", path, err)
	}
	lines := mappingLines(b)
	var errs []error
	rules := make([]plant.MappingRule, 0, len(doc.Mapping))
	for i, m := range doc.Mapping {
		r := m.rule()
		if _, err := ingest.CompileRules([]plant.MappingRule{r}); err != nil {
			where := fmt.Sprintf("mapping[%d]", i)
			if i < len(lines) {
				where = fmt.Sprintf("line %d: %s", lines[i], where)
			}
			var me *plant.MappingError
			if errors.As(err, &me) {
				err = me // the key and what is wrong; the rule is named here
			}
			errs = append(errs, fmt.Errorf("%s (pattern %q): %w", where, r.Pattern, err))
			continue
		}
		rules = append(rules, r)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("config %s: %w", path, errors.Join(errs...))
	}
	return rules, nil
}

// mappingLines is the line of each item of the `mapping:` list, for
// messages; nil if the file does not parse that far (the strict decode has
// said why by then).
func mappingLines(b []byte) []int {
	var doc struct {
		Mapping yaml.Node `yaml:"mapping"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil || doc.Mapping.Kind != yaml.SequenceNode {
		return nil
	}
	out := make([]int, 0, len(doc.Mapping.Content))
	for _, n := range doc.Mapping.Content {
		out = append(out, n.Line)
	}
	return out
}
