package http

import (
	"embed"
	"io"
	"io/fs"
	"net/http"
	"strings"

	todo "github.com/todo-api/todo-api"
)

// docsFS holds Swagger UI (from the swagger-ui-dist npm package, see
// docs/LICENSE) and our page around it, so /docs works with no internet.
//
//go:embed docs
var docsFS embed.FS

func (s *Server) handleDocs() http.Handler {
	page, _ := docsFS.ReadFile("docs/index.html")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
	})
}

func (s *Server) handleDocsAssets() http.Handler {
	sub, _ := fs.Sub(docsFS, "docs")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/docs/")
		f, err := sub.Open(name)
		if err != nil {
			Error(w, r, todo.Errorf(todo.ENOTFOUND, "No such docs asset."))
			return
		}
		defer f.Close()
		content, ok := f.(io.ReadSeeker)
		info, statErr := f.Stat()
		if !ok || statErr != nil || info.IsDir() {
			Error(w, r, todo.Errorf(todo.ENOTFOUND, "No such docs asset."))
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=86400")
		// ServeContent, unlike the file server, never redirects.
		http.ServeContent(w, r, name, info.ModTime(), content)
	})
}
