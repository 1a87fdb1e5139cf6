package http

import "net/http"

// apiRoute is one route of the API surface.
type apiRoute struct {
	pattern string // "METHOD /path", as in the OpenAPI document
	handler http.Handler
	// compat routes live on the second mux: see dispatch.
	compat bool
}

// routes lists every route, in the OpenAPI document's order. A test checks
// that the two list the same routes.
func (s *Server) routes() []apiRoute {
	auth := s.requireAuth
	rs := []apiRoute{
		{pattern: "POST /api/auth/register", handler: s.limitByIP(s.handleRegister())},
		{pattern: "POST /api/auth/login", handler: s.limitByIP(s.handleLogin())},
		{pattern: "GET /api/auth/me", handler: auth(s.handleMe())},

		{pattern: "GET /api/tasks", handler: auth(s.handleTaskList(false))},
		{pattern: "POST /api/tasks", handler: auth(s.handleTaskCreate(false))},
		{pattern: "GET /api/tasks/{id}", handler: auth(s.handleTaskGet(false))},
		{pattern: "PUT /api/tasks/{id}", handler: auth(s.handleTaskReplace(false))},
		{pattern: "DELETE /api/tasks/{id}", handler: auth(s.handleTaskDelete(false))},
		{pattern: "PATCH /api/tasks/{id}/toggle", handler: auth(s.handleTaskToggle(false))},

		{pattern: "GET /api/{user_id}/tasks", handler: auth(s.handleTaskList(true)), compat: true},
		{pattern: "POST /api/{user_id}/tasks", handler: auth(s.handleTaskCreate(true)), compat: true},
		{pattern: "GET /api/{user_id}/tasks/{id}", handler: auth(s.handleTaskGet(true)), compat: true},
		{pattern: "PUT /api/{user_id}/tasks/{id}", handler: auth(s.handleTaskReplace(true)), compat: true},
		{pattern: "DELETE /api/{user_id}/tasks/{id}", handler: auth(s.handleTaskDelete(true)), compat: true},
		{pattern: "PATCH /api/{user_id}/tasks/{id}/complete", handler: auth(s.handleTaskToggle(true)), compat: true},

		{pattern: "GET /health", handler: s.handleHealth()},
		{pattern: "GET /ready", handler: s.handleReady()},
		{pattern: "GET /metrics", handler: s.metrics.handler()},
		{pattern: "GET /openapi.json", handler: s.handleOpenAPI()},
		{pattern: "GET /docs", handler: s.handleDocs()},
	}
	for i := range rs {
		rs[i].handler = route(rs[i].pattern, rs[i].handler)
	}
	// The docs page's static assets are not API routes.
	rs = append(rs, apiRoute{pattern: "GET /docs/", handler: route("GET /docs/", s.handleDocsAssets())})
	return rs
}
