package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"andon/db"
)

func docFromBody(t *testing.T, body string) *goquery.Document {
	t.Helper()
	d, err := goquery.NewDocumentFromReader(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// lastAudit is the newest audit entry.
func lastAudit(t *testing.T, e *env) db.AuditEntry {
	t.Helper()
	es, err := e.store.AuditLog(e.ctx, 0, 1)
	if err != nil || len(es) == 0 {
		t.Fatalf("audit log: %v (%d entries)", err, len(es))
	}
	return es[0]
}

func TestAdminUsers(t *testing.T) {
	e := newEnv(t)
	adm := e.asAdminClient()
	loginWorks := func(name, pw string) bool {
		resp, _ := e.anon().post(t, "/login", loginForm(name, pw, "/"))
		return sessionFrom(resp) != ""
	}

	steps := []struct {
		name       string
		path       func() string
		form       url.Values
		wantCode   int
		wantAction string // the audit entry a change writes, "" for a refusal
		wantText   string // in the page of a refusal
	}{
		{"add", func() string { return "/admin/users" },
			url.Values{"name": {"lena"}, "role": {"viewer"}, "password": {"first-password"}}, http.StatusSeeOther, "user.create", ""},
		{"add twice", func() string { return "/admin/users" },
			url.Values{"name": {"LENA"}, "role": {"viewer"}, "password": {"first-password"}}, http.StatusBadRequest, "", ""},
		{"short password", func() string { return "/admin/users" },
			url.Values{"name": {"kim"}, "role": {"viewer"}, "password": {"short"}}, http.StatusBadRequest, "", "10"},
		{"no such role", func() string { return "/admin/users" },
			url.Values{"name": {"kim"}, "role": {"root"}, "password": {"long-enough-pw"}}, http.StatusBadRequest, "", "role"},
		{"make operator", func() string { return "/admin/users/" + itoa64(userNamed(t, e, "lena").ID) + "/role" },
			url.Values{"role": {"operator"}}, http.StatusSeeOther, "user.role", ""},
		{"reset password", func() string { return "/admin/users/" + itoa64(userNamed(t, e, "lena").ID) + "/password" },
			url.Values{"password": {"second-password"}}, http.StatusSeeOther, "user.password_reset", ""},
		{"last admin cannot step down", func() string { return "/admin/users/" + itoa64(e.admin.ID) + "/role" },
			url.Values{"role": {"viewer"}}, http.StatusBadRequest, "", ""},
		{"last admin cannot be disabled", func() string { return "/admin/users/" + itoa64(e.admin.ID) + "/disabled" },
			url.Values{"disabled": {"true"}}, http.StatusBadRequest, "", ""},
		{"unknown user", func() string { return "/admin/users/99999/role" },
			url.Values{"role": {"viewer"}}, http.StatusNotFound, "", ""},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			before, _ := e.store.AuditLog(e.ctx, 0, 1000)
			resp, body := adm.post(t, st.path(), st.form)
			if resp.StatusCode != st.wantCode {
				t.Fatalf("status %d, want %d; %.300s", resp.StatusCode, st.wantCode, body)
			}
			after, _ := e.store.AuditLog(e.ctx, 0, 1000)
			if st.wantAction == "" {
				if len(after) != len(before) {
					t.Errorf("a refused change was audited: %+v", after[0])
				}
				if st.wantText != "" && !strings.Contains(body, st.wantText) {
					t.Errorf("the refusal does not mention %q", st.wantText)
				}
				if pw := st.form.Get("password"); pw != "" && strings.Contains(body, `value="`+pw+`"`) {
					t.Error("the page echoes the password")
				}
				return
			}
			a := lastAudit(t, e)
			if a.Action != st.wantAction || a.Actor != "admin" || a.Object != "lena" {
				t.Errorf("audit = %+v, want %s of lena by admin", a, st.wantAction)
			}
			if strings.Contains(a.Detail, "password") && strings.Contains(a.Detail, "second-password") {
				t.Error("the audit log holds a password")
			}
		})
	}
	if got := userNamed(t, e, "lena").Role; got != db.RoleOperator {
		t.Errorf("lena is %s, want operator", got)
	}
	if loginWorks("lena", "first-password") || !loginWorks("lena", "second-password") {
		t.Error("the reset password is not the one that works")
	}
	d := docOf(t, adm, "/admin/users")
	if n := d.Find(`[data-testid="users-table"] tbody tr`).Length(); n != 2 {
		t.Errorf("users table has %d rows, want 2", n)
	}
}

