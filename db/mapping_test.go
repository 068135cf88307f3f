package db

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"andon/plant"
)

// patterns lists the rules' patterns in order.
func patterns(t *testing.T, s *Store) []string {
	t.Helper()
	rs, err := s.MappingRules(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for _, r := range rs {
		out = append(out, r.Source+":"+r.Pattern)
	}
	return out
}

func TestMappingRulesCRUD(t *testing.T) {
	s := OpenTest(t)
	ctx := context.Background()
	full := plant.MappingRule{
		Pattern: "tele/{machine}/SENSOR", Value: "ENERGY.Power", Timestamp: "Time", Metric: "power", Unit: "W",
		Scale: 0.5, Offset: -1, Note: "Tasmota plugs", Source: plant.RuleFromConfig, // the store makes it an admin's
	}
	id, err := s.AddMappingRule(ctx, full)
	if err != nil {
		t.Fatalf("add: %v", err)
	}
	got, err := s.MappingRule(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	want := full
	want.ID, want.Source = id, plant.RuleFromAdmin
	if !reflect.DeepEqual(got, want) {
		t.Errorf("stored\n got  %+v\n want %+v", got, want)
	}

	avail := plant.MappingRule{ID: id, Pattern: "tele/{machine}/LWT", Scale: 1, Availability: true, Online: "Online", Offline: "Offline"}
	if err := s.UpdateMappingRule(ctx, avail); err != nil {
		t.Fatalf("update: %v", err)
	}
	got, err = s.MappingRule(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	avail.Source = plant.RuleFromAdmin
	if !reflect.DeepEqual(got, avail) {
		t.Errorf("updated\n got  %+v\n want %+v", got, avail)
	}

	t.Run("refused", func(t *testing.T) {
		var me *plant.MappingError
		if _, err := s.AddMappingRule(ctx, plant.MappingRule{Pattern: "a/{machine}", Scale: 0}); !errors.As(err, &me) || me.Field != "scale" {
			t.Errorf("add with scale 0: %v, want a scale error", err)
		}
		if err := s.UpdateMappingRule(ctx, plant.MappingRule{ID: id, Pattern: "", Scale: 1}); !errors.Is(err, plant.ErrInvalid) {
			t.Errorf("update without pattern: %v, want ErrInvalid", err)
		}
		if err := s.UpdateMappingRule(ctx, plant.MappingRule{ID: 9999, Pattern: "a/{machine}", Scale: 1}); !errors.Is(err, plant.ErrNotFound) {
			t.Errorf("update unknown: %v, want ErrNotFound", err)
		}
		if err := s.DeleteMappingRule(ctx, 9999); !errors.Is(err, plant.ErrNotFound) {
			t.Errorf("delete unknown: %v, want ErrNotFound", err)
		}
		if _, err := s.MappingRule(ctx, 9999); !errors.Is(err, plant.ErrNotFound) {
			t.Errorf("get unknown: %v, want ErrNotFound", err)
		}
		if got, _ := s.MappingRule(ctx, id); !reflect.DeepEqual(got, avail) {
			t.Errorf("a refused change changed the rule: %+v", got)
		}
	})

	if err := s.DeleteMappingRule(ctx, id); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if got := patterns(t, s); len(got) != 0 {
		t.Errorf("after delete: %v", got)
	}
}

func TestMappingRulesOrderAndMove(t *testing.T) {
	s := OpenTest(t)
	ctx := context.Background()
	add := func(p string) int64 {
		t.Helper()
		id, err := s.AddMappingRule(ctx, plant.MappingRule{Pattern: p, Scale: 1})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	a, b, c := add("a/{machine}"), add("b/{machine}"), add("c/{machine}")
	if err := s.SetConfigMappingRules(ctx, []plant.MappingRule{
		{Pattern: "cfg1/{machine}", Scale: 1}, {Pattern: "cfg2/{machine}", Scale: 1},
	}); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		id   int64
		up   bool
		want []string
	}{
		{"config first, then by position", 0, false,
			[]string{"config:cfg1/{machine}", "config:cfg2/{machine}", "admin:a/{machine}", "admin:b/{machine}", "admin:c/{machine}"}},
		{"c up", c, true,
			[]string{"config:cfg1/{machine}", "config:cfg2/{machine}", "admin:a/{machine}", "admin:c/{machine}", "admin:b/{machine}"}},
		{"c up again", c, true,
			[]string{"config:cfg1/{machine}", "config:cfg2/{machine}", "admin:c/{machine}", "admin:a/{machine}", "admin:b/{machine}"}},
		{"c up at the top stays below the config", c, true,
			[]string{"config:cfg1/{machine}", "config:cfg2/{machine}", "admin:c/{machine}", "admin:a/{machine}", "admin:b/{machine}"}},
		{"a down", a, false,
			[]string{"config:cfg1/{machine}", "config:cfg2/{machine}", "admin:c/{machine}", "admin:b/{machine}", "admin:a/{machine}"}},
		{"a down at the bottom", a, false,
			[]string{"config:cfg1/{machine}", "config:cfg2/{machine}", "admin:c/{machine}", "admin:b/{machine}", "admin:a/{machine}"}},
		{"b up", b, true,
			[]string{"config:cfg1/{machine}", "config:cfg2/{machine}", "admin:b/{machine}", "admin:c/{machine}", "admin:a/{machine}"}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.id != 0 {
				if err := s.MoveMappingRule(ctx, st.id, st.up); err != nil {
					t.Fatal(err)
				}
			}
			if got := patterns(t, s); !reflect.DeepEqual(got, st.want) {
				t.Errorf("got  %v\nwant %v", got, st.want)
			}
		})
	}
	t.Run("a new rule goes last", func(t *testing.T) {
		add("d/{machine}")
		got := patterns(t, s)
		if got[len(got)-1] != "admin:d/{machine}" {
			t.Errorf("got %v", got)
		}
	})

	t.Run("config rules are read-only", func(t *testing.T) {
		rs, err := s.MappingRules(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cfg := rs[0]
		if cfg.Source != plant.RuleFromConfig {
			t.Fatalf("first rule %+v", cfg)
		}
		for name, err := range map[string]error{
			"update": s.UpdateMappingRule(ctx, plant.MappingRule{ID: cfg.ID, Pattern: "x/{machine}", Scale: 1}),
			"delete": s.DeleteMappingRule(ctx, cfg.ID),
			"move":   s.MoveMappingRule(ctx, cfg.ID, false),
		} {
			if !errors.Is(err, plant.ErrInvalid) {
				t.Errorf("%s a config rule: %v, want ErrInvalid", name, err)
			}
		}
	})

	t.Run("config replaced at the next start", func(t *testing.T) {
		if err := s.SetConfigMappingRules(ctx, []plant.MappingRule{{Pattern: "new/{machine}", Scale: 1}}); err != nil {
			t.Fatal(err)
		}
		want := []string{"config:new/{machine}", "admin:b/{machine}", "admin:c/{machine}", "admin:a/{machine}", "admin:d/{machine}"}
		if got := patterns(t, s); !reflect.DeepEqual(got, want) {
			t.Errorf("got  %v\nwant %v", got, want)
		}
		if err := s.SetConfigMappingRules(ctx, []plant.MappingRule{{Pattern: "", Scale: 1}}); !errors.Is(err, plant.ErrInvalid) {
			t.Errorf("an invalid config rule: %v, want ErrInvalid", err)
		}
		if got := patterns(t, s); !reflect.DeepEqual(got, want) {
			t.Errorf("a refused config changed the rules: %v", got)
		}
	})
}

func TestUnmappedTopics(t *testing.T) {
	s := OpenTest(t)
	w := NewWriter(s, WriterConfig{})
	runWriter(t, w)
	ctx := context.Background()
	rejects := []plant.Reject{
		{TS: 100, Topic: "odd/a", Reason: plant.ReasonBadJSON, Detail: "first", Payload: []byte("{x")},
		{TS: 300, Topic: "odd/a", Reason: plant.ReasonNotANumber, Detail: "newest", Payload: []byte(`{"v": [1]}`)},
		{TS: 200, Topic: "odd/a", Reason: plant.ReasonEmpty, Detail: "middle", Payload: nil},
		{TS: 150, Topic: "single", Reason: plant.ReasonTopicTooShort, Detail: "short", Payload: []byte("1")},
		{TS: 400, Topic: "m/clock", Reason: plant.ReasonFutureTimestamp, Detail: "a clock, not a mapping", Payload: []byte("1")},
		{TS: 500, Topic: "rule/m", Reason: plant.ReasonUnmapped, Detail: "no value", Payload: []byte("{}")},
	}
	for _, r := range rejects {
		w.Reject(r)
	}
	// A Write committed after the Rejects were queued has them committed too.
	if err := w.Write(ctx, []plant.Reading{reading(press3, "temp", 1, 1)}); err != nil {
		t.Fatal(err)
	}
	got, err := s.UnmappedTopics(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []UnmappedTopic{
		{Topic: "rule/m", Count: 1, FirstMS: 500, LastMS: 500, Reason: plant.ReasonUnmapped, Detail: "no value", Payload: []byte("{}")},
		// The newest message is the last stored, which is the sample even
		// when an older time came with a later message.
		{Topic: "odd/a", Count: 3, FirstMS: 100, LastMS: 300, Reason: plant.ReasonEmpty, Detail: "middle"},
		{Topic: "single", Count: 1, FirstMS: 150, LastMS: 150, Reason: plant.ReasonTopicTooShort, Detail: "short", Payload: []byte("1")},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	limited, err := s.UnmappedTopics(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(limited) != 1 || limited[0].Topic != "rule/m" {
		t.Errorf("limit 1: %+v", limited)
	}
}
