#!/usr/bin/env bash
# The README's test command: installs what is missing, then runs every test.
#   1. native   cargo test --workspace --release (stable toolchain), and the crate's own and kernel
#               tests again with the `threads` feature
#   2. wasm     scripts/wasm-test.sh all (the crate's tests as wasm, in Node and headless Chromium)
#   3. build    scripts/build-wasm.sh (the four wasm builds) and trunk build --release --offline
#   4. e2e      e2e-tests/ (the page in headless Chromium, node --test)
#   5. pkg      scripts/pkg-test.sh (the npm package, packed and installed: Node, plain page, Vite, tsc)
# Usage: scripts/test.sh [STEP ...]   steps: native wasm web pkg (web = wasm-bld, trunk and e2e);
# none given = all. Every step runs even when an earlier one failed (except those that need its output); the last
# line is "N passed, N failed" over all tests, where a step that fails without reporting tests
# counts as one failure. Exit status is non-zero when anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
LOGS=$(mktemp -d "${TMPDIR:-/tmp}/anybit-test.XXXXXX")
total_start=$(date +%s)

passed=0
failed=0
summary=()
failed_steps=()

# step NAME COMMAND...: runs it with output shown and logged, adds its test counts.
step() {
  local name=$1 log="$LOGS/$1.log" start rc p f
  shift
  printf '\n==== test: %s: %s\n' "$name" "$*"
  start=$(date +%s)
  "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  # cargo/libtest: "test result: ok. 12 passed; 0 failed; ..."; node --test: "ℹ pass 5", "ℹ fail 0"
  # (spec reporter) or "# pass 5"; wasm-test.sh's summary: "simd  node  17 passed   0 failed in 2 suites".
  p=$(sed -n 's/.*test result: [A-Za-z]*\. \([0-9]*\) passed.*/\1/p; s/^\(#\|ℹ\) pass \([0-9]*\)$/\2/p;
      s/.* \([0-9][0-9]*\) passed  *[0-9][0-9]* failed in .*/\1/p' "$log" | awk '{s += $1} END {print s + 0}')
  f=$(sed -n 's/.*test result: [A-Za-z]*\. [0-9]* passed; \([0-9]*\) failed.*/\1/p; s/^\(#\|ℹ\) fail \([0-9]*\)$/\2/p;
      s/.* [0-9][0-9]* passed  *\([0-9][0-9]*\) failed in .*/\1/p' "$log" | awk '{s += $1} END {print s + 0}')
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  passed=$((passed + p))
  failed=$((failed + f))
  local status=ok
  [ "$rc" -eq 0 ] || { status="FAILED (exit $rc)"; failed_steps+=("$name"); }
  summary+=("$(printf '%-8s %-18s %4d passed %4d failed %5d s' "$name" "$status" "$p" "$f" $(($(date +%s) - start)))")
  return "$rc"
}

skip() {
  summary+=("$(printf '%-8s %-18s (needs %s)' "$1" "skipped" "$2")")
  failed=$((failed + 1))
  failed_steps+=("$1")
}

ONLY=" $* "
want() { [ "$ONLY" = "  " ] || [[ $ONLY == *" $1 "* ]]; }
not_run() { summary+=("$(printf '%-8s %-18s' "$1" "not run (not asked)")"); }

step setup bash scripts/setup.sh || {
  echo "test: setup failed; nothing else can run" >&2
  printf '%s\n' "${summary[@]}"
  echo "0 passed, 1 failed"
  exit 1
}
# Tools installed by setup (cargo install) live here; CI starts with a bare PATH.
export PATH="$HOME/.cargo/bin:$PATH"

# Native tests use the machine's stable toolchain; the Debian compiler is only for wasm builds.
# The release profile's thin LTO and single codegen unit are for shipped binaries; for the test
# binaries (one LTO link each, candle included) they only cost CI minutes, so they are relaxed here.
want native && step native env -u RUSTC -u RUSTC_BOOTSTRAP -u RUSTFLAGS \
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
  cargo test --workspace --release
# The `threads` feature's own code (the fork/join team, the split decisions), the kernel suite at
# 2 threads and whole passes split over threads: the wasm threads build needs a browser, so this
# is where splitting is checked against one thread.
want native && step threads env -u RUSTC -u RUSTC_BOOTSTRAP -u RUSTFLAGS \
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
  cargo test -p anybit --release --features threads --lib --test kernels --test window --test session
want native || not_run native

if ! want wasm; then
  not_run wasm
elif [ -f scripts/wasm-test.sh ]; then
  step wasm bash scripts/wasm-test.sh all
else
  echo "test: scripts/wasm-test.sh is missing" >&2
  skip wasm "scripts/wasm-test.sh"
fi

if ! want web; then
  not_run web
elif step wasm-bld bash scripts/build-wasm.sh; then
  # The pre_build hook reruns build-wasm.sh, which is a no-op by now.
  if step trunk trunk build --release --offline; then
    step e2e bash -c 'cd e2e-tests && node --test --test-concurrency=1 --test-reporter=spec tests/'
    echo "e2e screenshots: $ROOT/e2e-tests/screenshots"
  else
    skip e2e "trunk build"
  fi
else
  skip trunk "scripts/build-wasm.sh"
  skip e2e "scripts/build-wasm.sh"
fi

if want pkg; then
  step pkg bash scripts/pkg-test.sh
else
  not_run pkg
fi

printf '\n==== test: summary (logs in %s)\n' "$LOGS"
printf '%s\n' "${summary[@]}"
echo "total $(($(date +%s) - total_start)) s${failed_steps[*]:+; failed steps: ${failed_steps[*]}}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ ${#failed_steps[@]} -eq 0 ]
