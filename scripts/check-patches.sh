#!/usr/bin/env bash
# Fails unless the vendored sqlx-core (vendor/README.md) is what the build
# really uses. Cargo only *warns* when a [patch.crates-io] entry matches
# nothing ("Patch `…` was not used in the crate graph") and then silently
# builds the crates.io release: after an sqlx upgrade the TCP_NODELAY fix
# would be gone with every check still green. This turns that into an error.
#
#   scripts/check-patches.sh
#
# Checks, in order:
#   1. the patch's one line is still in vendor/sqlx-core/src/net/socket/mod.rs;
#   2. `cargo metadata --locked` succeeds (Cargo.lock agrees with Cargo.toml,
#      which fails when the vendored version no longer matches the lock) and
#      does not print the unused-patch warning;
#   3. Cargo.lock records no unused patch and has exactly one sqlx-core, with
#      no `source` (a path package, i.e. vendor/sqlx-core) and the vendored
#      version.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

vendored=vendor/sqlx-core
fail() {
  echo "check-patches: FAIL: $*" >&2
  echo "check-patches: see vendor/README.md (when the vendored sqlx-core may go, and how)" >&2
  exit 1
}

# 1. The change itself.
socket_rs="$vendored/src/net/socket/mod.rs"
[[ -f "$socket_rs" ]] || fail "$socket_rs is missing"
grep -q 'stream\.set_nodelay(true)?;' "$socket_rs" \
  || fail "$socket_rs no longer calls set_nodelay(true) on the TCP stream"

vendored_version="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$vendored/Cargo.toml" | head -n 1)"
[[ -n "$vendored_version" ]] || fail "no version in $vendored/Cargo.toml"

# 2. Cargo's own view. The warning goes to stderr; the JSON is not needed.
if ! log="$(cargo metadata --format-version 1 --locked 2>&1 >/dev/null)"; then
  printf '%s\n' "$log" >&2
  fail "cargo metadata --locked failed (is Cargo.lock out of date with the patch or with $vendored/Cargo.toml?)"
fi
if grep -q 'was not used in the crate graph' <<<"$log"; then
  printf '%s\n' "$log" >&2
  fail "Cargo reports the [patch.crates-io] entry unused: the build would use the crates.io sqlx-core, without the fix"
fi

# 3. What Cargo.lock pins.
if grep -q '^\[\[patch\.unused\]\]' Cargo.lock; then
  sed -n '/^\[\[patch\.unused\]\]/,/^$/p' Cargo.lock >&2
  fail "Cargo.lock lists an unused patch"
fi
# One line per sqlx-core package: "<version> <source or 'path'>".
locked="$(awk '
  /^\[\[package\]\]/ { if (name == "sqlx-core") print version, (source == "" ? "path" : source); name = version = source = "" }
  /^name = /    { name = $3; gsub(/"/, "", name) }
  /^version = / { version = $3; gsub(/"/, "", version) }
  /^source = /  { source = $3; gsub(/"/, "", source) }
  END { if (name == "sqlx-core") print version, (source == "" ? "path" : source) }
' Cargo.lock)"
[[ -n "$locked" ]] || fail "no sqlx-core in Cargo.lock"
if [[ "$locked" != "$vendored_version path" ]]; then
  printf 'sqlx-core in Cargo.lock:\n%s\n' "$locked" >&2
  fail "Cargo.lock must hold exactly one sqlx-core, $vendored_version from $vendored (no source)"
fi

echo "check-patches: ok (sqlx-core $vendored_version from $vendored, TCP_NODELAY line present)"
