// Swagger UI for todo-api, served from the binary: no CDN, works offline.
// The OAuth2 password flow posts the login form to /api/auth/login, so the
// Authorize button signs in with a built-in account; a bearer token from any
// other issuer can be pasted into the bearerAuth box instead.
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  persistAuthorization: true,
  displayRequestDuration: true,
  tryItOutEnabled: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
