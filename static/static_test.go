package static

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHashedName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"js/app.js", "js/app.abcd1234.js"},
		{"vendor/uPlot.min.css", "vendor/uPlot.abcd1234.min.css"},
		{"README", "README.abcd1234"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := hashedName(tc.in, "abcd1234"); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestHandler(t *testing.T) {
	h := Handler()
	u := URL("css/app.css")
	tests := []struct {
		name, method, path string
		code               int
	}{
		{"hashed", http.MethodGet, u, 200},
		{"head", http.MethodHead, u, 200},
		{"plain", http.MethodGet, "/static/css/app.css", 404},
		{"outside prefix", http.MethodGet, strings.TrimPrefix(u, "/static"), 404},
		{"post", http.MethodPost, u, 405},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
			if rec.Code != tc.code {
				t.Errorf("status %d, want %d", rec.Code, tc.code)
			}
		})
	}
	// A second request with the ETag is answered without a body.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, u, nil))
	req := httptest.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("If-None-Match", rec.Header().Get("ETag"))
	rec2 := httptest.NewRecorder()
	h.ServeHTTP(rec2, req)
	if rec2.Code != http.StatusNotModified || rec2.Body.Len() != 0 {
		t.Errorf("conditional GET: %d with %d bytes", rec2.Code, rec2.Body.Len())
	}
}
