// Package browsertest drives the Playground in a real headless Chromium, so
// that tests prove what a unit test of the handler cannot: that the vendored
// GraphiQL actually boots under the page's Content-Security-Policy, talks to
// the endpoint and shows the answer. Only tests import it.
package browsertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// ErrNoChromium is returned by RunQuery and OpenStyledUI when ChromiumPath
// finds no browser.
// Its text says how to install one, because a test that needs a browser
// must fail with a fix in hand rather than skip and pass unnoticed.
var ErrNoChromium = errors.New("no Chromium executable found: install the Debian package chromium (apt-get install -y chromium)")

// Selectors of GraphiQL 3 (see ../assets/VERSIONS.txt). CodeMirror 5 puts its
// editor object on the wrapper element's CodeMirror property, which is how
// the query is set and the result read without simulating keystrokes.
const (
	queryEditorSelector      = ".graphiql-query-editor .CodeMirror"
	resultSelector           = ".result-window .CodeMirror"
	executeSelector          = ".graphiql-execute-button"
	settingsSelector         = `.graphiql-sidebar button[aria-label="Open settings dialog"]`
	dialogSelector           = ".graphiql-dialog"
	codeMirrorPromptSelector = ".graphiql-query-editor .CodeMirror-dialog"
)

// pollInterval is how often the helpers check the page while they wait. The
// waits are polled from Go, not with chromedp.Poll, because that builds its
// predicate with new Function, which the page's CSP (no 'unsafe-eval')
// rightly blocks.
const pollInterval = 50 * time.Millisecond

// settleDelay is how long RunQuery and OpenStyledUI let the page run after
// their last action before they read the console. It is not a timing
// assertion: a slow page only makes a late report more likely to be missed.
const settleDelay = 200 * time.Millisecond

// ChromiumPath returns the Chromium executable, or "" when none is installed
// (tests then fail with a clear message, they do not skip silently).
func ChromiumPath() string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	// PATH may be minimal under CI; Debian's package installs here.
	if fi, err := os.Stat("/usr/bin/chromium"); err == nil && !fi.IsDir() {
		return "/usr/bin/chromium"
	}
	return ""
}

// RunQuery opens the Playground at pageURL in headless Chromium, replaces the
// editor's query with query, runs it, and returns the text shown in the result
// pane. It also returns an error if the browser console logged a
// Content-Security-Policy violation or a JavaScript exception.
//
// Each call starts its own browser with a fresh profile, so GraphiQL's saved
// tabs from an earlier run cannot leak into the next one. ctx bounds the whole
// run and should carry a deadline.
func RunQuery(ctx context.Context, pageURL, query string) (result string, err error) {
	s, err := open(ctx, pageURL)
	if err != nil {
		return "", err
	}
	defer s.close()

	q, err := json.Marshal(query)
	if err != nil {
		return "", fmt.Errorf("error encoding query: %w", err)
	}
	setQuery := fmt.Sprintf(`document.querySelector(%q).CodeMirror.setValue(%s)`, queryEditorSelector, q)
	if err := chromedp.Do(s.ctx, chromedp.Evaluate[chromedp.Void](setQuery)); err != nil {
		return "", fmt.Errorf("error setting the query: %w", err)
	}
	if err := chromedp.Do(s.ctx, chromedp.Click(executeSelector)); err != nil {
		return "", fmt.Errorf("error clicking the execute button: %w", err)
	}

	readResult := fmt.Sprintf(`(function () {
		var el = document.querySelector(%q);
		return el && el.CodeMirror ? el.CodeMirror.getValue() : '';
	})()`, resultSelector)
	result, err = waitFor[string](s.ctx, s.console, readResult)
	if err != nil {
		return "", fmt.Errorf("error waiting for the query result: %w", err)
	}
	return result, s.settle()
}

