# Usergraph: `make run` starts the server on an embedded PostgreSQL;
# `make test` installs what is missing and runs every test.

GO      ?= go
BIN     := bin/usergraph
PKGS    := ./...

.PHONY: run build test test-only deps lint generate check-generated bench bench-go fuzz scale-test validate-deploy clean help

help:
	@echo "make run              serve on http://127.0.0.1:8080 (embedded PostgreSQL in ./.data)"
	@echo "make test             install missing tools, check generated code and lint, run every test with -race"
	@echo "make generate         regenerate gqlgen output after editing graph/*.graphqls"
	@echo "make build            build $(BIN)"
	@echo "make fuzz             run every fuzz target for FUZZTIME (default 30s) each"
	@echo "make scale-test       3 instances behind nginx and HAProxy, PgBouncer, a streaming replica (scaletest/)"
	@echo "make bench            the load-test suite at 1M users with wrk (writes bench/results/)"
	@echo "make bench-go         in-process Go benchmarks (queries, caching, job throughput)"

build:
	$(GO) build -o $(BIN) ./cmd/usergraph

run: build
	./$(BIN) serve --log-format text

deps:
	./scripts/install-deps.sh

generate:
	$(GO) run github.com/99designs/gqlgen generate

check-generated:
	./scripts/check-generated.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

test: deps check-generated lint test-only

# The second pass runs the tests built only without -race (argon2id-bound
# ones, which the race detector would slow sixfold).
test-only:
	$(GO) test -race -count=1 -timeout 20m $(PKGS)
	$(GO) test -count=1 -timeout 10m -run 'Registrations' ./resolver/

# Scale-out on real servers: 3 instances behind nginx and HAProxy from
# deploy/ (rolling restarts, SIGKILL), PgBouncer in transaction mode, a
# streaming replica made with pg_basebackup. CI runs it after `make test`.
scale-test:
	./scripts/install-scale-deps.sh
	USERGRAPH_SCALE_TEST=1 $(GO) test -count=1 -timeout 20m -v ./scaletest/

# Deployment files, offline: kubeconform -strict on deploy/k8s (as written
# and as kustomize renders it) and `docker compose config` when a compose
# client exists. Tools and schemas come from the Go module proxy, cached in
# .data/deploy-tools.
validate-deploy:
	./scripts/validate-deploy.sh

# The suite: 1M users, usergraph serve in production mode, wrk against a
# ceiling handler measured in the same run. BENCH_FLAGS passes options
# (e.g. BENCH_FLAGS="-users 100000 -duration 5s"); see go run ./bench -h.
bench:
	./scripts/install-bench-deps.sh
	$(GO) run ./bench $(BENCH_FLAGS)

# In-process Go benchmarks: query latency per batch window, caching modes,
# enumeration timing, job throughput.
bench-go: deps
	$(GO) test -run '^$$' -bench . -benchtime 200x ./resolver/
	$(GO) test -run '^$$' -bench JobThroughput -benchtime 5000x ./jobs/

# Each fuzz target runs alone for FUZZTIME; new failures are written under
# the package's testdata/fuzz, which plain `go test` then replays.
FUZZTIME ?= 30s
FUZZ_TARGETS := ./model:FuzzParseGlobalID ./model:FuzzValidateInput ./auth:FuzzValidatePassword \
	./db:FuzzDecodeCursor ./db:FuzzCursorRoundTrip ./db:FuzzParsePage ./server:FuzzShapeLimits ./resolver:FuzzHandler

fuzz: deps
	@set -e; for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; name=$${t##*:}; \
		echo "== $$name ($$pkg, $(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) $$pkg; done

clean:
	rm -rf bin
