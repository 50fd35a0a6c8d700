#!/usr/bin/env bash
# Supply-chain check: `cargo deny check` (advisories, licenses, bans,
# sources) per deny.toml, offline.
#
# The advisory data is the RustSec snapshot in shared/data (no network
# here). cargo-deny reads a database from a git repository at
# <db-path>/<name>-<hash of the URL>, so the snapshot is copied into a
# temporary folder, committed with the snapshot's own date (so
# maximum-db-staleness measures the data's real age), and cargo-deny runs
# with --offline against it. Installs cargo-deny when it is missing.
#
#   bash .ci/deny.sh            # from anywhere
#   RISKGATE_SHARED_DATA=/path/to/shared/data bash .ci/deny.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo-deny >/dev/null 2>&1; then
  echo "cargo-deny missing: installing it (cargo install --locked cargo-deny)"
  # Its own target folder: the project's build cache stays untouched.
  CARGO_TARGET_DIR="${CARGO_DENY_TARGET_DIR:-$(mktemp -d)}" \
    cargo install --locked cargo-deny
fi
cargo deny --version

shared="${RISKGATE_SHARED_DATA:-../shared/data}"
snapshot="$shared/rustsec-advisory-db"
if [ ! -d "$snapshot/crates" ]; then
  echo "RustSec snapshot missing at $snapshot (set RISKGATE_SHARED_DATA)" >&2
  exit 1
fi

root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT

# The folder name cargo-deny derives from the default database URL: ask it
# (an empty root makes it name the path it wanted), else the known name.
name="$(RISKGATE_ADVISORY_DBS="$root" cargo deny --offline check advisories 2>&1 \
  | grep -o 'advisory-db-[0-9a-f]\{16\}' | head -n 1 || true)"
name="${name:-advisory-db-3157b0e258782691}"
rm -rf "${root:?}"/*

db="$root/$name"
mkdir -p "$db"
cp -R "$snapshot"/. "$db"/
# The snapshot's date, from shared/data/MANIFEST.txt ("…advisory-db@<commit> (YYYY-MM-DD)").
date="$(grep -o 'rustsec/advisory-db@[0-9a-f]* ([0-9-]*)' "$shared/MANIFEST.txt" 2>/dev/null \
  | grep -o '[0-9]\{4\}-[0-9]\{2\}-[0-9]\{2\}' | head -n 1 || true)"
stamp="${date:+${date}T00:00:00Z}"
(
  cd "$db"
  git init -q
  git add -A
  GIT_AUTHOR_NAME=riskgate-ci GIT_AUTHOR_EMAIL=ci@riskgate.invalid \
  GIT_COMMITTER_NAME=riskgate-ci GIT_COMMITTER_EMAIL=ci@riskgate.invalid \
  GIT_AUTHOR_DATE="${stamp:-now}" GIT_COMMITTER_DATE="${stamp:-now}" \
    git commit -q -m "RustSec advisory-db snapshot ${date:-(date unknown)}"
)
echo "advisory snapshot: $snapshot (${date:-date unknown}), $(find "$db/crates" -name 'RUSTSEC-*.md' | wc -l) advisories"

# --offline needs every locked package in the local registry, including
# those only other platforms build (cargo metadata reads them all): a fresh
# machine has only what its builds fetched, so fetch the rest first.
cargo fetch --locked --quiet

RISKGATE_ADVISORY_DBS="$root" cargo deny --offline check advisories licenses bans sources