// OpenStyledUI opens the Playground at pageURL and then the two parts of
// GraphiQL that add styles at run time: the settings dialog, whose scroll lock
// injects a <style> element, and CodeMirror's jump-to-line prompt, which is
// built from HTML with style attributes. It returns an error if the browser
// console logged a Content-Security-Policy violation or a JavaScript
// exception. It exists to prove that the page's CSP allows exactly these, and
// to catch a GraphiQL upgrade that needs something new.
func OpenStyledUI(ctx context.Context, pageURL string) error {
	s, err := open(ctx, pageURL)
	if err != nil {
		return err
	}
	defer s.close()

	if err := chromedp.Do(s.ctx, chromedp.Click(settingsSelector)); err != nil {
		return fmt.Errorf("error clicking the settings button: %w", err)
	}
	dialogOpen := fmt.Sprintf(`!!document.querySelector(%q)`, dialogSelector)
	if _, err := waitFor[bool](s.ctx, s.console, dialogOpen); err != nil {
		return fmt.Errorf("error waiting for the settings dialog: %w", err)
	}
	if err := chromedp.Do(s.ctx, chromedp.KeyEvent(kb.Escape)); err != nil {
		return fmt.Errorf("error closing the settings dialog: %w", err)
	}

	// execCommand runs what the Alt-G key binding runs, without depending
	// on where the keyboard focus is.
	jump := fmt.Sprintf(`document.querySelector(%q).CodeMirror.execCommand('jumpToLine')`, queryEditorSelector)
	if err := chromedp.Do(s.ctx, chromedp.Evaluate[chromedp.Void](jump)); err != nil {
		return fmt.Errorf("error opening the jump-to-line prompt: %w", err)
	}
	promptOpen := fmt.Sprintf(`!!document.querySelector(%q)`, codeMirrorPromptSelector)
	if _, err := waitFor[bool](s.ctx, s.console, promptOpen); err != nil {
		return fmt.Errorf("error waiting for the jump-to-line prompt: %w", err)
	}
	return s.settle()
}

// session is one browser showing the Playground, with its console watched.
type session struct {
	ctx     context.Context // the tab
	console *consoleProblems
	cancel  func()
}

// open starts Chromium, loads pageURL and waits until GraphiQL's query editor
// is on screen.
func open(ctx context.Context, pageURL string) (*session, error) {
	exe := ChromiumPath()
	if exe == "" {
		return nil, ErrNoChromium
	}

	// Chromium leaves its process-singleton socket directory in TMPDIR when
	// it is killed rather than quit, which is how every run ends; a private
	// TMPDIR keeps that litter out of the machine's /tmp.
	tmpDir, err := os.MkdirTemp("", "browsertest-tmp-")
	if err != nil {
		return nil, fmt.Errorf("error creating Chromium's temporary directory: %w", err)
	}

	// chromedp's defaults are Puppeteer's quiet-browser flags; the ones our
	// environment depends on are repeated so that they do not rest on a
	// library default. No user-data-dir is given: chromedp then creates a
	// fresh temporary one and removes it (with retries for Chromium's
	// crash handler, which outlives the browser) when the allocator ends.
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox, // we run as root, where the sandbox cannot start
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Env("TMPDIR="+tmpDir),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	console := &consoleProblems{}
	tabCtx, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithListener(console.listen))
	s := &session{ctx: tabCtx, console: console, cancel: func() {
		cancelTab()
		cancelAlloc() // waits for Chromium to exit
		// Best effort: a leftover empty directory in /tmp is not worth
		// failing a test that otherwise passed.
		_ = os.RemoveAll(tmpDir)
	}}

	if err := chromedp.Do(tabCtx, chromedp.Navigate(pageURL)); err != nil {
		s.close()
		return nil, fmt.Errorf("error opening %s in Chromium: %w", pageURL, err)
	}
	editorReady := fmt.Sprintf(`!!document.querySelector(%q)`, queryEditorSelector)
	if _, err := waitFor[bool](tabCtx, console, editorReady); err != nil {
		s.close()
		return nil, fmt.Errorf("error waiting for the GraphiQL query editor: %w", err)
	}
	return s, nil
}

