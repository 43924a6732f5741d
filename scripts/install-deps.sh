#!/usr/bin/env bash
# Installs what phoenix needs to build and test, only when something is missing, so that
# `make test` and `make demo` work on a fresh Debian 12 machine.
set -euo pipefail
pkgs=(cmake ninja-build g++ libboost1.81-dev libboost-json1.81-dev libtomlplusplus-dev
      libcli11-dev libfmt-dev libgtest-dev redis-server clang libclang-rt-14-dev curl)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# Node.js may already come from outside Debian's packages (it does on these machines).
command -v node >/dev/null && command -v npm >/dev/null || missing+=(nodejs npm)
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# npm packages of the examples and the integration tests, from their lock files.
for d in examples/*/ tests/integration/ tests/integration/apps/*/; do
  if [ -f "$d/package-lock.json" ] && [ ! -d "$d/node_modules" -o "$d/package-lock.json" -nt "$d/node_modules" ]; then
    echo "npm ci in $d"
    (cd "$d" && npm ci --no-audit --no-fund --loglevel=error)
    touch "$d/node_modules"
  fi
done
