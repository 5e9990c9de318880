#!/usr/bin/env bash
# Every ctest test of BUILD_DIR carries exactly one of the labels the README
# names (unit, process, cluster, slow), so `ctest -L unit` and the others
# together run the whole suite; and bench/cluster_quick, once registered only
# where jq and curl happened to be installed, is there.
# Usage: check_labels.sh BUILD_DIR
set -euo pipefail
build_dir=$1
list=$(ctest --test-dir "$build_dir" --show-only=json-v1)
# A suite not built yet stands in as "<target>_NOT_BUILT", a test that fails
# when run: not a test to label.
unlabelled=$(jq -r '.tests[]
  | select(.name | contains("_NOT_BUILT") | not)
  | select([.properties[]? | select(.name == "LABELS") | .value[]
            | select(. == "unit" or . == "process" or . == "cluster" or . == "slow")]
           | length != 1)
  | .name' <<<"$list")
if [[ -n "$unlabelled" ]]; then
  echo "tests without exactly one of unit, process, cluster, slow:" >&2
  echo "$unlabelled" >&2
  exit 1
fi
for name in bench/cluster_quick; do
  if ! jq -e --arg name "$name" 'any(.tests[]; .name == $name)' <<<"$list" >/dev/null; then
    echo "test $name is not registered" >&2
    exit 1
  fi
done
jq -r '[.tests[] | .properties[]? | select(.name == "LABELS") | .value[]]
  | group_by(.) | map("\(.[0]): \(length)") | join(", ")' <<<"$list"
