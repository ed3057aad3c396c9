#!/usr/bin/env bash
# Installs what `make test` needs and the machine lacks: PostgreSQL server
# binaries, Redis and Chromium (for the Playground browser test), from
# Debian's packages. Safe to run again: it installs only what is missing.
#
# Arguments add more, as command=package pairs checked on $PATH and in
# /usr/sbin (install-scale-deps.sh, install-bench-deps.sh):
#   scripts/install-deps.sh nginx=nginx haproxy=haproxy
set -euo pipefail

need=()
have_pg() {
  command -v initdb >/dev/null 2>&1 && command -v postgres >/dev/null 2>&1 && return 0
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}
have_pg || need+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
[ -x /usr/bin/chromium ] || need+=(chromium)
services=(postgresql redis-server)
for pair in "$@"; do
  cmd=${pair%%=*} pkg=${pair#*=}
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || need+=("$pkg")
  services+=("$pkg")
done

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi

echo "installing missing packages: ${need[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "need root (or sudo) to install: ${need[*]}" >&2; exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian starts the packaged servers; our tests start their own on free ports.
for svc in "${services[@]}"; do
  $sudo service "$svc" stop >/dev/null 2>&1 || true
done
