#!/usr/bin/env bash
# Check that a build of gitlab-registry-usage-rest is a static executable that works in an
# empty root directory (the stand-in for a `FROM scratch` image): no dynamic loader, no
# libc, no /etc, no DNS, no CA files, no environment.
#
#   contrib/check-static.sh BINARY SYNTHETIC_REGISTRY
#
# BINARY is the service (target/x86_64-unknown-linux-musl/release/gitlab-registry-usage-rest),
# SYNTHETIC_REGISTRY the example `synthetic_registry` (any build of it: it runs outside the
# empty root). `make static` runs this.
#
# 1. The ELF has no PT_INTERP and no DT_NEEDED (readelf; else `file` / `ldd`).
# 2. The binary is copied into an empty temporary directory and run there with `chroot`
#    (as root), else `unshare -r chroot` (user namespace), else, if neither is possible,
#    from that directory with an empty environment (which proves less: the host's files
#    stay visible; the script says so). CHECK_STATIC_NO_CHROOT=1 forces that last way.
# 3. In there it must answer `--version`, and `--collect-once` with a config written into
#    the empty root must scan the synthetic registry (started on 127.0.0.1 with a free port,
#    token auth) and report the totals `--print-expected` gives.
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 BINARY SYNTHETIC_REGISTRY" >&2
  exit 2
fi
binary=$1
registry_bin=$2
for f in "$binary" "$registry_bin"; do
  if [ ! -x "$f" ]; then
    echo "check-static: $f is not an executable file (build it first: make static)" >&2
    exit 2
  fi
done

fail() {
  echo "check-static: FAIL: $*" >&2
  exit 1
}
ok() { echo "check-static: ok: $*"; }

# ---- 1. static? ----------------------------------------------------------------------
if command -v readelf >/dev/null 2>&1; then
  headers=$(readelf -lW "$binary") || fail "readelf cannot read $binary"
  if grep -q 'INTERP' <<<"$headers"; then
    fail "$binary has a PT_INTERP program header (a dynamic loader): it is not static"
  fi
  needed=$(readelf -dW "$binary" | grep '(NEEDED)' || true)
  if [ -n "$needed" ]; then
    fail "$binary needs shared libraries:"$'\n'"$needed"
  fi
  ok "no PT_INTERP, no DT_NEEDED (readelf)"
elif command -v file >/dev/null 2>&1; then
  description=$(file -b "$binary")
  case $description in
    *"statically linked"* | *"static-pie linked"*) ok "file: $description" ;;
    *) fail "file says: $description" ;;
  esac
else
  # glibc's ldd: "statically linked" (exit 0) or "not a dynamic executable" (exit 1).
  out=$(ldd "$binary" 2>&1 || true)
  case $out in
    *"statically linked"* | *"not a dynamic executable"*) ok "ldd: $(tr '\n\t' '  ' <<<"$out")" ;;
    *) fail "ldd lists libraries:"$'\n'"$out" ;;
  esac
fi
if command -v file >/dev/null 2>&1; then
  echo "check-static: file: $(file -b "$binary")"
fi

