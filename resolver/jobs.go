package resolver

import (
	"context"
	"errors"
	"os"
	"strings"

	"github.com/google/uuid"
	"github.com/riverqueue/river/rivertype"

	"github.com/usergraph/usergraph/auth"
	"github.com/usergraph/usergraph/graph"
	"github.com/usergraph/usergraph/jobs"
	"github.com/usergraph/usergraph/model"
)

// errNoJobs answers job operations on a resolver built without a queue
// (tests that do not need one).
var errNoJobs = errors.New("resolver: no job queue configured")

// maxImportErrors bounds UserImport.errors(first:).
const maxImportErrors = 1000

// jobNodes turns River's rows into API jobs, with their exports and
// imports read in one statement each for the whole list.
func (r *Resolver) jobNodes(ctx context.Context, rows []*rivertype.JobRow) ([]*graph.Job, error) {
	var exportIDs, importIDs []int64
	for _, row := range rows {
		switch row.Kind {
		case (jobs.ExportArgs{}).Kind():
			exportIDs = append(exportIDs, row.ID)
		case (jobs.ImportArgs{}).Kind():
			importIDs = append(importIDs, row.ID)
		}
	}
	exports, err := r.db.Exports().ByJobIDs(ctx, exportIDs) // no statement when empty
	if err != nil {
		return nil, err
	}
	imports, err := r.db.Imports().ByJobIDs(ctx, importIDs)
	if err != nil {
		return nil, err
	}
	byJob := map[int64]*graph.Job{}
	out := make([]*graph.Job, len(rows))
	for i, row := range rows {
		out[i] = jobNode(row)
		byJob[row.ID] = out[i]
	}
	for i := range exports {
		e := &exports[i]
		j := byJob[e.JobID]
		total := intPtr64(e.RowsTotal)
		j.Export = &graph.Export{Format: graph.ExportFormat(e.Format), Rows: int(e.RowsDone), RowsTotal: total,
			Bytes: int(e.Bytes), ExpiresAt: e.ExpiresAt}
		if e.FinishedAt != nil {
			u := "/exports/" + e.ID.String()
			j.Export.DownloadURL = &u
		}
		if j.Progress == nil && total != nil {
			j.Progress = fraction(int(e.RowsDone), *total)
		}
	}
	for i := range imports {
		im := &imports[i]
		j := byJob[im.JobID]
		j.Import = &model.UserImport{ID: im.ID, IdempotencyKey: im.IdempotencyKey, RowsTotal: im.RowsTotal,
			RowsProcessed: im.RowsDone, Inserted: im.Inserted, Failed: im.Failed}
		if j.Progress == nil && im.RowsTotal != nil {
			j.Progress = fraction(im.RowsDone, *im.RowsTotal)
		}
	}
	return out, nil
}

func jobNode(row *rivertype.JobRow) *graph.Job {
	j := &graph.Job{ID: model.JobGlobalID(row.ID), Kind: row.Kind, Queue: row.Queue,
		State: graph.JobState(strings.ToUpper(string(row.State))), Attempts: row.Attempt, MaxAttempts: row.MaxAttempts,
		CreatedAt: row.CreatedAt, ScheduledAt: row.ScheduledAt, FinishedAt: row.FinalizedAt}
	if n := len(row.Errors); n > 0 {
		msg := row.Errors[n-1].Error
		j.LastError = &msg
	}
	if row.State == rivertype.JobStateCompleted {
		one := 1.0
		j.Progress = &one
	}
	return j
}

func fraction(done, total int) *float64 {
	f := 1.0
	if total > 0 {
		f = min(float64(done)/float64(total), 1)
	}
	return &f
}

func intPtr64(p *int64) *int {
	if p == nil {
		return nil
	}
	n := int(*p)
	return &n
}

// visibleJob loads a job the viewer may see; NOT_FOUND for one they may
// not, so job ids cannot be probed.
func (r *Resolver) visibleJob(ctx context.Context, field, gid string) (*rivertype.JobRow, error) {
	if r.jobs == nil {
		return nil, errNoJobs
	}
	id, err := model.ParseJobID(field, gid)
	if err != nil {
		return nil, err
	}
	row, err := r.jobs.Job(ctx, id)
	if err != nil {
		return nil, err
	}
	if !canSeeJob(auth.ViewerFrom(ctx), row) {
		return nil, model.NotFound("job")
	}
	return row, nil
}

// jobPayload wraps one job for a mutation's payload.
func (r *Resolver) jobPayload(ctx context.Context, row *rivertype.JobRow) (*graph.JobPayload, error) {
	nodes, err := r.jobNodes(ctx, []*rivertype.JobRow{row})
	if err != nil {
		return nil, err
	}
	return &graph.JobPayload{Job: nodes[0]}, nil
}

// ExportFile opens a finished export for download by the viewer in ctx:
// its requester, or an admin for user exports (a personal data export is
// its owner's alone). NOT_FOUND for anything else.
func (r *Resolver) ExportFile(ctx context.Context, id uuid.UUID) (*os.File, string, error) {
	if r.jobs == nil {
		return nil, "", errNoJobs
	}
	e, err := r.db.Exports().ByID(ctx, id)
	if err != nil {
		return nil, "", err
	}
	if !canDownloadExport(auth.ViewerFrom(ctx), e) || e.FinishedAt == nil || !r.now().Before(e.ExpiresAt) {
		return nil, "", model.NotFound("export")
	}
	path, name := r.jobs.ExportPath(e)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, "", model.NotFound("export")
	}
	if err != nil {
		return nil, "", err
	}
	return f, name, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