// close stops the browser and waits for it to exit.
func (s *session) close() { s.cancel() }

// settle gives the page a moment for reports that Chromium posts as tasks
// (a CSP violation is reported after the action that caused it), then
// returns the problems seen. WithListener sees every event that arrived
// before the reply to the last command, so after that round trip nothing
// logged so far is missed.
func (s *session) settle() error {
	wait := fmt.Sprintf(`new Promise(function (resolve) { setTimeout(resolve, %d); })`, settleDelay.Milliseconds())
	if err := chromedp.Do(s.ctx, chromedp.Evaluate[chromedp.Void](wait, chromedp.EvalAwaitPromise)); err != nil {
		return fmt.Errorf("error waiting for the page to settle: %w", err)
	}
	return s.console.err()
}

// waitFor evaluates expression until it yields a non-zero value, the console
// reports a problem, or ctx ends.
func waitFor[T comparable](ctx context.Context, console *consoleProblems, expression string) (T, error) {
	var zero T
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expression))
		if err != nil {
			return zero, fmt.Errorf("error evaluating %q: %w", expression, err)
		}
		if v != zero {
			return v, nil
		}
		if err := console.err(); err != nil {
			return zero, err
		}
		select {
		case <-ctx.Done():
			return zero, fmt.Errorf("%w (last console messages: %s)", ctx.Err(), console.recent())
		case <-tick.C:
		}
	}
}

// consoleProblems collects what the page's console reports. Its listen method
// runs on chromedp's reader goroutine, hence the lock.
type consoleProblems struct {
	mu       sync.Mutex
	problems []string // CSP violations and uncaught exceptions
	messages []string // everything, for context when a wait times out
}

func (c *consoleProblems) listen(ev any) {
	var text string
	var problem bool
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		text = "exception: " + exceptionText(ev.ExceptionDetails)
		problem = true
	case *runtime.EventConsoleAPICalled:
		var parts []string
		for _, a := range ev.Args {
			parts = append(parts, remoteText(a))
		}
		text = "console." + string(ev.Type) + ": " + strings.Join(parts, " ")
		problem = isCSPViolation(text)
	case *log.EventEntryAdded:
		text = "log " + string(ev.Entry.Source) + " " + string(ev.Entry.Level) + ": " + ev.Entry.Text
		problem = isCSPViolation(text)
	default:
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.messages = append(c.messages, text)
	if problem {
		c.problems = append(c.problems, text)
	}
}

// err returns the problems seen so far as one error, or nil.
func (c *consoleProblems) err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.problems) == 0 {
		return nil
	}
	return fmt.Errorf("browser console reported %d problem(s):\n%s", len(c.problems), strings.Join(c.problems, "\n"))
}

// recent returns the last few console messages.
func (c *consoleProblems) recent() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.messages
	if len(m) > 10 {
		m = m[len(m)-10:]
	}
	if len(m) == 0 {
		return "none"
	}
	return strings.Join(m, " | ")
}

// isCSPViolation matches Chromium's wording ("... because it violates the
// following Content Security Policy directive ...").
func isCSPViolation(text string) bool {
	return strings.Contains(text, "Content Security Policy") ||
		strings.Contains(text, "Content-Security-Policy")
}

func exceptionText(d *runtime.ExceptionDetails) string {
	if d == nil {
		return "unknown exception"
	}
	text := d.Text
	if d.Exception != nil {
		text += " " + remoteText(d.Exception)
	}
	return fmt.Sprintf("%s (%s:%d:%d)", text, d.URL, d.LineNumber, d.ColumnNumber)
}

// remoteText renders a console argument or exception value.
func remoteText(o *runtime.RemoteObject) string {
	if o == nil {
		return "null"
	}
	if o.Description != "" {
		return o.Description
	}
	if len(o.Value) > 0 {
		var s string
		if err := json.Unmarshal(o.Value, &s); err == nil {
			return s
		}
		return string(o.Value)
	}
	return string(o.Type)
}
