package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	mail "github.com/wneessen/go-mail"
)

// SMTPSender delivers email over SMTP with go-mail. smtp:// upgrades with
// STARTTLS when the server offers it; smtps:// is implicit TLS; user and
// password come from the URL.
type SMTPSender struct {
	from string
	opts []mail.Option
	host string
}

// NewSMTPSender parses SMTP_URL (smtp[s]://[user:password@]host[:port]).
func NewSMTPSender(rawURL, from string) (*SMTPSender, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Hostname() == "" {
		return nil, fmt.Errorf("SMTP_URL: must look like smtp://user:password@host:587")
	}
	opts := []mail.Option{mail.WithTimeout(10 * time.Second)}
	switch u.Scheme {
	case "smtp":
		opts = append(opts, mail.WithTLSPolicy(mail.TLSOpportunistic), mail.WithPort(portOr(u, 587)))
	case "smtps":
		opts = append(opts, mail.WithSSL(), mail.WithPort(portOr(u, 465)))
	default:
		return nil, fmt.Errorf("SMTP_URL: scheme must be smtp or smtps, got %q", u.Scheme)
	}
	if u.User != nil {
		pw, _ := u.User.Password()
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover), mail.WithUsername(u.User.Username()), mail.WithPassword(pw))
	}
	return &SMTPSender{from: from, opts: opts, host: u.Hostname()}, nil
}

func portOr(u *url.URL, def int) int {
	if p, err := strconv.Atoi(u.Port()); err == nil {
		return p
	}
	return def
}

// Send implements Sender.
func (s *SMTPSender) Send(ctx context.Context, e Email) error {
	m, err := message(s.from, e)
	if err != nil {
		return err
	}
	c, err := mail.NewClient(s.host, s.opts...)
	if err != nil {
		return fmt.Errorf("error configuring SMTP: %w", err)
	}
	if err := c.DialAndSendWithContext(ctx, m); err != nil {
		return classify(err)
	}
	return nil
}

// classify marks a 5xx answer to the envelope or the message as permanent:
// that recipient or message will never be accepted. Everything else (the
// server down, 4xx, a failed login, a timeout) is temporary and retried with
// backoff, so mail goes out once the server recovers.
func classify(err error) error {
	var se *mail.SendError
	if errors.As(err, &se) && !se.IsTemp() && se.ErrorCode() >= 500 && se.ErrorCode() < 600 {
		switch se.Reason {
		case mail.ErrSMTPMailFrom, mail.ErrSMTPRcptTo, mail.ErrSMTPData, mail.ErrSMTPDataClose:
			return &PermanentError{Code: se.ErrorCode(), Err: err}
		}
	}
	return &TemporaryError{Err: fmt.Errorf("error sending email: %w", err)}
}

// FileSender writes each message as an .eml file instead of sending it, and
// logs its action link: the development default, so a developer can click
// through verification and reset. Never use it in production: the link
// holds a token.
type FileSender struct {
	dir  string
	from string
	log  *slog.Logger
}

// NewFileSender writes messages under dir and logs their links to log.
func NewFileSender(dir, from string, log *slog.Logger) *FileSender {
	return &FileSender{dir: dir, from: from, log: log}
}

// Send implements Sender.
func (s *FileSender) Send(_ context.Context, e Email) error {
	m, err := message(s.from, e)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return fmt.Errorf("error creating mail directory: %w", err)
	}
	name := filepath.Join(s.dir, time.Now().UTC().Format("20060102T150405.000000000")+"-"+e.IdempotencyKey+".eml")
	if err := m.WriteToFile(name); err != nil {
		return fmt.Errorf("error writing email file: %w", err)
	}
	s.log.Info("email written (development: not sent)", "file", name, "to", e.To, "subject", e.Subject, "link", e.Link)
	return nil
}

// message builds the MIME message. The idempotency key (the job's id) goes
// into the Message-ID and a header of its own, so a retry after a crash is
// recognisable as the same email.
func message(from string, e Email) (*mail.Msg, error) {
	m := mail.NewMsg()
	if err := m.From(from); err != nil {
		return nil, fmt.Errorf("MAIL_FROM: %w", err)
	}
	if err := m.To(e.To); err != nil {
		return nil, fmt.Errorf("error addressing email: %w", err)
	}
	m.Subject(e.Subject)
	if e.IdempotencyKey != "" {
		m.SetMessageIDWithValue(e.IdempotencyKey + "@usergraph")
		m.SetGenHeader("X-Usergraph-Idempotency-Key", e.IdempotencyKey)
	}
	m.SetBodyString(mail.TypeTextPlain, e.Text)
	if e.HTML != "" {
		m.AddAlternativeString(mail.TypeTextHTML, e.HTML)
	}
	return m, nil
}
