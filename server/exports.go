package server

import (
	"context"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"path/filepath"

	"github.com/google/uuid"

	"github.com/usergraph/usergraph/auth"
	"github.com/usergraph/usergraph/model"
	"github.com/usergraph/usergraph/resolver"
)

// ExportFiles opens finished export files for the viewer in the context,
// after checking they may have them.
type ExportFiles interface {
	ExportFile(ctx context.Context, id uuid.UUID) (*os.File, string, error)
}

// exportDownload serves GET /exports/{id}: the finished file of an export,
// to a caller authenticated like the API (session cookie or bearer token).
// Anything the caller may not download is a 404, like a missing one.
func exportDownload(files ExportFiles, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		w.Header().Set("Cache-Control", "private, no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if auth.ViewerFrom(ctx) == nil {
			refuse(w, "application/json", http.StatusUnauthorized, string(model.CodeUnauthenticated), "log in to download exports")
			return
		}
		id, err := uuid.Parse(r.PathValue("id"))
		if err != nil {
			refuse(w, "application/json", http.StatusNotFound, string(model.CodeNotFound), "export not found")
			return
		}
		f, name, err := files.ExportFile(ctx, id)
		if model.ErrorCode(err) == model.CodeNotFound {
			refuse(w, "application/json", http.StatusNotFound, string(model.CodeNotFound), "export not found")
			return
		}
		if err != nil {
			log.ErrorContext(ctx, "export download failed", "request_id", resolver.RequestID(ctx), "err", err)
			refuse(w, "application/json", http.StatusInternalServerError, string(model.CodeInternal), "internal error (request "+resolver.RequestID(ctx)+")")
			return
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			refuse(w, "application/json", http.StatusInternalServerError, string(model.CodeInternal), "internal error (request "+resolver.RequestID(ctx)+")")
			return
		}
		ctype := map[string]string{".csv": "text/csv; charset=utf-8", ".jsonl": "application/jsonl", ".json": "application/json"}[filepath.Ext(name)]
		w.Header().Set("Content-Type", ctype)
		w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
		http.ServeContent(w, r, "", st.ModTime(), f)
	})
}
