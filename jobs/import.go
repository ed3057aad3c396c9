package jobs

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/usergraph/usergraph/db"
	"github.com/usergraph/usergraph/model"
)

// ImportArgs runs a bulk user import recorded in user_imports.
type ImportArgs struct {
	ImportID uuid.UUID `json:"import_id"`
	// SendWelcome enqueues a welcome email for each user inserted.
	SendWelcome bool `json:"send_welcome,omitempty"`
}

// Kind names the job.
func (ImportArgs) Kind() string { return "import_users" }

// InsertOpts puts imports on the reports queue. Each attempt resumes where
// the last committed batch ended.
func (ImportArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueReports, MaxAttempts: 10}
}

// Limits of an import.
const (
	// MaxImportBytes bounds a CSV, inline or fetched.
	MaxImportBytes = 32 << 20
	importBatch    = 1000
)

// ImportTx records an import and enqueues its job inside tx, unless the
// requester already made one under the same idempotency key: then that one
// is returned and nothing new is enqueued, so a client may retry the
// request safely.
func (j *Jobs) ImportTx(ctx context.Context, tx *db.Tx, requestedBy uuid.UUID, key, csvData, sourceURL string, sendWelcome bool, now time.Time) (*rivertype.JobRow, bool, error) {
	if err := tx.Imports().LockKey(ctx, requestedBy, key); err != nil {
		return nil, false, err
	}
	existing, err := tx.Imports().Existing(ctx, requestedBy, key)
	if err != nil {
		return nil, false, err
	}
	if existing != nil {
		sqlTx, err := sqlTxOf(tx)
		if err != nil {
			return nil, false, err
		}
		job, err := j.inserter.JobGetTx(ctx, sqlTx, existing.JobID)
		return job, false, err
	}
	im := &db.Import{ID: uuid.Must(uuid.NewV7()), RequestedBy: requestedBy, IdempotencyKey: key, CSV: csvData,
		CreatedAt: now.Truncate(time.Microsecond)}
	if sourceURL != "" {
		im.SourceURL = &sourceURL
	}
	job, err := j.insertTx(ctx, tx, ImportArgs{ImportID: im.ID, SendWelcome: sendWelcome}, nil, requestedBy)
	if err != nil {
		return nil, false, err
	}
	im.JobID = job.ID
	return job, true, tx.Imports().Create(ctx, im)
}

type importWorker struct {
	river.WorkerDefaults[ImportArgs]
	db      *db.DB
	log     *slog.Logger
	allowed []string
	cache   Invalidator
	jobs    *Jobs
}

// NextRetry spaces import attempts 30 seconds apart per attempt; each
// resumes after the last committed batch.
func (w *importWorker) NextRetry(job *river.Job[ImportArgs]) time.Time {
	return time.Now().Add(time.Duration(job.Attempt) * 30 * time.Second)
}

func (w *importWorker) Work(ctx context.Context, job *river.Job[ImportArgs]) error {
	im, err := w.db.Imports().ForWork(ctx, job.Args.ImportID)
	if err != nil {
		return err
	}
	if im.FinishedAt != nil {
		return nil
	}
	if im.CSV == "" && im.SourceURL != nil {
		data, err := fetchCSV(ctx, *im.SourceURL, w.allowed)
		if err != nil {
			return err
		}
		if err := w.db.Imports().SetCSV(ctx, im.ID, data); err != nil {
			return err
		}
		im.CSV = data
	}
	var welcome db.OnInserted
	if job.Args.SendWelcome {
		welcome = w.jobs.WelcomeManyTx
	}
	total, err := ImportCSV(ctx, w.db, w.cache, im.ID, im.RowsDone, strings.NewReader(im.CSV), welcome)
	if errors.Is(err, db.ErrImportMoved) {
		return river.JobSnooze(time.Second) // another attempt moved on: continue from its position
	}
	if err != nil {
		return err
	}
	return w.db.Imports().Finish(ctx, im.ID, total, time.Now())
}

