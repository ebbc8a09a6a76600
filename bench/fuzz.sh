#!/usr/bin/env bash
# Fuzzes the API's request parsing and the binlog decoder (not in CI): the TC3, v1 and Alibaba
# signature canonicalisers, the parameter parser and dts-mysql's binlog event decoder
# (fuzz/fuzz_targets), each for SECONDS (default 60).
# With cargo-fuzz and a nightly toolchain it runs `cargo fuzz run` (libFuzzer); otherwise each
# target is built on stable as a plain binary that drives the same harness with random and
# mutated inputs (fuzz/src/lib.rs `drive`). A crash leaves its input in fuzz/artifacts/<target>/
# and makes the script fail; turn it into a regression test.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-60}
targets=(tc3_canonical v1_canonical alibaba_canonical params binlog_events)
if cargo fuzz --version >/dev/null 2>&1 && rustup toolchain list 2>/dev/null | grep -q nightly; then
    for t in "${targets[@]}"; do
        cargo +nightly fuzz run --features libfuzzer "$t" -- -max_total_time="$seconds"
    done
    exit 0
fi
echo "cargo-fuzz or nightly not available: running the stable-Rust driver" >&2
# Registry crates with their own rust-toolchain file must not switch the toolchain.
export RUSTUP_TOOLCHAIN=${RUSTUP_TOOLCHAIN:-stable}
flock -o /tmp/dts-cargo.lock cargo build --release -q
dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
for t in "${targets[@]}"; do
    "$dir/release/$t" "$seconds"
done
