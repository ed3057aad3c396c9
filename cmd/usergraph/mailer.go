package main

import (
	"context"
	"log/slog"
	"path/filepath"

	"github.com/usergraph/usergraph/jobs"
)

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
		return jobs.NewFileSender(dir, cfg.MailFrom, log), nil
	default:
		log.Warn("SMTP_URL is unset: emails are not sent")
		return logSender{log: log}, nil
	}
}
