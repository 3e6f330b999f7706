#!/usr/bin/env bash
# Run the test suite: unit, golden, parity and the marked Spark/integration suites (slow ones excluded).
# Extra arguments go to pytest, e.g. scripts/test.sh -m slow, or scripts/test.sh tests/unit.
set -euo pipefail
cd "$(dirname "$0")/.."
export SPARK_LOCAL_IP=127.0.0.1
exec .venv/bin/python -m pytest -m "not slow" "$@"
