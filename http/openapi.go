package http

import (
	_ "embed"
	"net/http"
	"strconv"
)

// openAPIDocument describes every route in routes.go. Tests keep the two in
// step: every route must be in the document and every response the HTTP
// tests see must validate against it.
//
//go:embed openapi.json
var openAPIDocument []byte

// OpenAPIDocument returns the served OpenAPI document.
func OpenAPIDocument() []byte { return openAPIDocument }

func (s *Server) handleOpenAPI() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(openAPIDocument)))
		w.Write(openAPIDocument)
	})
}
