#!/usr/bin/env bash
# Fails when the committed gqlgen output differs from what the schema
# generates: regenerate, compare, and restore nothing (the regenerated files
# are the truth; the failure tells you to commit them).
set -euo pipefail
files() { ls graph/generated.go graph/models_gen.go resolver/*.resolvers.go 2>/dev/null; }
before=$(files | xargs sha256sum)
go run github.com/99designs/gqlgen generate
after=$(files | xargs sha256sum)
if [ "$before" != "$after" ]; then
  echo "gqlgen output is stale: run 'make generate' and commit the result" >&2
  diff <(echo "$before") <(echo "$after") >&2 || true
  exit 1
fi
