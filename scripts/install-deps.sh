#!/usr/bin/env bash
# Installs the Debian packages tidemark needs to build, test and run its demo.
# Idempotent and quiet: prints nothing when everything is already installed.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libpq-dev            # replication protocol client
  libyaml-cpp-dev      # configuration files
  libsqlite3-dev       # state store
  nlohmann-json3-dev   # JSON parsing (config echo, status, tests); events use our own writer
  libcli11-dev         # command line
  libfmt-dev           # formatting (std::format is not in GCC 12)
  libgtest-dev libgmock-dev
  postgresql-15 postgresql-client-15   # throwaway servers for tests, demo and bench
  time                 # peak memory in the benchmarks (/usr/bin/time)
  chromium             # the status page test renders it headless
  openjdk-17-jdk-headless maven   # the Debezium peer (tests/compat, bench), built from Maven Central
  clang libfuzzer-14-dev          # the sanitizer build and the fuzz targets (make sanitize, make fuzz)
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
echo "tidemark: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
# Debian's postgresql-15 would start a system cluster; tests run their own, so keep it from starting.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
