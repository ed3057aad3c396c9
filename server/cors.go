package server

import (
	"net/http"

	"github.com/rs/cors"
)

// corsFor allows the listed origins to call the API from a browser on
// another origin, with credentials (the session cookie) and the headers
// the API reads; preflights are answered and cached for ten minutes. With
// no origins the handler is unchanged: browsers allow same-origin calls
// only.
func corsFor(origins []string) func(http.Handler) http.Handler {
	if len(origins) == 0 {
		return func(h http.Handler) http.Handler { return h }
	}
	return cors.New(cors.Options{
		AllowedOrigins:   origins,
		AllowedMethods:   []string{http.MethodGet, http.MethodPost},
		AllowedHeaders:   []string{"Content-Type", "Authorization", "Accept", "X-Request-Id"},
		ExposedHeaders:   []string{"X-Request-Id", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Used", "X-RateLimit-Reset", "Retry-After", "ETag"},
		AllowCredentials: true,
		MaxAge:           600,
	}).Handler
}
