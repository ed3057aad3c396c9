#!/usr/bin/env bash
# Installs what `make scale-test` needs beyond `make test`: nginx, HAProxy
# and PgBouncer, from Debian's packages (only what is missing).
set -euo pipefail
exec ./scripts/install-deps.sh nginx=nginx haproxy=haproxy pgbouncer=pgbouncer
