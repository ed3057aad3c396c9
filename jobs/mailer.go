package jobs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"log/slog"
	"net/url"
	texttemplate "text/template"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"

	"github.com/usergraph/usergraph/db"
	"github.com/usergraph/usergraph/model"
)

// Product is the name emails are signed with.
const Product = "Usergraph"

// mailer renders and delivers the emails of every email job, and turns a
// permanent refusal into an audit event and a discarded job.
type mailer struct {
	db         *db.DB
	sender     Sender
	publicURL  *url.URL
	log        *slog.Logger
	recipients *recipients
}

// letter is what a template needs.
type letter struct {
	Product string
	Name    string // greeting name
	Intro   string // one sentence on why the email was sent
	Link    string // the action link, if any
	Action  string // the link's label
	Details []string
	Outro   string
}

var (
	textTmpl = texttemplate.Must(texttemplate.New("text").Parse(`Hello {{.Name}},

{{.Intro}}
{{range .Details}}
  {{.}}{{end}}
{{if .Link}}
{{.Action}}:
{{.Link}}
{{end}}
{{.Outro}}

-- {{.Product}}
`))
	htmlTmpl = htmltemplate.Must(htmltemplate.New("html").Parse(`<!doctype html>
<html><body style="font-family:sans-serif;line-height:1.5">
<p>Hello {{.Name}},</p>
<p>{{.Intro}}</p>
{{if .Details}}<ul>{{range .Details}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{if .Link}}<p><a href="{{.Link}}">{{.Action}}</a></p>{{end}}
{{if .Outro}}<p>{{.Outro}}</p>{{end}}
<p>&mdash; {{.Product}}</p>
</body></html>
`))
)

// deliver renders l for u and sends it. A permanent refusal is recorded in
// the audit log against the user and ends the job without retries.
func (m *mailer) deliver(ctx context.Context, jobID int64, kind string, u *model.User, subject string, l letter) error {
	l.Product = Product
	if l.Name = u.DisplayName; l.Name == "" {
		l.Name = u.Username
	}
	if l.Name == "" {
		l.Name = "there"
	}
	var text, html bytes.Buffer
	if err := textTmpl.Execute(&text, l); err != nil {
		return fmt.Errorf("error rendering email: %w", err)
	}
	if err := htmlTmpl.Execute(&html, l); err != nil {
		return fmt.Errorf("error rendering email: %w", err)
	}
	err := m.sender.Send(ctx, Email{To: u.Email, Subject: subject, Text: text.String(), HTML: html.String(),
		IdempotencyKey: fmt.Sprintf("%s-%d", kind, jobID), Link: l.Link})
	var perm *PermanentError
	if errors.As(err, &perm) {
		meta := fmt.Sprintf(`{"job_id": %d, "kind": %q, "smtp_code": %d}`, jobID, kind, perm.Code)
		target := string(model.KindUser)
		if aerr := m.db.Audit().Record(ctx, &db.AuditEvent{OccurredAt: time.Now(), Action: "email.undeliverable",
			TargetType: &target, TargetID: &u.ID, Metadata: []byte(meta)}); aerr != nil {
			return fmt.Errorf("error recording undeliverable email: %w", aerr) // retry: the record must not be lost
		}
		return river.JobCancel(err)
	}
	return err
}

// link is the public URL with path and query.
func (m *mailer) link(path string, q url.Values) string {
	l := *m.publicURL
	l.Path += path
	l.RawQuery = q.Encode()
	return l.String()
}

// recipient loads the user an email goes to; nil when they are gone.
func (m *mailer) recipient(ctx context.Context, id uuid.UUID) (*model.User, error) {
	return m.recipients.get(ctx, id)
}
