#!/usr/bin/env bash
# Runs the anybit crate's test suites compiled to wasm, for each build variant, in Node and/or in
# headless Chromium:
#
#   scalar   no SIMD                        -> Isa::available() = [Scalar]
#   simd     +simd128                       -> [Scalar, Simd128]
#   relaxed  +simd128,+relaxed-simd         -> [Scalar, Simd128, Relaxed]
#
# Usage: scripts/wasm-test.sh [node|chromium|all] [variant ...]   (default: all, every variant)
#
# Prints one summary line per variant and host; exits non-zero if any build or test fails.
#
# How it runs: `cargo test --target wasm32-unknown-unknown` with `wasm-bindgen-test-runner` as the
# runner (.cargo/config.toml). Node is the runner's default; WASM_BINDGEN_USE_BROWSER=1 plus
# CHROMEDRIVER switches the same binaries to headless Chromium (the runner adds --headless and
# --no-sandbox; crate/webdriver.json names /usr/bin/chromium and the quiet flags).
# Relaxed SIMD in Node: Node 20 (V8 11.3) has only a pre-standard implementation behind
# --experimental-wasm-relaxed-simd, and its i32x4.relaxed_dot_i8x16_i7x16_add gives wrong sums
# for in-range inputs (seen here; Chromium 156 is correct), so the relaxed variant runs in Node
# only from Node 22 (relaxed SIMD shipped) and is reported as skipped on older Node.
# The test profile is optimized (opt-level 2) but keeps debug assertions and overflow checks:
# unoptimized wasm runs the suites ~50x slower, and the tests are meant to run with the checks
# on (the release profile turns them off).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

HOSTS=all
case ${1:-} in node|chromium|all) HOSTS=$1; shift ;; esac
[ $# -gt 0 ] && VARIANTS=("$@") || VARIANTS=(scalar simd relaxed)
case $HOSTS in all) HOSTS=(node chromium) ;; *) HOSTS=("$HOSTS") ;; esac

# Same per-variant target folders as scripts/build-wasm.sh: same RUSTFLAGS, so dependencies are
# shared between the two scripts.
TARGET_ROOT=${ANYBIT_WASM_TARGET_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}/wasm}
WASM_RUSTC=${WASM_RUSTC:-/usr/bin/rustc}
LOG_DIR=$TARGET_ROOT/test-logs
mkdir -p "$LOG_DIR"

die() { echo "wasm-test: $*" >&2; exit 2; }
[ -x "$WASM_RUSTC" ] || die "$WASM_RUSTC not found: run scripts/setup.sh"
command -v wasm-bindgen-test-runner >/dev/null || die "wasm-bindgen-test-runner missing: run scripts/setup.sh"

rustflags_for() {
  case $1 in
    scalar) echo "" ;;
    simd) echo "-C target-feature=+simd128" ;;
    relaxed) echo "-C target-feature=+simd128,+relaxed-simd" ;;
    *) die "unknown variant '$1' (known: scalar simd relaxed)" ;;
  esac
}

cargo_wasm_test() { # variant, extra cargo args...
  local v=$1; shift
  env -u CARGO_ENCODED_RUSTFLAGS RUSTC="$WASM_RUSTC" RUSTC_BOOTSTRAP=1 RUSTFLAGS="$(rustflags_for "$v")" \
    CARGO_PROFILE_DEV_OPT_LEVEL=2 CARGO_PROFILE_DEV_DEBUG=0 \
    cargo test -p anybit --lib --tests --target wasm32-unknown-unknown -Z build-std=std,panic_abort \
    --target-dir "$TARGET_ROOT/$v" "$@"
}

summary=()
failed=0
for v in "${VARIANTS[@]}"; do
  rustflags_for "$v" >/dev/null
  log=$LOG_DIR/$v-build.log
  echo "== wasm-test: build $v"
  if ! cargo_wasm_test "$v" --no-run >"$log" 2>&1; then
    tail -40 "$log"
    summary+=("$(printf '%-8s %-9s BUILD FAILED (log: %s)' "$v" all "$log")")
    failed=1
    continue
  fi
  for h in "${HOSTS[@]}"; do
    log=$LOG_DIR/$v-$h.log
    echo "== wasm-test: $v in $h"
    start=$(date +%s)
    case $h in
      node)
        if [ "$v" = relaxed ] && [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 22 ]; then
          summary+=("$(printf '%-8s %-9s skipped: Node %s has no standard relaxed SIMD (needs Node >= 22)' "$v" "$h" "$(node --version)")")
          continue
        fi
        cargo_wasm_test "$v" --no-fail-fast >"$log" 2>&1
        rc=$? ;;
      chromium)
        CHROMEDRIVER=${CHROMEDRIVER:-/usr/bin/chromedriver} WASM_BINDGEN_USE_BROWSER=1 \
          WASM_BINDGEN_TEST_WEBDRIVER_JSON="$ROOT/crate/webdriver.json" \
          WASM_BINDGEN_TEST_TIMEOUT=${WASM_BINDGEN_TEST_TIMEOUT:-300} \
          cargo_wasm_test "$v" --no-fail-fast >"$log" 2>&1
        rc=$? ;;
      *) die "unknown host '$h' (known: node chromium all)" ;;
    esac
    secs=$(( $(date +%s) - start ))
    # The runner prints one "test result:" line per test binary.
    read -r passed failed_n suites < <(awk '/test result:/ {
        for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i }
        n++ } END { printf "%d %d %d\n", p, f, n }' "$log")
    if [ $rc -ne 0 ] || [ "$failed_n" -ne 0 ] || [ "$suites" -eq 0 ]; then
      grep -E "^test .* FAILED|panicked|^error|failures:" "$log" | head -30
      tail -20 "$log"
      status="FAILED (rc $rc, log: $log)"
      failed=1
    else
      status=ok
    fi
    summary+=("$(printf '%-8s %-9s %4d passed %3d failed in %2d suites, %4ds  %s' \
      "$v" "$h" "$passed" "$failed_n" "$suites" "$secs" "$status")")
  done
done

echo
echo "== wasm-test summary (variant, host)"
printf '%s\n' "${summary[@]}"
exit $failed
