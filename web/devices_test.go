package web

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"andon/db"
)

func parseDoc(t *testing.T, body string) *goquery.Document {
	t.Helper()
	d, err := goquery.NewDocumentFromReader(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// deviceNamed finds a device in the store by username.
func deviceNamed(t *testing.T, e *env, username string) (db.Device, bool) {
	t.Helper()
	ds, err := e.store.Devices(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.Username == username {
			return d, true
		}
	}
	return db.Device{}, false
}

func TestAdminDevices(t *testing.T) {
	e := newEnv(t)
	admin := e.asAdminClient()

	resp, body := admin.get(t, "/admin/devices")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /admin/devices: %d", resp.StatusCode)
	}
	if parseDoc(t, body).Find(`[data-testid="no-devices"]`).Length() != 1 {
		t.Error("an empty device list does not say so")
	}

	// Add with a chosen password: a redirect, and the device can log in.
	resp, _ = admin.post(t, "/admin/devices", url.Values{"username": {"press-01"}, "prefix": {"acme/hall-1/line-1"}, "password": {"correct horse"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/devices?saved=1" {
		t.Fatalf("add: %d to %q, want 303 to /admin/devices?saved=1", resp.StatusCode, resp.Header.Get("Location"))
	}
	if d, err := e.store.AuthenticateDevice(e.ctx, "press-01", "correct horse"); err != nil || d.TopicPrefix != "acme/hall-1/line-1" {
		t.Fatalf("added device: %+v, %v", d, err)
	}

	// Add without a password: one is generated and shown once, not cached.
	resp, body = admin.post(t, "/admin/devices", url.Values{"username": {"saw-02"}, "prefix": {"acme/hall-1/line-2"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("add with a generated password: %d", resp.StatusCode)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("the page with a password has Cache-Control %q, want no-store", cc)
	}
	pw, _ := parseDoc(t, body).Find(`[data-testid="device-password"]`).Attr("value")
	if len(pw) < 30 {
		t.Fatalf("generated password %q shown, want 32 random characters", pw)
	}
	if _, err := e.store.AuthenticateDevice(e.ctx, "saw-02", pw); err != nil {
		t.Errorf("the shown password does not work: %v", err)
	}
	_, body = admin.get(t, "/admin/devices")
	if strings.Contains(body, pw) {
		t.Error("the generated password is shown again on the list")
	}
	doc := parseDoc(t, body)
	if n := doc.Find(`[data-testid^="device-row-"]`).Length(); n != 2 {
		t.Errorf("%d device rows, want 2", n)
	}

	// Refused: the page again with the reason and what was typed.
	for _, tt := range []struct{ name, user, prefix, pw, want string }{
		{"wildcard", "x-1", "acme/#", "correct horse", "wildcards"},
		{"taken", "press-01", "acme", "correct horse", "already exists"},
		{"short password", "x-2", "acme", "short", "at least 10"},
	} {
		resp, body := admin.post(t, "/admin/devices", url.Values{"username": {tt.user}, "prefix": {tt.prefix}, "password": {tt.pw}})
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", tt.name, resp.StatusCode)
			continue
		}
		d := parseDoc(t, body)
		if msg := d.Find(`[data-testid="form-error"]`).Text(); !strings.Contains(msg, tt.want) {
			t.Errorf("%s: message %q, want %q in it", tt.name, msg, tt.want)
		}
		if v, _ := d.Find(`input[name="prefix"]`).Attr("value"); v != tt.prefix {
			t.Errorf("%s: prefix field %q, want what was typed, %q", tt.name, v, tt.prefix)
		}
	}

	press, _ := deviceNamed(t, e, "press-01")
	id := strconv.FormatInt(press.ID, 10)
	steps := []struct {
		name  string
		path  string
		form  url.Values
		check func() bool
	}{
		{"disable", "/admin/devices/" + id + "/disabled", url.Values{"disabled": {"true"}}, func() bool {
			d, _ := deviceNamed(t, e, "press-01")
			return d.Disabled
		}},
		{"enable", "/admin/devices/" + id + "/disabled", url.Values{"disabled": {"false"}}, func() bool {
			d, _ := deviceNamed(t, e, "press-01")
			return !d.Disabled
		}},
		{"new password", "/admin/devices/" + id + "/password", url.Values{"password": {"battery staple"}}, func() bool {
			_, err := e.store.AuthenticateDevice(e.ctx, "press-01", "battery staple")
			return err == nil
		}},
		{"delete", "/admin/devices/" + id + "/delete", url.Values{}, func() bool {
			_, found := deviceNamed(t, e, "press-01")
			return !found
		}},
	}
	for _, st := range steps {
		resp, _ := admin.post(t, st.path, st.form)
		if resp.StatusCode != http.StatusSeeOther {
			t.Errorf("%s: %d, want 303", st.name, resp.StatusCode)
		}
		if !st.check() {
			t.Errorf("%s: not done in the store", st.name)
		}
	}
	if resp, _ := admin.post(t, "/admin/devices/"+id+"/delete", url.Values{}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("deleting a deleted device: %d, want 404", resp.StatusCode)
	}
	if _, err := e.store.AuthenticateDevice(e.ctx, "press-01", "battery staple"); !errors.Is(err, db.ErrBadCredentials) {
		t.Errorf("deleted device logs in: %v", err)
	}

	// Every change is in the audit log, by the admin, without a password.
	entries, err := e.store.AuditLog(e.ctx, 0, 50)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := len(entries) - 1; i >= 0; i-- {
		en := entries[i]
		if !strings.HasPrefix(en.Action, "device.") {
			continue
		}
		got = append(got, en.Action+" "+en.Object)
		if en.Actor == "" || strings.HasPrefix(en.Actor, "token:") {
			t.Errorf("audit entry %+v: want the admin as actor", en)
		}
		if strings.Contains(en.Detail, "correct horse") || strings.Contains(en.Detail, pw) {
			t.Errorf("audit entry %+v holds a password", en)
		}
	}
	want := "device.create press-01,device.create saw-02,device.disable press-01,device.enable press-01,device.password press-01,device.delete press-01"
	if strings.Join(got, ",") != want {
		t.Errorf("audit %q, want %q", strings.Join(got, ","), want)
	}
}

func TestAdminDevicesAccess(t *testing.T) {
	e := newEnv(t)
	if _, err := e.store.CreateDevice(e.ctx, "plc", "correct horse", "acme"); err != nil {
		t.Fatal(err)
	}
	d, _ := deviceNamed(t, e, "plc")
	del := "/admin/devices/" + strconv.FormatInt(d.ID, 10) + "/delete"
	for _, role := range []db.Role{db.RoleViewer, db.RoleOperator} {
		cl := e.as(t, role)
		if resp, _ := cl.get(t, "/admin/devices"); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s GET: %d, want 403", role, resp.StatusCode)
		}
		if resp, _ := cl.post(t, del, nil); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s delete: %d, want 403", role, resp.StatusCode)
		}
	}
	if resp, _ := e.anon().get(t, "/admin/devices"); resp.StatusCode != http.StatusSeeOther ||
		!strings.HasPrefix(resp.Header.Get("Location"), "/login") {
		t.Errorf("anonymous GET: %d to %q, want 303 to /login", resp.StatusCode, resp.Header.Get("Location"))
	}
	// A cross-site form post by an admin's browser is refused.
	resp, _ := e.asAdminClient().do(t, http.MethodPost, del, url.Values{}, http.Header{"Origin": {"https://evil.example"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin delete: %d, want 403", resp.StatusCode)
	}
	if _, found := deviceNamed(t, e, "plc"); !found {
		t.Error("a refused request deleted the device")
	}
}

func TestAdminDevicesEscapes(t *testing.T) {
	e := newEnv(t)
	const evil = `<img src=x onerror=alert(1)>`
	if _, err := e.store.CreateDevice(e.ctx, evil, "correct horse", `acme/"><script>alert(1)</script>`); err != nil {
		t.Fatal(err)
	}
	_, body := e.asAdminClient().get(t, "/admin/devices")
	if strings.Contains(body, evil) || strings.Contains(body, "<script>alert") {
		t.Fatal("device text reached the page unescaped")
	}
	if got := parseDoc(t, body).Find(`[data-testid^="device-row-"] td`).First().Text(); got != evil {
		t.Errorf("username shows as %q, want the text %q", got, evil)
	}
}
