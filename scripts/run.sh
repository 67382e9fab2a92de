#!/usr/bin/env bash
# Run the service against the local real Asterisk (provisioned on first use) with SQLite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/hotline run --with-asterisk "$@"
