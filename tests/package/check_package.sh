#!/usr/bin/env bash
# Installs the build tree into a fresh prefix, checks that it holds only the
# public headers and that <wager/wager.hpp> includes them all, then builds
# the complete program of docs/embedding.md with the CMake project printed
# there, both taken from the page as written, against the installed package
# and runs it: markets, a deposit, a bet and its settlement.
# Usage: check_package.sh BUILD_DIR SOURCE_DIR CXX_FLAGS
set -euo pipefail
build_dir=$1
source_dir=$2
cxx_flags=${3:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "check_package: $*" >&2; exit 1; }

prefix=$work/prefix
cmake --install "$build_dir" --prefix "$prefix" >/dev/null
include=$prefix/include/wager
[ -f "$include/wager.hpp" ] || fail "wager/wager.hpp is not installed"

# Implementation headers stay in the build tree; Beast and Asio stay in
# gateway/'s .cpp files.
for internal in gateway/api_internal.hpp gateway/stream_socket.hpp gateway/http_session.hpp \
                actors/wallet_codec.hpp cluster/agent_state.hpp; do
  [ ! -e "$include/$internal" ] || fail "internal header installed: $internal"
done
headers=$(cd "$include" && find . -mindepth 2 -name '*.hpp' | sed 's|^\./||' | sort)
[ -n "$headers" ] || fail "no headers installed"
for header in $headers; do
  case $header in *_internal.hpp) fail "internal header installed: $header" ;; esac
  if grep -Eq '#include [<"]boost/(beast|asio)' "$include/$header"; then
    fail "$header includes Beast or Asio"
  fi
  grep -q "#include \"wager/$header\"" "$include/wager.hpp" ||
    fail "wager/wager.hpp does not include $header"
done

# The page's first C++ block is the program, its first CMake block the project.
page=$source_dir/docs/embedding.md
mkdir -p "$work/my_book"
awk '/^```cpp$/ && !done { on = 1; next } /^```$/ && on { on = 0; done = 1 } on' \
  "$page" >"$work/my_book/main.cpp"
awk '/^```cmake$/ && !done { on = 1; next } /^```$/ && on { on = 0; done = 1 } on' \
  "$page" >"$work/my_book/CMakeLists.txt"
grep -q '^#include <wager/wager.hpp>$' "$work/my_book/main.cpp" ||
  fail "the program of docs/embedding.md does not include <wager/wager.hpp>"
if grep '^#include' "$work/my_book/main.cpp" | grep -v '<wager/wager.hpp>' | grep -q wager; then
  fail "the program of docs/embedding.md includes more than <wager/wager.hpp>"
fi

cmake -S "$work/my_book" -B "$work/build" -G Ninja \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_CXX_FLAGS="$cxx_flags" >/dev/null
cmake --build "$work/build" >/dev/null
out=$(cd "$work" && "$work/build/my_book") || fail "my_book exited with $?: $out"
echo "$out"
echo "$out" | grep -Eq '^bet b-[^ ]+ accepted at 4\.00$' || fail "no accepted bet"
echo "$out" | grep -Eq '^double b-[^ ]+ accepted: 2 legs, pays 6000 if both win$' ||
  fail "no accepted slip"
echo "$out" | grep -q '^bet won, paid 4000; double won, paid 6000; alice has 13500 available, 0 held$' ||
  fail "no settlement paid into the wallet"
echo "package ok: ${headers//$'\n'/ }"
