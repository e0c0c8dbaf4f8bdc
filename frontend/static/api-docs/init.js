// Served as a file, not inline, so the docs page works under a Content-Security-Policy without
// 'unsafe-inline'.
window.ui = SwaggerUIBundle({
  url: "/api/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
});
