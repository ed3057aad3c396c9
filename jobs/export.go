package jobs

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/usergraph/usergraph/db"
	"github.com/usergraph/usergraph/model"
)

// ExportArgs writes an export's file. The export record holds what to
// export; the arguments hold its id only.
type ExportArgs struct {
	ExportID uuid.UUID `json:"export_id"`
}

// Kind names the job.
func (ExportArgs) Kind() string { return "export" }

// InsertOpts puts exports on the reports queue. A retry starts the file
// over, so a few attempts are plenty.
func (ExportArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueReports, MaxAttempts: 5}
}

// ExportTx records an export and enqueues its job inside tx. kind is
// db.ExportUsers (format CSV or JSONL, of the users matching filter) or
// db.ExportMyData (format JSON, of requestedBy's own data).
func (j *Jobs) ExportTx(ctx context.Context, tx *db.Tx, requestedBy uuid.UUID, kind, format string, filter model.UserFilter, now time.Time) (*rivertype.JobRow, *db.Export, error) {
	f, err := json.Marshal(filter)
	if err != nil {
		return nil, nil, fmt.Errorf("error encoding export filter: %w", err)
	}
	e := &db.Export{ID: uuid.Must(uuid.NewV7()), RequestedBy: requestedBy, Kind: kind, Format: format, Filter: f,
		CreatedAt: now.Truncate(time.Microsecond), ExpiresAt: now.Add(j.cfg.ExportTTL).Truncate(time.Microsecond)}
	job, err := j.insertTx(ctx, tx, ExportArgs{ExportID: e.ID}, nil, requestedBy)
	if err != nil {
		return nil, nil, err
	}
	e.JobID = job.ID
	if err := tx.Exports().Create(ctx, e); err != nil {
		return nil, nil, err
	}
	return job, e, nil
}

// ExportPath is where a finished export's file lives under the export
// directory, and the name a download offers.
func (j *Jobs) ExportPath(e *db.Export) (path, name string) {
	p := exportFile(j.cfg.ExportDir, e)
	return p, "usergraph-" + map[string]string{db.ExportUsers: "users", db.ExportMyData: "my-data"}[e.Kind] + "-" +
		e.CreatedAt.UTC().Format("20060102-150405") + filepath.Ext(p)
}

type exportWorker struct {
	river.WorkerDefaults[ExportArgs]
	db     *db.DB
	dir    string
	mailer *mailer
	log    *slog.Logger
}

// NextRetry spaces export attempts a minute apart per attempt: a failed
// export is usually a database or disk hiccup, not a long outage.
func (w *exportWorker) NextRetry(job *river.Job[ExportArgs]) time.Time {
	return time.Now().Add(time.Duration(job.Attempt) * time.Minute)
}

// progressEvery is how many rows pass between progress updates.
const progressEvery = 10_000

func (w *exportWorker) Work(ctx context.Context, job *river.Job[ExportArgs]) error {
	e, err := w.db.Exports().ByID(ctx, job.Args.ExportID)
	if model.ErrorCode(err) == model.CodeNotFound {
		return river.JobCancel(err) // expired and removed before it ran
	}
	if err != nil {
		return err
	}
	if err := os.MkdirAll(w.dir, 0o750); err != nil {
		return fmt.Errorf("error creating export directory: %w", err)
	}
	final := exportFile(w.dir, e)
	tmp := final + partial
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("error creating export file: %w", err)
	}
	defer os.Remove(tmp) // a no-op after the rename
	defer f.Close()
	counted := &countingWriter{w: f}
	buf := bufio.NewWriterSize(counted, 64<<10)
	var rows int64
	switch e.Kind {
	case db.ExportUsers:
		rows, err = w.users(ctx, e, buf, counted)
	case db.ExportMyData:
		rows, err = 1, w.personal(ctx, e, buf)
	default:
		return river.JobCancel(fmt.Errorf("unknown export kind %q", e.Kind))
	}
	if err != nil {
		return err
	}
	if err := buf.Flush(); err != nil {
		return fmt.Errorf("error writing export file: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("error writing export file: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("error finishing export file: %w", err)
	}
	if err := w.db.Exports().Finish(ctx, e.ID, rows, counted.n, time.Now()); err != nil {
		return err
	}
	if e.Kind == db.ExportMyData {
		return w.notify(ctx, job.ID, e)
	}
	return nil
}

