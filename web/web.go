// Package web holds tyst's browser UI (DESIGN §13): plain HTML, CSS and
// JavaScript modules under static/, embedded into the binary and served as
// they are, with no build step. The UI talks to the HTTP API only; it keeps
// nothing about records (titles, file names, transcripts) in browser storage.
package web

import (
	"bytes"
	"embed"
	"io"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
)

//go:embed static
var files embed.FS

// Config configures the UI handler.
type Config struct {
	// MaxUploadBytes is the server's upload limit, told to the page so it
	// can refuse a larger file before sending a byte of it. Zero leaves the
	// check to the server.
	MaxUploadBytes int64
}

// contentTypes names the type of every kind of file under static/; a file
// of another kind is not served.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".mjs":  "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
}

// Handler serves the UI: "/" is the page, other paths are the files under
// static/. It answers GET and HEAD only; anything else, or a path it does
// not hold, is 404 (405 for other methods). Headers such as the CSP and
// Cache-Control come from the API's middleware in front of it.
func Handler(cfg Config) http.Handler {
	static, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the embedded tree always has static/
	}
	index, err := fs.ReadFile(static, "index.html")
	if err != nil {
		panic(err)
	}
	index = bytes.Replace(index, []byte(`content="0" name="tyst-max-upload-bytes"`),
		[]byte(`content="`+strconv.FormatInt(max(cfg.MaxUploadBytes, 0), 10)+`" name="tyst-max-upload-bytes"`), 1)
	return &handler{static: static, index: index}
}

type handler struct {
	static fs.FS
	index  []byte
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.Path
	if p == "/" || p == "/index.html" {
		w.Header().Set("Content-Type", contentTypes[".html"])
		http.ServeContent(w, r, "index.html", time.Time{}, bytes.NewReader(h.index))
		return
	}
	name := strings.TrimPrefix(path.Clean(p), "/")
	ct, ok := contentTypes[path.Ext(name)]
	if !ok || name == "" || !fs.ValidPath(name) {
		http.NotFound(w, r)
		return
	}
	f, err := h.static.Open(name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	// Embedded files seek, so they are served without a copy.
	rs, ok := f.(io.ReadSeeker)
	if st, err := f.Stat(); err != nil || st.IsDir() || !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", ct)
	http.ServeContent(w, r, name, time.Time{}, rs)
}
