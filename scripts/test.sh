#!/usr/bin/env bash
# The whole test suite: lint, the dependency rule, unit tests, and end-to-end tests against a real
# Asterisk (provisioned on first use), sipp, SQLite and PostgreSQL. Starts what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
source scripts/services.sh
ensure_postgresql
ensure_redis

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/lint-imports
exec .venv/bin/pytest -q -p no:cacheprovider "$@"