// ImportCSV reads a CSV of users (a header row naming email and username,
// and optionally display_name and status, in any order) and applies it in
// batches from data row skip on. Every row is validated; bad rows are
// recorded with their line and reason and the good ones go in. It returns
// the number of data rows. After each batch, cached user lists are
// invalidated (c may be nil). onInserted, when not nil, runs in each
// batch's transaction with the ids of the users it inserted.
func ImportCSV(ctx context.Context, d *db.DB, c Invalidator, importID uuid.UUID, skip int, r io.Reader, onInserted db.OnInserted) (int, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return 0, river.JobCancel(model.Invalid("csv", "the file has no header row"))
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))] = i
	}
	if _, ok := col["email"]; !ok {
		return 0, river.JobCancel(model.Invalid("csv", "the header row must name an email column"))
	}
	if _, ok := col["username"]; !ok {
		return 0, river.JobCancel(model.Invalid("csv", "the header row must name a username column"))
	}
	field := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	var (
		rows      []db.ImportRow
		bad       []db.ImportError
		n, from   = 0, skip
		seenEmail = map[string]bool{}
	)
	flush := func() error {
		if n == from {
			return nil
		}
		count, err := d.ImportBatch(ctx, importID, from, n, rows, bad, time.Now(), onInserted)
		rows, bad, from = rows[:0], bad[:0], n
		if count > 0 {
			invalidate(ctx, c, "users")
		}
		return err
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				return 0, fmt.Errorf("error reading import CSV: %w", err)
			}
			line = pe.StartLine
		}
		n++
		if n <= skip {
			continue
		}
		if err != nil {
			bad = append(bad, db.ImportError{Line: line, Message: "not a valid CSV row"})
		} else if row, ierr := validateRow(line, field(rec, "email"), field(rec, "username"), field(rec, "display_name"), field(rec, "status")); ierr != nil {
			bad = append(bad, *ierr)
		} else if seenEmail[strings.ToLower(row.Email)] {
			bad = append(bad, db.ImportError{Line: line, Field: "email", Message: "repeats an earlier row"})
		} else {
			seenEmail[strings.ToLower(row.Email)] = true
			rows = append(rows, row)
		}
		if n-from >= importBatch {
			if err := flush(); err != nil {
				return 0, err
			}
		}
	}
	if err := flush(); err != nil {
		return 0, err
	}
	return n, nil
}

// validateRow applies the same rules as createUser.
func validateRow(line int, email, username, displayName, status string) (db.ImportRow, *db.ImportError) {
	fail := func(err error) (db.ImportRow, *db.ImportError) {
		var me *model.Error
		errors.As(err, &me)
		return db.ImportRow{}, &db.ImportError{Line: line, Field: me.Field, Message: me.Message}
	}
	if err := model.ValidateEmail("email", email); err != nil {
		return fail(err)
	}
	if err := model.ValidateUsername("username", username); err != nil {
		return fail(err)
	}
	if err := model.ValidateName("display_name", displayName); displayName != "" && err != nil {
		return fail(err)
	}
	st := model.UserStatusActive
	if status != "" {
		st = model.UserStatus(strings.ToUpper(status))
		if !st.Valid() {
			return fail(model.Invalid("status", "must be ACTIVE, PENDING, SUSPENDED or DEACTIVATED"))
		}
	}
	return db.ImportRow{Line: line, Email: email, Username: username, DisplayName: displayName, Status: st}, nil
}

// ImportURLAllowed reports whether an import may be fetched from rawURL:
// http(s) on one of the configured hosts (host or host:port), so the
// server cannot be used to reach arbitrary internal addresses.
func ImportURLAllowed(rawURL string, hosts []string) bool {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil {
		return false
	}
	return slices.Contains(hosts, u.Host) || slices.Contains(hosts, u.Hostname())
}

// fetchCSV downloads an import's source, bounded in size and time; a
// redirect must stay on the allowed hosts.
func fetchCSV(ctx context.Context, rawURL string, hosts []string) (string, error) {
	if !ImportURLAllowed(rawURL, hosts) {
		return "", river.JobCancel(model.Invalid("url", "imports from this host are not allowed"))
	}
	client := &http.Client{CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 || !ImportURLAllowed(req.URL.String(), hosts) {
			return errors.New("redirect refused")
		}
		return nil
	}}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return "", river.JobCancel(model.Invalid("url", "not a valid URL"))
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", model.Invalid("url", "the file could not be downloaded")
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", model.Invalid("url", "downloading the file answered HTTP %d", resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxImportBytes+1))
	if err != nil {
		return "", model.Invalid("url", "the download was interrupted")
	}
	if len(data) > MaxImportBytes {
		return "", river.JobCancel(model.Invalid("url", "the file is larger than 32 MiB"))
	}
	return string(data), nil
}
