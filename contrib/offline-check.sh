#!/usr/bin/env bash
# `make offline-check`: follow docs/INSTALL.md "Building offline" in temporary copies and
# prove that the offline machine's build needs no network and no cargo cache.
#
# 1. The online machine: copy the source tree (the files git knows, as they are in the
#    work tree), `cargo vendor --locked vendor`, put the printed config in .cargo/, pack
#    the tarball exactly as INSTALL.md says.
# 2. The offline machine: unpack it elsewhere and build with an empty CARGO_HOME (no
#    registry cache, no credentials), CARGO_NET_OFFLINE=true and `--offline --locked`.
#
# Environment: OFFLINE_PROFILE=release (default, as INSTALL.md) or dev (faster, for a
# quick check); KEEP_OFFLINE_DIR=1 keeps the temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
profile=${OFFLINE_PROFILE:-release}
work=$(mktemp -d /tmp/offline-check.XXXXXX)
cleanup() { [ -n "${KEEP_OFFLINE_DIR:-}" ] || rm -rf "$work"; }
trap cleanup EXIT
say() { printf 'offline-check: %s\n' "$*" >&2; }

say "copying the source tree to $work/online"
mkdir -p "$work/online"
git ls-files -z --cached --others --exclude-standard |
  while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
  tar --null -T - -cf - | tar -C "$work/online" -xf -

if [ -e "$work/online/vendor" ]; then
  say "the source tree has a vendor/ folder; cargo vendor must own it (patched crates live in patches/)"
  exit 1
fi

say "online step: cargo vendor (docs/INSTALL.md)"
(
  cd "$work/online"
  cargo vendor --locked vendor > vendor-config.toml
  mkdir -p .cargo && cp vendor-config.toml .cargo/config.toml
  tar -czf "$work/gitlab-registry-usage-rest-src.tar.gz" --exclude=./target --exclude=./.git .
)
for kept in patches/README.md patches/tiny_http/src/lib.rs; do
  [ -f "$work/online/$kept" ] || { say "cargo vendor removed $kept"; exit 1; }
done

say "offline step: unpack and build with an empty CARGO_HOME and the network closed to cargo"
mkdir -p "$work/offline" "$work/cargo-home"
tar -C "$work/offline" -xzf "$work/gitlab-registry-usage-rest-src.tar.gz"
flags=(--offline --locked)
[ "$profile" = release ] && flags+=(--release)
(
  cd "$work/offline"
  CARGO_HOME="$work/cargo-home" CARGO_NET_OFFLINE=true CARGO_TARGET_DIR="$work/target" \
    cargo build "${flags[@]}" --bin gitlab-registry-usage-rest
)
dir=$([ "$profile" = release ] && echo release || echo debug)
bin="$work/target/$dir/gitlab-registry-usage-rest"
"$bin" --version
if ls "$work/cargo-home/registry" >/dev/null 2>&1; then
  say "cargo wrote a registry cache offline: something was fetched"; exit 1
fi
say "ok: built $("$bin" --version) offline from the vendored sources"
