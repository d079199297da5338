#!/usr/bin/env bash
# Runs every test on a fresh machine: installs moto (the SQS- and Secrets
# Manager-compatible server the integration tests start on free loopback
# ports) and nginx (the keep-alive proxy the end-to-end benchmark puts in
# front of it), builds the release functions the binary tests run as Lambda does,
# runs the whole workspace's tests (unit, property, binary, end-to-end, load
# and faults), then fuzzes each target for a bounded time.
#
# Bounded for CI, all overridable: FUZZ_SECONDS per fuzz target (30, the
# targets side by side) and PROPTEST_CASES (proptest's 256). The load test
# runs 20,000 deliveries (4 to 5 minutes on 2 cores); with CI=true 5,000
# (the same mix and checks, a quarter of the time); LOAD_NOTIFICATIONS and
# LOAD_RECEIVERS change it.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c 'import moto.server, flask, flask_cors' 2>/dev/null; then
  echo "installing moto[server] from PyPI"
  python3 -m pip install --quiet --disable-pip-version-check "moto[server]>=5,<6"
fi

if ! command -v nginx >/dev/null 2>&1; then
  echo "installing nginx-light from Debian (the keep-alive proxy in front of moto)"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && $sudo apt-get install -y -qq nginx-light >/dev/null
fi

# Every package of the lock file, for every platform: the handler test reads
# AWS's sample events out of `aws_lambda_events` through
# `cargo metadata --offline`, which needs them all in the local cache, and a
# build fetches only the host's.
cargo fetch --locked
# The two functions as they ship (release, fat LTO); every other binary (the
# CLI, the test double, the measure tools) from the tests' own build: linking
# those with fat LTO too cost CI several minutes and tested nothing more.
cargo build --release --locked -p webhook-receiver -p topic-processor
cargo build --locked --bins
if [ "${CI:-}" = true ]; then
  export LOAD_NOTIFICATIONS="${LOAD_NOTIFICATIONS:-5000}"
fi
cargo test --workspace --locked "$@"
# The template: cfn-lint, sam validate, checkov, and the AWS rules linters
# miss (infra/template_test.py).
./infra/lint.sh
./tests/fuzz/run.sh "${FUZZ_SECONDS:-30}"
