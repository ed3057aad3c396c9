#!/usr/bin/env bash
# Installs what `make scale-test` needs beyond `make test`: nginx, HAProxy
# and PgBouncer, from Debian's packages. Installs only what is missing, and
# stops the packaged services (the tests start their own on free ports).
set -euo pipefail
./scripts/install-deps.sh

need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || need+=(pgbouncer)
[ ${#need[@]} -eq 0 ] && exit 0

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
for svc in nginx haproxy pgbouncer; do
  $sudo service "$svc" stop >/dev/null 2>&1 || true
done