# ---- 2. an empty root ------------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/grur-check-static.XXXXXX")
root=$work/root
mkdir "$root"
registry_pid=
cleanup() {
  if [ -n "$registry_pid" ]; then
    kill -TERM "$registry_pid" 2>/dev/null || true
    wait "$registry_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
cp "$binary" "$root/gitlab-registry-usage-rest"
chmod 0755 "$root" "$root/gitlab-registry-usage-rest"

# How to run a command inside $root. chroot exits 125 when it cannot chroot and 127 when
# the command does not exist in the new root, so /does-not-exist tells the two apart.
probe() {
  local rc=0
  "$@" /does-not-exist >/dev/null 2>&1 || rc=$?
  [ "$rc" -eq 127 ]
}
# Absolute paths: `env -i` leaves no PATH.
mode=
chroot_bin=$(command -v chroot || true)
unshare_bin=$(command -v unshare || true)
if [ -n "${CHECK_STATIC_NO_CHROOT:-}" ]; then
  : # forced fallback (to test it)
elif [ "$(id -u)" -eq 0 ] && [ -n "$chroot_bin" ] && probe "$chroot_bin" "$root"; then
  mode=chroot
  in_root() { env -i "$chroot_bin" "$root" "$@"; }
elif [ -n "$unshare_bin" ] && [ -n "$chroot_bin" ] && probe "$unshare_bin" -r "$chroot_bin" "$root"; then
  mode="unshare -r chroot"
  in_root() { env -i "$unshare_bin" -r "$chroot_bin" "$root" "$@"; }
fi
if [ -z "${mode:-}" ]; then
  mode="no chroot (impossible here, or CHECK_STATIC_NO_CHROOT): run from the empty directory with an empty environment (the host's /etc and libraries stay visible, so this proves less)"
  in_root() {
    local program=$1
    shift
    (cd "$root" && env -i "$root$program" "$@")
  }
fi
echo "check-static: empty root $root, run with: $mode"
echo "check-static: contents of the root: $(cd "$root" && find . -mindepth 1 | sort | tr '\n' ' ')"

version=$(in_root /gitlab-registry-usage-rest --version) || fail "--version failed in the empty root"
case $version in
  "gitlab-registry-usage-rest "[0-9]*) ok "--version in the empty root: $version" ;;
  *) fail "--version printed: $version" ;;
esac

# ---- 3. --collect-once against the synthetic registry, by IP ----------------------------
shape=(--repositories 25 --tags 4 --layers 3 --shared-layers 4 --multiarch)
expected=$("$registry_bin" "${shape[@]}" --print-expected)
registry_log=$work/registry.log
"$registry_bin" --listen 127.0.0.1:0 --auth token --user demo --password demo-token \
  "${shape[@]}" >"$registry_log" 2>&1 &
registry_pid=$!
port=
for _ in $(seq 100); do
  port=$(sed -n 's#^synthetic registry listening on http://127\.0\.0\.1:\([0-9]*\).*#\1#p' "$registry_log")
  [ -n "$port" ] && break
  kill -0 "$registry_pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$port" ] || fail "the synthetic registry did not start: $(cat "$registry_log")"
echo "check-static: synthetic registry on 127.0.0.1:$port (token auth), expected $expected"

# Written inside the empty root, read from there: IPs only (nothing resolves `localhost`
# in an empty root: no /etc/hosts, no resolv.conf).
cat >"$root/check.conf" <<EOF
[registry]
gitlab_base_url = http://127.0.0.1:$port/
registry_base_url = http://127.0.0.1:$port/
username = demo
access_token = demo-token
request_timeout = 3 seconds
EOF

output=$work/collect.json
errors=$work/collect.log
rc=0
# Relative: the working directory is the root in every mode (chroot changes to its new /).
in_root /gitlab-registry-usage-rest --collect-once -c check.conf >"$output" 2>"$errors" || rc=$?
if [ "$rc" -ne 0 ]; then
  cat "$errors" >&2
  fail "--collect-once exited $rc in the empty root"
fi
echo "check-static: service log: $(tail -1 "$errors")"

# The totals at the top of the document (the first occurrence of each key), no jq needed.
field() { grep -o "\"$1\": *[0-9]*" | head -1 | grep -o '[0-9]*$'; }
status=0
for key in repository_count tag_count size disk_size; do
  want=$(field "$key" <<<"$expected")
  got=$(field "$key" <"$output" || true)
  if [ -n "$want" ] && [ "$want" = "$got" ]; then
    ok "--collect-once in the empty root: $key = $got (as --print-expected)"
  else
    echo "check-static: FAIL: $key: --collect-once says '${got}', --print-expected '${want}'" >&2
    status=1
  fi
done
[ "$status" -eq 0 ] || fail "the scan in the empty root does not match the synthetic registry"

size=$(stat -c %s "$binary")
echo "check-static: binary size: $size bytes ($(awk -v s="$size" 'BEGIN { printf "%.2f MiB", s / 1048576 }'))"
echo "check-static: PASS ($mode)"