func TestAdminTokens(t *testing.T) {
	e := newEnv(t)
	adm := e.asAdminClient()
	resp, body := adm.post(t, "/admin/tokens", url.Values{"name": {"prometheus"}, "use": {"api:read"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("create: status %d; %.300s", resp.StatusCode, body)
	}
	d := docFromBody(t, body)
	secret, _ := d.Find(`[data-testid="token-secret"]`).Attr("value")
	if !strings.HasPrefix(secret, "andon_") {
		t.Fatalf("secret shown = %q", secret)
	}
	reader := &testClient{e: e, name: "prometheus", bearer: secret}
	if resp, _ := reader.get(t, "/metrics"); resp.StatusCode != http.StatusOK {
		t.Errorf("the new read token gets /metrics with %d", resp.StatusCode)
	}
	if a := lastAudit(t, e); a.Action != "token.create" || !strings.Contains(a.Object, "prometheus") || strings.Contains(a.Object+a.Detail, secret) {
		t.Errorf("audit = %+v", a)
	}
	_, list := adm.get(t, "/admin/tokens")
	if strings.Contains(list, secret) {
		t.Error("the token list shows the secret again")
	}
	if !strings.Contains(list, secret[:10]) {
		t.Error("the token list does not show the prefix")
	}
	for _, use := range []string{"", "api:admin", "display:board:1", "root"} {
		if resp, _ := adm.post(t, "/admin/tokens", url.Values{"name": {"x"}, "use": {use}}); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("use %q: status %d, want 400", use, resp.StatusCode)
		}
	}
}

func TestChangeOwnPassword(t *testing.T) {
	e := newEnv(t)
	viewer := e.as(t, db.RoleViewer)
	other := e.as(t, db.RoleViewer) // the same user on another device
	for _, tc := range []struct {
		name string
		form url.Values
		want int
	}{
		{"wrong current", url.Values{"current": {"nope"}, "new": {"brand-new-pass"}, "new2": {"brand-new-pass"}}, http.StatusBadRequest},
		{"mismatch", url.Values{"current": {testPassword}, "new": {"brand-new-pass"}, "new2": {"brand-new-pasS"}}, http.StatusBadRequest},
		{"too short", url.Values{"current": {testPassword}, "new": {"short"}, "new2": {"short"}}, http.StatusBadRequest},
		{"ok", url.Values{"current": {testPassword}, "new": {"brand-new-pass"}, "new2": {"brand-new-pass"}}, http.StatusSeeOther},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := viewer.post(t, "/account/password", tc.form)
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d; %.300s", resp.StatusCode, tc.want, body)
			}
			if tc.want == http.StatusSeeOther {
				viewer.cookie = sessionFrom(resp)
			}
		})
	}
	if resp, _ := viewer.get(t, "/"); resp.StatusCode != http.StatusOK {
		t.Errorf("this device after the change: status %d, want 200", resp.StatusCode)
	}
	if resp, _ := other.get(t, "/"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the other device after the change: status %d, want 303 to login", resp.StatusCode)
	}
	resp, _ := e.anon().post(t, "/login", loginForm("viewer-user", "brand-new-pass", "/"))
	if sessionFrom(resp) == "" {
		t.Error("the new password does not log in")
	}
}
