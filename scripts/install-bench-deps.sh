#!/usr/bin/env bash
# Installs what `make bench` needs beyond `make test`: wrk, the HTTP load
# generator, from Debian's packages (only when missing).
set -euo pipefail
exec ./scripts/install-deps.sh wrk=wrk
