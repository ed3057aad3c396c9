package jobs

import (
	"context"
	"errors"
	"fmt"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/usergraph/usergraph/model"
)

// Job returns a job by id; a NOT_FOUND error when there is none.
func (j *Jobs) Job(ctx context.Context, id int64) (*rivertype.JobRow, error) {
	job, err := j.inserter.JobGet(ctx, id)
	if errors.Is(err, river.ErrNotFound) {
		return nil, model.NotFound("job")
	}
	if err != nil {
		return nil, fmt.Errorf("error reading job: %w", err)
	}
	return job, nil
}

// JobFilter narrows a job listing; zero fields do not filter.
type JobFilter struct {
	Kinds  []string
	Queues []string
	States []rivertype.JobState
}

// List returns up to first jobs matching f, newest first, after the cursor
// (empty for the first page), and the cursor of the last one.
func (j *Jobs) List(ctx context.Context, f JobFilter, first int, after string) ([]*rivertype.JobRow, bool, error) {
	p := river.NewJobListParams().OrderBy(river.JobListOrderByID, river.SortOrderDesc).First(first + 1)
	if len(f.Kinds) > 0 {
		p = p.Kinds(f.Kinds...)
	}
	if len(f.Queues) > 0 {
		p = p.Queues(f.Queues...)
	}
	if len(f.States) > 0 {
		p = p.States(f.States...)
	}
	if after != "" {
		var c river.JobListCursor
		if err := c.UnmarshalText([]byte(after)); err != nil {
			return nil, false, model.Invalid("after", "not a cursor of this list")
		}
		p = p.After(&c)
	}
	res, err := j.inserter.JobList(ctx, p)
	if err != nil {
		return nil, false, fmt.Errorf("error listing jobs: %w", err)
	}
	more := len(res.Jobs) > first
	if more {
		res.Jobs = res.Jobs[:first]
	}
	return res.Jobs, more, nil
}

// Cursor is the listing cursor just after job.
func Cursor(job *rivertype.JobRow) string {
	b, _ := river.JobListCursorFromJob(job).MarshalText()
	return string(b)
}

// Retry makes a finished or waiting job run again as soon as possible.
func (j *Jobs) Retry(ctx context.Context, id int64) (*rivertype.JobRow, error) {
	job, err := j.inserter.JobRetry(ctx, id)
	if errors.Is(err, river.ErrNotFound) {
		return nil, model.NotFound("job")
	}
	if err != nil {
		return nil, fmt.Errorf("error retrying job: %w", err)
	}
	return job, nil
}

// Cancel cancels a job that has not finished; a running one is told to
// stop through River's notifications.
func (j *Jobs) Cancel(ctx context.Context, id int64) (*rivertype.JobRow, error) {
	job, err := j.inserter.JobCancel(ctx, id)
	if errors.Is(err, river.ErrNotFound) {
		return nil, model.NotFound("job")
	}
	if err != nil {
		return nil, fmt.Errorf("error cancelling job: %w", err)
	}
	return job, nil
}
