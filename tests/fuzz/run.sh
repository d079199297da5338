#!/usr/bin/env bash
# Fuzzes every target for a while: ./tests/fuzz/run.sh [seconds per target] [targets...]
#
# Needs cargo-fuzz, which this script installs when it is missing. With no
# sanitizer cargo-fuzz needs only stable compiler flags, so the machine's own
# toolchain does (FUZZ_TOOLCHAIN=+nightly picks nightly). Corpora are seeded
# from events/ into tests/fuzz/corpus/ (kept between runs, not committed); a
# crash stops the run, leaves its input under tests/fuzz/artifacts/<target>/,
# and becomes a regression test (see SECURITY.md). Prints each target's exec
# count.
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(signature envelope receiver record)

cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked --version 0.13.2
python3 tests/fuzz/seed.py tests/fuzz/corpus

# No sanitizer: the code under test has no `unsafe`, and without ASan the
# build is quicker and each run does several times the executions.
cargo ${FUZZ_TOOLCHAIN:-} fuzz build --fuzz-dir tests/fuzz --sanitizer none --release
# The targets run side by side (each a process of its own; on 2 cores each
# gets about half the executions it would alone, in a quarter of the time).
fuzz_one() {
    local target="$1" log="$2"
    cargo ${FUZZ_TOOLCHAIN:-} fuzz run --fuzz-dir tests/fuzz --sanitizer none --release "$target" \
        "tests/fuzz/corpus/$target" -- -max_total_time="$seconds" -max_len=65536 -timeout=10 \
        >"$log" 2>&1
}
declare -A pids logs
for target in "${targets[@]}"; do
    logs[$target]="$(mktemp)"
    fuzz_one "$target" "${logs[$target]}" &
    pids[$target]=$!
done
failed=0
for target in "${targets[@]}"; do
    log="${logs[$target]}"
    if ! wait "${pids[$target]}"; then
        tail -n 60 "$log"
        echo "fuzz: $target FAILED; the input is in tests/fuzz/artifacts/$target/" >&2
        failed=1
        continue
    fi
    summary="$(grep -E '^Done [0-9]+ runs' "$log" | tail -n 1)"
    echo "fuzz: $target ok, ${seconds}s: ${summary:-no summary}"
    rm -f "$log"
done
exit "$failed"
