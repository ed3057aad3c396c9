package main

import (
	"context"
	"log/slog"
	"path/filepath"

	"github.com/usergraph/usergraph/jobs"
	"github.com/usergraph/usergraph/resolver"
)

// logMailer stands in for email delivery until SMTP delivery through
// background jobs exists. In development it logs the link so a developer can
// click through verification and reset from GraphiQL; in production it
// refuses to log links (they carry tokens) and reports the email as unsent.
type logMailer struct {
	log *slog.Logger
	dev bool
}

func (m logMailer) SendAccountEmail(ctx context.Context, e resolver.AccountEmail) error {
	if m.dev {
		m.log.InfoContext(ctx, "account email (development: not sent, link logged)", "to", e.To, "kind", e.Kind, "link", e.Link)
		return nil
	}
	m.log.WarnContext(ctx, "account email not sent: no mail delivery is configured", "kind", e.Kind)
	return nil
}

// logSender stands in for SMTP until it lands: it logs that an email would
// go out (recipient and subject, never a body that could carry a link).
type logSender struct{ log *slog.Logger }

func (s logSender) Send(ctx context.Context, e jobs.Email) error {
	s.log.InfoContext(ctx, "email (not sent: no SMTP configured)", "to", e.To, "subject", e.Subject)
	return nil
}

// newSender picks email delivery: SMTP when SMTP_URL is set; on the embedded
// default, .eml files under DATA_DIR/mail; otherwise log-only.
func newSender(cfg Config, log *slog.Logger) (jobs.Sender, error) {
	switch {
	case cfg.SMTPURL != "":
		return jobs.NewSMTPSender(cfg.SMTPURL, cfg.MailFrom)
	case cfg.Embedded:
		dir := filepath.Join(cfg.DataDir, "mail")
		log.Info("SMTP_URL is unset: emails are written as .eml files", "dir", dir)
		return jobs.NewFileSender(dir, cfg.MailFrom), nil
	default:
		log.Warn("SMTP_URL is unset: emails are not sent")
		return logSender{log: log}, nil
	}
}
