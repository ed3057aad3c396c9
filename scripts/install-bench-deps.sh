#!/usr/bin/env bash
# Installs what `make bench` needs beyond `make test`: wrk, the HTTP load
# generator, from Debian's packages. Installs only what is missing.
set -euo pipefail
./scripts/install-deps.sh
command -v wrk >/dev/null 2>&1 && exit 0
echo "installing missing package: wrk" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "need root (or sudo) to install wrk" >&2; exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends wrk >/dev/null
