package jobs_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/usergraph/usergraph/jobs"
)

// smtpServer is a real SMTP server inside the test process (go-smtp), the
// receiving side of delivery.
type smtpServer struct {
	mu       sync.Mutex
	messages []string
	addr     string
}

func (s *smtpServer) NewSession(*smtp.Conn) (smtp.Session, error) { return &smtpSession{srv: s}, nil }

type smtpSession struct{ srv *smtpServer }

func (*smtpSession) Reset()                               {}
func (*smtpSession) Logout() error                        { return nil }
func (*smtpSession) Mail(string, *smtp.MailOptions) error { return nil }
func (*smtpSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.srv.mu.Lock()
	s.srv.messages = append(s.srv.messages, string(b))
	s.srv.mu.Unlock()
	return nil
}

func startSMTP(t *testing.T) *smtpServer {
	t.Helper()
	be := &smtpServer{}
	be.addr = serveSMTP(t, be)
	return be
}

// serveSMTP runs a real SMTP server (go-smtp) for backend on a loopback
// port until the test ends, and returns its address.
func serveSMTP(t *testing.T, backend smtp.Backend) string {
	t.Helper()
	srv := smtp.NewServer(backend)
	srv.Domain = "localhost"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

func TestSMTPSender_DeliversWithIdempotencyHeaders(t *testing.T) {
	t.Parallel()
	srv := startSMTP(t)
	sender, err := jobs.NewSMTPSender("smtp://"+srv.addr, "Usergraph <noreply@example.com>")
	if err != nil {
		t.Fatal(err)
	}
	err = sender.Send(context.Background(), jobs.Email{To: "ada@example.com", Subject: "Welcome to Usergraph",
		Text: "plain body", HTML: "<p>html body</p>", IdempotencyKey: "welcome-42"})
	if err != nil {
		t.Fatal(err)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.messages) != 1 {
		t.Fatalf("messages received: %d", len(srv.messages))
	}
	m := srv.messages[0]
	for _, want := range []string{"Subject: Welcome to Usergraph", "Message-ID: <welcome-42@usergraph>",
		"X-Usergraph-Idempotency-Key: welcome-42", "plain body", "html body", "To: <ada@example.com>"} {
		if !strings.Contains(m, want) {
			t.Errorf("message lacks %q:\n%s", want, m)
		}
	}
}

func TestSMTPSender_RefusesBadURLs(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"http://mail.example.com", "smtp://", "::"} {
		if _, err := jobs.NewSMTPSender(u, "a@example.com"); err == nil || !strings.Contains(err.Error(), "SMTP_URL") {
			t.Errorf("%q: want an SMTP_URL error, got %v", u, err)
		}
	}
}

func TestFileSender_WritesEML(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := jobs.NewFileSender(dir, "noreply@example.com", slog.New(slog.DiscardHandler))
	if err := s.Send(context.Background(), jobs.Email{To: "ada@example.com", Subject: "Hello", Text: "body", IdempotencyKey: "k1"}); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	if len(files) != 1 {
		t.Fatalf("eml files: %v", files)
	}
	b, _ := os.ReadFile(files[0])
	if !strings.Contains(string(b), "Subject: Hello") || !strings.Contains(string(b), "body") {
		t.Fatalf("eml content:\n%s", b)
	}
}
