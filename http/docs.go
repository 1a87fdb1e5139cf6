package http

import (
	"embed"
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
	files := http.StripPrefix("/docs/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/docs/")
		if info, err := fs.Stat(sub, name); err != nil || info.IsDir() {
			Error(w, r, todo.Errorf(todo.ENOTFOUND, "No such docs asset."))
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=86400")
		files.ServeHTTP(w, r)
	})
}
