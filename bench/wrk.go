package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// load is one wrk run's outcome.
type load struct {
	RPS      float64
	P50, P99 time.Duration
	Requests int64
	Errors   int64 // non-2xx answers and GraphQL errors, counted by the script
	// ErrorSample is the first such answer: its status and the start of
	// its body.
	ErrorSample string
}

// luaScript writes a wrk script that POSTs bodies (a random one per
// request, or, with unique, a template whose %d is replaced by a number
// unique across threads) and counts every answer that is not a 200 without
// "errors" in its body. With gzip it asks for gzip, as browsers do, and
// counts every answer that is not a gzipped 200 (the bench checks one
// answer's content before the load; see checkGzip).
func luaScript(dir, name, token string, bodies []string, unique, gzip bool) (string, error) {
	var b strings.Builder
	b.WriteString("wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\n")
	if token != "" {
		fmt.Fprintf(&b, "wrk.headers[\"Authorization\"] = \"Bearer %s\"\n", token)
	}
	if gzip {
		b.WriteString("wrk.headers[\"Accept-Encoding\"] = \"gzip\"\n")
	}
	b.WriteString("local bodies = {\n")
	for _, body := range bodies {
		fmt.Fprintf(&b, "  %q,\n", body)
	}
	b.WriteString(`}
local threads = {}
local nthreads = 0
function setup(thread)
  nthreads = nthreads + 1
  thread:set("tid", nthreads)
  table.insert(threads, thread)
end
errors = 0
n = 0
function request()
  n = n + 1
  local body = bodies[math.random(#bodies)]
`)
	if unique {
		// Unique across threads, and across runs (warm-up and measured
		// runs are separate wrk processes): a per-script nonce leads.
		fmt.Fprintf(&b, "  body = string.gsub(body, \"%%%%d\", \"%d\" .. tostring(tid * 100000000 + n))\n", time.Now().UnixNano()%1_000_000)
	}
	failed := `status ~= 200 or string.find(body, '"errors"', 1, true)`
	if gzip {
		failed = `status ~= 200 or headers["Content-Encoding"] ~= "gzip"`
	}
	b.WriteString(`  return wrk.format(nil, nil, nil, body)
end
function response(status, headers, body)
  if ` + failed + ` then
    errors = errors + 1
    if errors == 1 then sample = status .. " " .. string.gsub(string.sub(body, 1, 300), "\n", " ") end
  end
end
function done(summary, latency, requests)
  local e = 0
  for _, t in ipairs(threads) do
    e = e + t:get("errors")
    local s = t:get("sample")
    if s then io.write("SCRIPT_ERROR_SAMPLE " .. s .. "\n") end
  end
  io.write(string.format("SCRIPT_ERRORS %d\n", e))
end
`)
	path := filepath.Join(dir, name+".lua")
	return path, os.WriteFile(path, []byte(b.String()), 0o644)
}

// runWrk drives url with the script for d over conns keep-alive
// connections (wrk's own threads: 2, one per core).
func runWrk(ctx context.Context, url, script string, conns int, d time.Duration) (load, error) {
	cmd := exec.CommandContext(ctx, "wrk", "-t2", "-c"+strconv.Itoa(conns), "-d"+strconv.Itoa(int(d.Seconds()))+"s",
		"--latency", "-s", script, url)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return load{}, fmt.Errorf("wrk: %v\n%s", err, out)
	}
	return parseWrk(string(out))
}

var (
	rpsRe      = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	pctRe      = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
	requestsRe = regexp.MustCompile(`(\d+) requests in`)
	scriptRe   = regexp.MustCompile(`SCRIPT_ERRORS (\d+)`)
	sampleRe   = regexp.MustCompile(`SCRIPT_ERROR_SAMPLE (.*)`)
)

func parseWrk(out string) (load, error) {
	var l load
	m := rpsRe.FindStringSubmatch(out)
	if m == nil {
		return l, fmt.Errorf("wrk printed no Requests/sec:\n%s", out)
	}
	l.RPS, _ = strconv.ParseFloat(m[1], 64)
	if m := requestsRe.FindStringSubmatch(out); m != nil {
		l.Requests, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := scriptRe.FindStringSubmatch(out); m != nil {
		l.Errors, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := sampleRe.FindStringSubmatch(out); m != nil {
		l.ErrorSample = m[1]
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		m := pctRe.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		v, _ := strconv.ParseFloat(m[2], 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[m[3]]
		d := time.Duration(v * float64(unit))
		if m[1] == "50" {
			l.P50 = d
		} else {
			l.P99 = d
		}
	}
	return l, nil
}
