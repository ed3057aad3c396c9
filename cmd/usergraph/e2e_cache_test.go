package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// An operator imports a client's manifest with `usergraph persisted import`
// and serves in persisted-only mode: the manifest's operations run by hash,
// anything else is refused; the cache metrics are on their own listener.
func TestE2E_PersistedOnlyWithAnImportedManifestAndMetrics(t *testing.T) {
	t.Parallel()
	dataDir := reachableTempDir(t)
	login := `mutation Login($i: String!, $p: String!) { login(input: {identifier: $i, password: $p}) { token } }`
	roles := `query Roles { roles(first: 3) { nodes { name } } }`
	manifest := map[string]any{"format": "apollo-persisted-query-manifest", "version": 1, "operations": []map[string]any{
		{"id": sha(login), "name": "Login", "type": "mutation", "body": login},
		{"id": sha(roles), "name": "Roles", "type": "query", "body": roles},
	}}
	path := filepath.Join(dataDir, "manifest.json")
	raw, _ := json.Marshal(manifest)
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dataDir, "bad.json")
	_ = os.WriteFile(bad, bytes.Replace(raw, []byte(sha(roles)), []byte(strings.Repeat("a", 64)), 1), 0o644)
	run := func(args ...string) (string, error) {
		cmd := exec.Command(binary, append(args, "--data-dir", dataDir, "--log-format", "text")...)
		cmd.Env = append(os.Environ(), "DATABASE_URL=")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("persisted", "import", bad); err == nil || !strings.Contains(out, "not the SHA-256 of its body") {
		t.Fatalf("a manifest with a wrong id: %v\n%s", err, out)
	}
	if out, err := run("persisted", "import", path); err != nil || !strings.Contains(out, "imported 2 operations (2 new)") {
		t.Fatalf("persisted import: %v\n%s", err, out)
	}

	s := startServeIn(t, dataDir, "PERSISTED_ONLY=true", "METRICS_ADDR=127.0.0.1:0")
	byHash := func(token, query string, vars map[string]any) map[string]any {
		t.Helper()
		_, raw := sendGraphQL(t, s.url, token, map[string]any{"variables": vars,
			"extensions": map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": sha(query)}}})
		var out map[string]any
		_ = json.Unmarshal(raw, &out)
		return out
	}
	r := byHash("", login, map[string]any{"i": "admin@example.com", "p": "usergraph-demo-admin"})
	token, _ := r["data"].(map[string]any)["login"].(map[string]any)["token"].(string)
	if token == "" {
		t.Fatalf("login by hash: %v", r)
	}
	if r := byHash(token, roles, nil); !strings.Contains(jsonString(r), `"name":"admin"`) {
		t.Fatalf("roles by hash: %v", r)
	}
	resp, err := http.Post(s.url+"/graphql", "application/json", strings.NewReader(`{"query":"{ roles(first: 1) { nodes { name } } }"}`))
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(plain), "PERSISTED_QUERY_REQUIRED") {
		t.Fatalf("a plain document in persisted-only mode: %s", plain)
	}

	m := regexp.MustCompile(`metrics are served" url=(http://[0-9.:]+/metrics)`).FindStringSubmatch(s.logs.String())
	if m == nil {
		t.Fatalf("no metrics address logged:\n%s", s.logs.String())
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(m[1])
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(body), `usergraph_cache_breaker_state{state="closed"} 1`) &&
				strings.Contains(string(body), "usergraph_cache_lookups_total") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("metrics:\n%s", body)
			}
		} else if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // polling the server's listener
	}
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