// users streams the matching users: constant memory whatever their number.
func (w *exportWorker) users(ctx context.Context, e *db.Export, out *bufio.Writer, counted *countingWriter) (int64, error) {
	var filter model.UserFilter
	if err := json.Unmarshal(e.Filter, &filter); err != nil {
		return 0, river.JobCancel(fmt.Errorf("error decoding export filter: %w", err))
	}
	total, err := w.db.Users().Count(ctx, filter)
	if err != nil {
		return 0, err
	}
	if err := w.db.Exports().Progress(ctx, e.ID, &total, 0, 0); err != nil {
		return 0, err
	}
	var cw *csv.Writer
	var enc *json.Encoder
	if e.Format == "CSV" {
		cw = csv.NewWriter(out)
		if err := cw.Write([]string{"id", "email", "username", "display_name", "status", "email_verified_at", "last_login_at", "created_at", "roles"}); err != nil {
			return 0, err
		}
	} else {
		enc = json.NewEncoder(out)
	}
	var n int64
	record := make([]string, 9)
	err = w.db.Users().StreamUsers(ctx, filter, func(u *db.ExportedUser) error {
		id := model.GlobalID(model.KindUser, u.ID)
		if cw != nil {
			record[0], record[1], record[2], record[3], record[4] = id, u.Email, u.Username, csvSafe(u.DisplayName), string(u.Status)
			record[5], record[6], record[7], record[8] = timeOrEmpty(u.EmailVerifiedAt), timeOrEmpty(u.LastLoginAt), u.CreatedAt.UTC().Format(time.RFC3339Nano), u.Roles
			if err := cw.Write(record); err != nil {
				return err
			}
		} else {
			roles := []string{}
			if u.Roles != "" {
				roles = strings.Split(u.Roles, ";")
			}
			if err := enc.Encode(struct {
				ID string `json:"id"`
				*db.ExportedUser
				Roles []string `json:"roles"`
			}{id, u, roles}); err != nil {
				return err
			}
		}
		n++
		if n%progressEvery == 0 {
			if cw != nil {
				cw.Flush()
			}
			return w.db.Exports().Progress(ctx, e.ID, nil, n, counted.n+int64(out.Buffered()))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if cw != nil {
		cw.Flush()
		if err := cw.Error(); err != nil {
			return 0, fmt.Errorf("error writing export file: %w", err)
		}
	}
	return n, nil
}

func (w *exportWorker) personal(ctx context.Context, e *db.Export, out *bufio.Writer) error {
	doc, err := w.db.PersonalData(ctx, e.RequestedBy)
	if err != nil {
		return err
	}
	_, err = out.Write(doc)
	return err
}

// notify emails the requester the download link of their data export.
func (w *exportWorker) notify(ctx context.Context, jobID int64, e *db.Export) error {
	u, err := w.mailer.recipient(ctx, e.RequestedBy)
	if u == nil || err != nil {
		return err
	}
	return w.mailer.deliver(ctx, jobID, "my_data_export", u, "Your data export is ready", letter{
		Intro: "the copy of your data you asked for is ready. The link works while you are signed in, until " +
			e.ExpiresAt.UTC().Format("2 January 2006") + ".",
		Link: w.mailer.link("/exports/"+e.ID.String(), nil), Action: "Download your data",
	})
}

// csvSafe defuses spreadsheet formulas in free text (CSV injection): a
// leading =, +, - or @ is escaped with a quote.
func csvSafe(s string) string {
	if s != "" && (s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@') {
		return "'" + s
	}
	return s
}

func timeOrEmpty(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

type countingWriter struct {
	w *os.File
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
