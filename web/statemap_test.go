package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"andon/plant"
)

// recordingEngine remembers the settings the pages hand it.
type recordingEngine struct{ got []plant.Settings }

func (r *recordingEngine) Reload()                       {}
func (r *recordingEngine) SetSettings(st plant.Settings) { r.got = append(r.got, st) }

// The settings page takes a plant's own state words and codes, stores them,
// tells the live engine, and refuses a state that does not exist.
func TestSettingsStateMap(t *testing.T) {
	eng := &recordingEngine{}
	e := newEnv(t, func(c *Config) { c.Engine = eng })
	form := url.Values{"micro_stop_min": {"2"}, "no_reason_min": {"2"}, "heartbeat_s": {"30"}, "currency": {"€"},
		"state_map": {"Störung = down\n7 = running"}}
	resp, body := e.post(t, "/admin/settings", form)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: %d\n%s", resp.StatusCode, body)
	}
	st, err := e.store.Settings(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.StateCodes[7] != plant.Running || st.StateWords["störung"] != plant.Down {
		t.Errorf("stored codes %v words %v", st.StateCodes, st.StateWords)
	}
	if len(eng.got) != 1 || eng.got[0].StateWords["störung"] != plant.Down {
		t.Errorf("the engine was told %v, want the new settings once", eng.got)
	}
	_, page := e.get(t, "/admin/settings")
	if !strings.Contains(page, "7 = running") || !strings.Contains(page, "störung = down") {
		t.Errorf("the settings page does not show the mapping back")
	}

	form.Set("state_map", "Störung = broken")
	resp, body = e.post(t, "/admin/settings", form)
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "broken") {
		t.Fatalf("a state that does not exist: %d, want 422 naming it", resp.StatusCode)
	}
	after, _ := e.store.Settings(e.ctx)
	if after.StateWords["störung"] != plant.Down || len(eng.got) != 1 {
		t.Errorf("a refused form changed the settings or told the engine")
	}
}
