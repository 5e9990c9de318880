#!/usr/bin/env bash
# Installs the Debian bookworm packages Wager builds and tests with, if any is
# missing. Nothing else is ever downloaded.
set -euo pipefail

packages=(
  cmake ninja-build g++ pkg-config git curl
  libcaf-dev
  libboost1.81-dev libboost-json1.81-dev
  libsqlite3-dev sqlite3
  libssl-dev openssl
  libspdlog-dev libcli11-dev prometheus-cpp-dev
  doctest-dev librapidcheck-dev libbenchmark-dev
  clang-14 libclang-rt-14-dev # the libFuzzer target (scripts/test.sh)
  $(command -v npm >/dev/null || echo nodejs npm) # OpenAPI validator, tests/gateway/openapi
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
