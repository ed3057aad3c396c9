#!/usr/bin/env bash
# Validates the deployment files offline, from a clean clone:
#   - deploy/k8s: every manifest, and kustomize's rendering of them, against
#     the Kubernetes API's schemas with kubeconform -strict (a misspelt or
#     misplaced field fails);
#   - docker-compose.yml: `docker compose config`, and that every file it
#     bind-mounts exists, when a compose client is installed (skipped
#     otherwise; COMPOSE_FROM_SOURCE=1 builds one).
# kubeconform would download its schemas from GitHub; here they are derived
# from the OpenAPI document that the k8s.io/kubernetes Go module ships
# (scripts/openapi2jsonschema), so everything comes from the Go module proxy.
# Tools and schemas are cached beside Go's build cache, which outlives a
# clone: the first run takes a minute or two (building kustomize), later
# ones a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

# 1.30 is the oldest release whose preStop has the sleep action.
K8S_VERSION=${K8S_VERSION:-1.34.2}
KUBECONFORM_VERSION=v0.8.0
KUSTOMIZE_VERSION=v5.8.1
COMPOSE_VERSION=v2.40.3
cache=${DEPLOY_TOOLS_DIR:-$(dirname "$(go env GOCACHE)")/usergraph-deploy-tools}
mkdir -p "$cache"

# tool NAME PACKAGE VERSION installs a Go program once, into a directory of
# its own version, and prints its path.
tool() {
  local dir="$cache/$1-$3"
  if [ ! -x "$dir/$1" ]; then
    echo "installing $2@$3" >&2
    rm -rf "$dir.tmp"
    GOBIN="$dir.tmp" go install "$2@$3" >&2
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
  fi
  echo "$dir/$1"
}

# compose_from_source builds the docker compose CLI once and prints its path.
# Its go.mod has exclude directives, which `go install pkg@version` refuses,
# so it is built inside a throwaway module that repeats them.
compose_from_source() {
  local dir="$cache/docker-compose-$COMPOSE_VERSION"
  if [ ! -x "$dir/docker-compose" ]; then
    echo "building docker compose $COMPOSE_VERSION (several minutes, once)" >&2
    local mod
    mod=$(mktemp -d)
    (cd / && GOWORK=off go mod download "github.com/docker/compose/v2@$COMPOSE_VERSION")
    sed 's#^module .*#module composebuild#' \
      "$(go env GOMODCACHE)/cache/download/github.com/docker/compose/v2/@v/$COMPOSE_VERSION.mod" >"$mod/go.mod"
    printf '\nrequire github.com/docker/compose/v2 %s\n' "$COMPOSE_VERSION" >>"$mod/go.mod"
    rm -rf "$dir.tmp"
    (cd "$mod" && GOWORK=off GOFLAGS=-mod=mod go build -o "$dir.tmp/docker-compose" github.com/docker/compose/v2/cmd) >&2
    rm -rf "$mod" "$dir" && mv "$dir.tmp" "$dir"
  fi
  echo "$dir/docker-compose"
}

kubeconform=$(tool kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION")
kustomize=$(tool kustomize sigs.k8s.io/kustomize/kustomize/v5 "$KUSTOMIZE_VERSION")

# The schemas depend on the Kubernetes version and on the converter.
converter=$(sha256sum <scripts/openapi2jsonschema/main.go | cut -c1-12)
schemas="$cache/schemas-v$K8S_VERSION-$converter"
if [ ! -f "$schemas/deployment-apps-v1.json" ]; then
  echo "deriving the Kubernetes v$K8S_VERSION JSON schemas" >&2
  # Outside any module, so this repository's go.mod and go.sum stay as they are.
  (cd / && GOWORK=off go mod download "k8s.io/kubernetes@v$K8S_VERSION")
  spec="$(go env GOMODCACHE)/k8s.io/kubernetes@v$K8S_VERSION/api/openapi-spec/swagger.json"
  rm -rf "$schemas.tmp"
  go run ./scripts/openapi2jsonschema -in "$spec" -out "$schemas.tmp" >&2
  rm -rf "$schemas" && mv "$schemas.tmp" "$schemas"
fi
check=("$kubeconform" -strict -summary -kubernetes-version "$K8S_VERSION"
  -schema-location "$schemas/{{ .ResourceKind }}{{ .KindSuffix }}.json")

status=0
echo "== deploy/k8s (Kubernetes $K8S_VERSION)"
for f in deploy/k8s/*.yaml; do
  name=$(basename "$f")
  if [ "$name" != kustomization.yaml ] && ! grep -Eq "^[[:space:]]*-[[:space:]]+${name//./\\.}[[:space:]]*$" deploy/k8s/kustomization.yaml; then
    echo "$f: not listed under resources in deploy/k8s/kustomization.yaml"
    status=1
  fi
done
echo "-- each file"
"${check[@]}" -ignore-filename-pattern 'kustomization\.yaml$' deploy/k8s || status=1
echo "-- kustomize build deploy/k8s"
# kubeconform reads only *.yaml, *.yml and *.json files.
rendered=$(mktemp --suffix=.yaml)
trap 'rm -f "$rendered"' EXIT
if "$kustomize" build deploy/k8s >"$rendered" && grep -q '^kind:' "$rendered"; then
  "${check[@]}" "$rendered" || status=1
else
  echo "kustomize build deploy/k8s: failed or rendered nothing"
  status=1
fi

echo "== docker-compose.yml"
compose=()
if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  compose=(docker-compose)
elif [ "${COMPOSE_FROM_SOURCE:-0}" = 1 ]; then
  compose=("$(compose_from_source)")
fi
if [ ${#compose[@]} -eq 0 ]; then
  echo "skipped: no docker compose client here (COMPOSE_FROM_SOURCE=1 builds one)"
elif config=$("${compose[@]}" -f docker-compose.yml config); then
  ok=1
  # `config` accepts a bind mount of a missing file; `up` would not.
  while read -r src; do
    if [ ! -e "$src" ]; then
      echo "docker-compose.yml: bind-mounted $src does not exist"
      ok=0
    fi
  done < <(awk '/type: bind/ {bind = 1; next} bind && /source:/ {print $2; bind = 0}' <<<"$config")
  if [ "$ok" = 1 ]; then echo "valid"; else status=1; fi
else
  status=1
fi

if [ "$status" -ne 0 ]; then
  echo "validate-deploy: FAILED"
fi
exit "$status"
