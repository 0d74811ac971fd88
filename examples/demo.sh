#!/usr/bin/env bash
# `make demo`: the service in front of a synthetic registry, no LDAP and no GitLab needed.
#
# Builds (release) the service and examples/synthetic_registry, starts the registry on
# 127.0.0.1:5001 (GitLab-style token auth, 40 repositories sharing base layers, plus a
# multi-arch OCI index), then the service on 127.0.0.1:5000 with examples/demo.conf
# (htpasswd login: demo / demo), waits until /health answers 200 and prints the curl
# commands to try. Ctrl-C (SIGINT) or SIGTERM stops both processes and exits 0.
#
# Environment: CARGO (default cargo), CARGO_TARGET_DIR (default target), DEMO_SKIP_BUILD=1
# to use binaries that are already built.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO=${CARGO:-cargo}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
SERVICE_BIN=$TARGET_DIR/release/gitlab-registry-usage-rest
REGISTRY_BIN=$TARGET_DIR/release/examples/synthetic_registry
SERVICE=127.0.0.1:5000
REGISTRY=127.0.0.1:5001

say() { printf 'demo: %s\n' "$*" >&2; }

# Status code of GET http://$1$2, or nothing if nothing answers. Bash's /dev/tcp, so the
# demo needs neither curl nor wget to start.
http_status() {
  local host=${1%:*} port=${1##*:} line=
  { exec 3<>"/dev/tcp/$host/$port"; } 2>/dev/null || return 0
  printf 'GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n' "$2" "$1" >&3 || true
  IFS=' ' read -r -t 5 _ line _ <&3 || true
  exec 3<&- 3>&-
  printf '%s' "$line"
}

port_in_use() {
  local host=${1%:*} port=${1##*:}
  ( exec 3<>"/dev/tcp/$host/$port" ) 2>/dev/null
}

for address in "$SERVICE" "$REGISTRY"; do
  if port_in_use "$address"; then
    say "$address is already in use (an earlier demo still running?); stop that first"
    exit 1
  fi
done

if [ "${DEMO_SKIP_BUILD:-}" != 1 ]; then
  say "building (release) the service and the synthetic registry ..."
  "$CARGO" build --release --bin gitlab-registry-usage-rest --example synthetic_registry
fi

registry_pid=
service_pid=
stopping=

# Stop both children (SIGTERM: each exits cleanly on it) and wait for them.
stop_children() {
  local pid
  for pid in $service_pid $registry_pid; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in $service_pid $registry_pid; do
    wait "$pid" 2>/dev/null || true
  done
  service_pid=
  registry_pid=
}

on_signal() {
  stopping=1
  trap - INT TERM
  say "stopping the service and the synthetic registry ..."
  stop_children
  say "stopped"
  exit 0
}
trap on_signal INT TERM
# Any other way out (an error, a child that died) must not leave a process behind.
trap 'stop_children' EXIT

# Background children of a non-interactive shell ignore SIGINT, so a Ctrl-C reaches only
# this script, whose trap stops both children with SIGTERM.
"$REGISTRY_BIN" --listen "$REGISTRY" --auth token --user demo --password demo-token \
  --repositories 40 --tags 5 --layers 3 --shared-layers 4 --multiarch &
registry_pid=$!

"$SERVICE_BIN" -c examples/demo.conf &
service_pid=$!

say "waiting for http://$SERVICE/health to answer 200 (the first scan) ..."
deadline=$((SECONDS + 120))
until [ "$(http_status "$SERVICE" /health)" = 200 ]; do
  for pid in $registry_pid $service_pid; do
    if ! kill -0 "$pid" 2>/dev/null; then
      say "a process exited early (pid $pid); see its messages above"
      exit 1
    fi
  done
  if [ "$SECONDS" -ge "$deadline" ]; then
    say "no 200 from http://$SERVICE/health within 120 s; see the messages above"
    exit 1
  fi
  sleep 0.2
done

if command -v python3 >/dev/null 2>&1; then
  pretty=" | python3 -m json.tool"
else
  pretty=
fi
cat <<EOF

============================================================================================
 The demo is running: the service on http://$SERVICE, the synthetic registry on
 http://$REGISTRY (40 repositories, token auth, plus demo/multiarch:latest).

 In a browser: open http://$SERVICE/ and log in as demo / demo (the dashboard: namespaces
 by what deleting them would free, as a treemap and a table; click to go down).

 From a shell (README.md's quick start shows what each prints):

 Log in (HTTP Basic, demo / demo) and keep the token in TOKEN (prints nothing):
   TOKEN=\$(curl -s -u demo:demo http://$SERVICE/auth_token | sed -n 's/.*"auth_token" *: *"\([^"]*\)".*/\1/p')

 The registry's totals: size, disk_size (bytes), repository_count 41, tag_count 201, timestamp:
   curl -s -H "Authorization: Bearer \$TOKEN" http://$SERVICE/repositories$pretty

 The 5 top-level namespaces, biggest exclusive_size (what deleting it would free) first:
   curl -s -H "Authorization: Bearer \$TOKEN" 'http://$SERVICE/namespaces?sort=-exclusive_size&embed=1'$pretty

 The 3 repositories whose deletion would free the most (no tags, embed=1 stops there):
   curl -s -H "Authorization: Bearer \$TOKEN" 'http://$SERVICE/repositories?sort=-exclusive_size&limit=3&embed=1'$pretty

 One repository with its 5 tags and every link (latest and v4 are the same image):
   curl -s -H "Authorization: Bearer \$TOKEN" 'http://$SERVICE/repositories/group-000%2Fproject-0000?embed=true&links=true'$pretty

 One tag, the multi-arch OCI index (its size counts the layers of all its children):
   curl -s -H "Authorization: Bearer \$TOKEN" http://$SERVICE/repositories/demo/multiarch/tags/latest

 The top 3 namespaces and repositories as tables with human units (scans once itself):
   $SERVICE_BIN -c examples/demo.conf --report 3

 The health check, no token needed: {"status":"ok","snapshot_age_seconds":...,"timestamp":...}:
   curl -s http://$SERVICE/health

 Press Ctrl-C to stop both.
============================================================================================

EOF

# Wait until a signal arrives (the trap exits 0) or a child dies on its own (exit 1).
while :; do
  wait -n 2>/dev/null || true
  [ -n "$stopping" ] && exit 0
  for pid in $registry_pid $service_pid; do
    if ! kill -0 "$pid" 2>/dev/null; then
      say "pid $pid exited on its own; stopping the other one"
      exit 1
    fi
  done
done
