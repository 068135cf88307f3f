// Package static embeds the stylesheets, scripts and vendored libraries of
// the pages and serves them under content-hashed names, so browsers may
// cache them forever and a new release is fetched at once.
package static

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
)

//go:embed css js vendor
var files embed.FS

// Prefix is where the files are served.
const Prefix = "/static/"

// asset is one embedded file with its hashed name.
type asset struct {
	name   string // "js/app.js"
	hashed string // "js/app.3f2a9c1b.js"
	body   []byte
	ctype  string
	etag   string
}

// index maps both directions once; it is built on first use and never
// changes afterwards, so it holds no mutable state.
type index struct {
	byName   map[string]*asset
	byHashed map[string]*asset
}

var loadIndex = sync.OnceValue(func() *index {
	idx := &index{byName: map[string]*asset{}, byHashed: map[string]*asset{}}
	err := fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		h := hex.EncodeToString(sum[:])[:8]
		a := &asset{name: p, hashed: hashedName(p, h), body: body, etag: strconv.Quote(h)}
		a.ctype = mime.TypeByExtension(path.Ext(p))
		if a.ctype == "" {
			a.ctype = "application/octet-stream"
		}
		idx.byName[p] = a
		idx.byHashed[a.hashed] = a
		return nil
	})
	if err != nil {
		// The files are compiled in, so a failure here is a broken build.
		panic(fmt.Sprintf("static: index embedded files: %v", err))
	}
	return idx
})

// hashedName puts the hash before the first extension dot of the base name:
// "vendor/uPlot.min.css" becomes "vendor/uPlot.3f2a9c1b.min.css".
func hashedName(p, hash string) string {
	dir, base := path.Split(p)
	if i := strings.IndexByte(base, '.'); i > 0 {
		return dir + base[:i] + "." + hash + base[i:]
	}
	return dir + base + "." + hash
}

// URL is the URL of an embedded file by its plain name ("js/app.js"). It
// panics on a name that is not embedded, which a page test catches at once.
func URL(name string) string {
	a, ok := loadIndex().byName[name]
	if !ok {
		panic(fmt.Sprintf("static: no embedded file %q", name))
	}
	return Prefix + a.hashed
}

// Handler serves the embedded files under Prefix by their hashed names. Any
// other name is a 404: a plain name would be cached forever with content
// that a later release changes.
func Handler() http.Handler {
	idx := loadIndex()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		a, ok := idx.byHashed[strings.TrimPrefix(r.URL.Path, Prefix)]
		if !ok || !strings.HasPrefix(r.URL.Path, Prefix) {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", a.ctype)
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
		h.Set("ETag", a.etag)
		if r.Header.Get("If-None-Match") == a.etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h.Set("Content-Length", strconv.Itoa(len(a.body)))
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(a.body)
		}
	})
}
