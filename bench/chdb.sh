#!/usr/bin/env bash
# chdb (ClickHouse in-process, the PyPI package) for the v2 query scenario, in a
# venv of its own under the cache directory. Source it and call ensure_chdb; it
# exports BENCH_CHDB_PYTHON, which analytics-bench reads. Run directly, it
# installs and prints that Python.
ensure_chdb() {
  local cache="${XDG_CACHE_HOME:-$HOME/.cache}/analytics"
  local venv="$cache/chdb-venv"
  if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import chdb' 2>/dev/null; then
    mkdir -p "$cache"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check 'chdb>=4,<5'
  fi
  export BENCH_CHDB_PYTHON="$venv/bin/python"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  set -euo pipefail
  ensure_chdb
  echo "$BENCH_CHDB_PYTHON"
fi
