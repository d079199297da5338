#!/usr/bin/env bash
# Runs every test on a fresh machine: installs moto (the SQS- and Secrets
# Manager-compatible server the integration tests start on free loopback
# ports), builds the release binaries the binary tests run as Lambda does,
# then runs the whole workspace's tests.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c 'import moto.server, flask, flask_cors' 2>/dev/null; then
  echo "installing moto[server] from PyPI"
  python3 -m pip install --quiet --disable-pip-version-check "moto[server]>=5,<6"
fi

cargo build --release --bins --locked
cargo test --workspace --locked "$@"
