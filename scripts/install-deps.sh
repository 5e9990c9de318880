#!/usr/bin/env bash
# Installs the Debian bookworm packages Wager builds and tests with, if any is
# missing. Nothing else is ever downloaded. Installing needs root: run it as
# root or with sudo installed; without either it names what is missing and
# exits 1. With everything installed it needs neither.
#   install-deps.sh --list   prints the packages, one a line, and installs nothing
set -euo pipefail

packages=(
  cmake ninja-build g++ pkg-config git
  curl jq # the cluster scripts run by ctest (examples/cluster, bench/cluster)
  libcaf-dev
  libboost1.81-dev libboost-json1.81-dev
  libsqlite3-dev sqlite3
  libpq-dev postgresql # the journal on PostgreSQL; its tests start a server of their own
  iproute2 # ip netns: the hosts of tests/cluster/partition
  libssl-dev openssl
  libspdlog-dev libcli11-dev prometheus-cpp-dev
  doctest-dev librapidcheck-dev libbenchmark-dev
  clang-14 libclang-rt-14-dev # the libFuzzer targets (scripts/test.sh)
  lld # the test build's linker (scripts/test.sh)
  prometheus # promtool, which checks docs/deploy/alerts.yml (tests/deploy)
  sslscan # the TLS penetration check (tests/apps/node_tls)
  $(command -v npm >/dev/null || echo nodejs npm) # OpenAPI validator, tests/gateway/openapi
)

if [ "${1:-}" = --list ]; then
  printf '%s\n' "${packages[@]}"
  exit 0
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "install-deps.sh: not root and no sudo, cannot install: ${missing[*]} (run as root, or install sudo)" >&2
      exit 1
    fi
    sudo_cmd=(sudo)
  fi
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
