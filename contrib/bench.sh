#!/usr/bin/env bash
# `make bench`: measure the service on this machine and write BENCHMARKS.md.
#
#   1. serving: wrk against the service holding 10k repositories x 10 tags (from a
#      snapshot file), nginx serving the byte-identical bodies in the same run, and a
#      sweep over worker_threads;
#   2. scanning the synthetic registry at 0 and 2 ms per request: full scan, unchanged
#      re-scan, re-scan after 1 % of the tags moved;
#   3. memory: VmHWM of the service at 100k tags (loaded from the file, and scanning
#      itself), idle and after the wrk runs;
#   4. start-up: exec to the first 200 on /health from a 100k-tag snapshot file;
#   5. the static (musl) build next to the glibc build: rate on the same cells, peak RSS.
#
# Everything listens on 127.0.0.1 only, every run is bounded in time, and every process
# this script starts is stopped (and its temp dir removed) on exit, failure or Ctrl-C.
#
# Environment:
#   BENCH_OUT=path       where to write (default BENCHMARKS.md in the repository root)
#   BENCH_DURATION=10s   wrk duration of the serving table (the worker sweep uses half)
#   BENCH_REPEAT=3       runs of each server per cell of the serving table (median kept)
#   BENCH_QUICK=1        trial run: 3 s wrk runs, 1,000 repositories, no 16/32 scan rows
#   BENCH_ONLY=static    section 5 alone, printed to stdout (BENCH_SNAPSHOT=file: serve
#                        that 100k-tag snapshot file instead of scanning once to make one)
#   BENCH_MAX_LOAD=0.5   wait (polling every 60 s, at most BENCH_WAIT seconds, default
#                        900) until the 1-minute load average is below this before measuring
#   BENCH_WARM=1         grow the servers' tiny_http pools before each wrk run and scan
#                        (`bench warm`): only needed for a build without the pool fix in
#                        patches/tiny_http, whose measurements it would otherwise distort
# Text below the line `<!-- analysis -->` of an existing BENCHMARKS.md is kept.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT=${BENCH_OUT:-$ROOT/BENCHMARKS.md}
QUICK=${BENCH_QUICK:-0}
DURATION=${BENCH_DURATION:-10s}
REPEAT=${BENCH_REPEAT:-3}
SWEEP_DURATION=5s
WARM=${BENCH_WARM:-0}
REPOSITORIES=10000
TAGS=10
if [ "$QUICK" = 1 ]; then
    DURATION=3s
    SWEEP_DURATION=2s
    REPOSITORIES=1000
fi
CARGO=${CARGO:-cargo}
REL=$ROOT/target/release
BIN=$REL/gitlab-registry-usage-rest
REGISTRY_BIN=$REL/examples/synthetic_registry
BENCH=$REL/examples/bench
MUSL_TARGET=x86_64-unknown-linux-musl
MUSL_BIN=$ROOT/target/$MUSL_TARGET/release/gitlab-registry-usage-rest
# The cells on which section 5 compares the static build with the glibc build.
STATIC_CELLS=(tag repository_embed_links)
# One repository and one tag of the synthetic registry (group-NNN/project-NNNN, v1..v9, latest).
REPO=group-050/project-0500
REPO_ENC=group-050%2Fproject-0500
TAG=v5
# A top-level namespace of the synthetic registry (its group).
GROUP=group-050

umask 077 # the configs hold the JWT secret
WORK=$(mktemp -d "${TMPDIR:-/tmp}/grur-bench.XXXXXX")
PIDS=()

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

stop_pid() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local pid
    for pid in "${PIDS[@]+"${PIDS[@]}"}"; do
        stop_pid "$pid"
    done
    if [ "$rc" != 0 ]; then
        log "FAILED (exit $rc); last lines of the logs:"
        for f in "$WORK"/*.log "$WORK"/nginx/*.log; do
            [ -f "$f" ] || continue
            echo "== $f" >&2
            tail -n 5 "$f" >&2
        done
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Start a background process, remember its pid in $LAST_PID (and for the cleanup).
start_bg() {
    local logfile=$1
    shift
    "$@" >"$logfile" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}

# Stop a process started with start_bg and forget it.
stop_bg() {
    local pid=$1 keep=() p
    stop_pid "$pid"
    for p in "${PIDS[@]+"${PIDS[@]}"}"; do
        [ "$p" = "$pid" ] || keep+=("$p")
    done
    PIDS=("${keep[@]+"${keep[@]}"}")
}

# Wait until GET url answers 200 (at most $2 seconds).
wait_200() {
    local url=$1 limit=${2:-60} i
    for i in $(seq 1 $((limit * 20))); do
        if [ "$(curl -s -o /dev/null -w '%{http_code}' "$url" || true)" = 200 ]; then
            return 0
        fi
        sleep 0.05
    done
    log "no 200 from $url within ${limit}s"
    return 1
}

hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
threads_of() { awk '/^Threads:/ {print $2}' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }

load1() { cut -d' ' -f1 /proc/loadavg; }

# ---------------------------------------------------------------------------------------
# Tools and binaries
# ---------------------------------------------------------------------------------------
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || need+=(nginx-light)
command -v curl >/dev/null || need+=(curl)
command -v jq >/dev/null || need+=(jq)
if [ "${#need[@]}" -gt 0 ]; then
    log "installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
NGINX=$(command -v nginx)

log "building release binaries"
"$CARGO" build --release --bin gitlab-registry-usage-rest --example synthetic_registry --example bench 2>&1 | tail -n 1 >&2
log "building the static (musl) release binary"
"$CARGO" build --release --target "$MUSL_TARGET" --bin gitlab-registry-usage-rest 2>&1 | tail -n 1 >&2

if [ -n "${BENCH_MAX_LOAD:-}" ]; then
    waited=0
    while awk -v l="$(load1)" -v m="$BENCH_MAX_LOAD" 'BEGIN {exit !(l >= m)}'; do
        if [ "$waited" -ge "${BENCH_WAIT:-900}" ]; then
            log "load $(load1) still >= $BENCH_MAX_LOAD after ${waited}s; measuring anyway"
            break
        fi
        log "load $(load1) >= $BENCH_MAX_LOAD; waiting 60 s"
        sleep 60
        waited=$((waited + 60))
    done
fi

LOAD_BEFORE=$(cat /proc/loadavg)
TOP_BEFORE=$(top -bn1 | sed -n '1,3p;7,12p')
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain 2>/dev/null)" ]; then
    COMMIT="$COMMIT (with uncommitted changes in the work tree)"
fi
CPU_MODEL=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
STARTED_AT=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
SECONDS=0

# ---------------------------------------------------------------------------------------
# Configs
# ---------------------------------------------------------------------------------------
SECRET=$(head -c 48 /dev/urandom | base64 -w0)
BENCH_USER=bench
BENCH_PASSWORD=$(head -c 18 /dev/urandom | base64 -w0 | tr '+/' '-_')
# cost 5, as `htpasswd -B` writes it
"$BENCH" htpasswd --user "$BENCH_USER" --password "$BENCH_PASSWORD" --cost 5 >"$WORK/htpasswd"
DEAD_PORT=$("$BENCH" port) # nothing listens there: "registry unreachable"

# write_config FILE PORT WORKERS SNAPSHOT_FILE REGISTRY_URL [REFRESH_INTERVAL [HTPASSWD]]
write_config() {
    cat >"$1" <<EOF
[general]
socket_host = 127.0.0.1
socket_port = $2
worker_threads = $3
snapshot_file = $4
refresh_interval = ${6:-1 hour}
auth_backend = htpasswd

[htpasswd]
file = ${7:-$WORK/htpasswd}

[jwt]
secret_key = $SECRET

[registry]
registry_base_url = $5
gitlab_base_url = $5
username = demo
access_token = demo-token
concurrency = 8
EOF
}

# ---------------------------------------------------------------------------------------
# 2. Scanning (first: it also makes the snapshot file the other sections serve)
# ---------------------------------------------------------------------------------------
SNAP=$WORK/snapshot.json
SCAN_CMDS=()

# scan_run LATENCY_MS REGISTRY_THREADS OUTFILE BENCH-SCAN-ARGS...
start_registry() {
    local latency=$1 threads=$2
    REG_PORT=$("$BENCH" port)
    start_bg "$WORK/registry-$latency.log" "$REGISTRY_BIN" --listen "127.0.0.1:$REG_PORT" \
        --repositories "$REPOSITORIES" --tags "$TAGS" --latency-ms "$latency" --threads "$threads"
    REG_PID=$LAST_PID
    REGISTRY_CMD="synthetic_registry --listen 127.0.0.1:PORT --repositories $REPOSITORIES --tags $TAGS --latency-ms $latency --threads $threads"
    wait_200 "http://127.0.0.1:$REG_PORT/control/stats" 30
}

scan_rows() {
    local out=$1
    shift
    if [ "$WARM" = 1 ]; then
        set -- "$@" --warm 40
    fi
    local args="$*"
    SCAN_CMDS+=("bench scan --registry http://127.0.0.1:PORT/ ${args//$WORK\//}")
    timeout 600 "$BENCH" scan --registry "http://127.0.0.1:$REG_PORT/" "$@" >>"$out"
}

# start_service WORKERS [BINARY NAME]: the service (default $BIN) from the snapshot file;
# sets SVC_PORT SVC_PID TOKEN
start_service() {
    local name=$1${3:+-$3}
    SVC_PORT=$("$BENCH" port)
    write_config "$WORK/service-$name.conf" "$SVC_PORT" "$1" "$SNAP" "$UNREACHABLE"
    start_bg "$WORK/service-$name.log" "${2:-$BIN}" -c "$WORK/service-$name.conf"
    SVC_PID=$LAST_PID
    wait_200 "http://127.0.0.1:$SVC_PORT/health" 30
    TOKEN=$(curl -sf -u "$BENCH_USER:$BENCH_PASSWORD" "http://127.0.0.1:$SVC_PORT/auth_token" | jq -r .auth_token)
    [ -n "$TOKEN" ] && [ "$TOKEN" != null ]
}

# wrk_run NAME URL CONNECTIONS DURATION WARM_PORT: one wrk run, output in $WORK/wrk-NAME.txt
wrk_run() {
    local name=$1 url=$2 c=$3 d=$4 warm_port=$5
    if [ "$WARM" = 1 ] && [ -n "$warm_port" ]; then
        # for builds without the tiny_http pool fix (see examples/bench.rs)
        "$BENCH" warm --port "$warm_port" --connections $((c + 16)) >/dev/null
    fi
    timeout 120 wrk -t2 -c"$c" -d"$d" --latency --timeout 5s \
        -H "Authorization: Bearer $TOKEN" "$url" >"$WORK/wrk-$name.txt"
}

# parse_wrk NAME -> "rps p50_ms p99_ms avg_ms errors non2xx transfer"
parse_wrk() {
    awk '
        function ms(v) {
            if (v ~ /us$/) return v / 1000
            if (v ~ /ms$/) return v + 0
            if (v ~ /m$/) return v * 60000
            if (v ~ /s$/) return v * 1000
            return v + 0
        }
        /^ +Latency / && !seen { avg = ms($2); seen = 1 }
        /^ +50% / { p50 = ms($2) }
        /^ +99% / { p99 = ms($2) }
        /^Requests\/sec:/ { rps = $2 }
        /^Transfer\/sec:/ { tr = $2 }
        /Socket errors:/ { err = $4 + $6 + $8 + $10 }
        /Non-2xx or 3xx responses:/ { bad = $NF }
        END { printf "%.0f %.3f %.3f %.3f %d %d %s\n", rps, p50, p99, avg, err, bad, tr }
    ' "$WORK/wrk-$1.txt"
}

# The resources: name, path on our service, file name under nginx.
NAMES=(repository tag repository_embed_links collection_embed top_exclusive namespace_embed)
declare -A PATHS=(
    [repository]="/repositories/$REPO_ENC"
    [tag]="/repositories/$REPO_ENC/tags/$TAG"
    [repository_embed_links]="/repositories/$REPO_ENC?embed=true&links=true"
    [collection_embed]="/repositories?embed=true"
    [top_exclusive]="/repositories?sort=-exclusive_size&limit=20&embed=1"
    [namespace_embed]="/namespaces/$GROUP?embed=1"
)
# BENCH_NAMES="top_exclusive namespace_embed": serve only these (a trial of new cells).
if [ -n "${BENCH_NAMES:-}" ]; then
    read -r -a NAMES <<<"$BENCH_NAMES"
fi

# median_run PREFIX: of the runs PREFIX-1..PREFIX-$REPEAT, the parse_wrk line of the one
# with the median req/s (so its latencies come with it)
median_run() {
    local r
    for r in $(seq 1 "$REPEAT"); do
        parse_wrk "$1-$r"
    done | sort -n -k1,1 | sed -n "$(((REPEAT + 1) / 2))p"
}
runs_of() {
    local r out=()
    for r in $(seq 1 "$REPEAT"); do
        out+=("$(parse_wrk "$1-$r" | cut -d' ' -f1)")
    done
    local IFS=,
    echo "${out[*]}"
}


# ---------------------------------------------------------------------------------------
# 5. The static (musl) build, which the image and the tarball ship, next to the glibc build
# ---------------------------------------------------------------------------------------
# static_compare OUT: both builds serve the snapshot file at once; on each cell the two
# alternate $REPEAT times (medians kept), then /repositories?embed=true, then VmHWM of
# each. Writes a markdown section to OUT.
static_compare() {
    local out=$1 n c r g_port g_pid s_port s_pid row g s
    start_service 2 "$BIN" glibc
    g_port=$SVC_PORT g_pid=$SVC_PID
    start_service 2 "$MUSL_BIN" static
    s_port=$SVC_PORT s_pid=$SVC_PID
    {
        echo "## 5. The static (musl) build next to the glibc build"
        echo
        echo "\`$MUSL_TARGET\` release binary (mimalloc, see src/memory.rs) and \`target/release\`, both serving"
        echo "the $((REPOSITORIES * TAGS))-tag snapshot file with \`worker_threads = 2\`; \`wrk -t2 -cC -d$DURATION\`, the"
        echo "builds alternating, median of $REPEAT runs each. Target: at least 0.9 of the glibc rate, peak RSS within 10 %."
        echo
        echo "| resource | connections | glibc req/s | static req/s | static / glibc |"
        echo "|---|---:|---:|---:|---:|"
    } >"$out"
    for n in "${STATIC_CELLS[@]}"; do
        for c in 16 64; do
            for r in $(seq 1 "$REPEAT"); do
                log "static vs glibc: wrk $n -c$c (run $r of $REPEAT)"
                wrk_run "glibc-$n-$c-$r" "http://127.0.0.1:$g_port${PATHS[$n]}" "$c" "$DURATION" ""
                wrk_run "static-$n-$c-$r" "http://127.0.0.1:$s_port${PATHS[$n]}" "$c" "$DURATION" ""
            done
            g=$(median_run "glibc-$n-$c" | cut -d' ' -f1)
            s=$(median_run "static-$n-$c" | cut -d' ' -f1)
            row="| $n | $c | $g ($(runs_of "glibc-$n-$c")) | $s ($(runs_of "static-$n-$c")) |"
            echo "$row $(awk -v a="$s" -v b="$g" 'BEGIN {printf "%.2f", a / b}') |" >>"$out"
        done
    done
    log "static vs glibc: wrk collection_embed -c16"
    wrk_run "glibc-collection" "http://127.0.0.1:$g_port${PATHS[collection_embed]}" 16 "$DURATION" ""
    wrk_run "static-collection" "http://127.0.0.1:$s_port${PATHS[collection_embed]}" 16 "$DURATION" ""
    g=$(hwm_kib "$g_pid")
    s=$(hwm_kib "$s_pid")
    {
        echo
        echo "Peak RSS (VmHWM) after all of these and \`/repositories?embed=true\` at 16 connections:"
        echo "glibc $(mib "$g") MiB, static $(mib "$s") MiB ($(awk -v a="$s" -v b="$g" 'BEGIN {printf "%.2f", a / b}') of glibc)."
        echo
    } >>"$out"
    stop_bg "$s_pid"
    stop_bg "$g_pid"
}

# BENCH_ONLY=static: this section alone (BENCH_SNAPSHOT=file: serve that snapshot file
# instead of scanning the synthetic registry once to make one); prints it to stdout.
if [ "${BENCH_ONLY:-}" = static ]; then
    SNAP=${BENCH_SNAPSHOT:-$WORK/snapshot.json}
    UNREACHABLE=http://127.0.0.1:$DEAD_PORT/
    if [ -z "${BENCH_SNAPSHOT:-}" ]; then
        log "static: scanning the synthetic registry once for the snapshot file"
        start_registry 0 4
        timeout 600 "$BENCH" scan --registry "http://127.0.0.1:$REG_PORT/" --concurrency 8 --once --save "$SNAP" >/dev/null
        stop_bg "$REG_PID"
    fi
    static_compare "$WORK/static.md"
    cat "$WORK/static.md"
    exit 0
fi

log "scanning at 0 ms per request"
start_registry 0 4
REGISTRY_CMD_0=$REGISTRY_CMD
scan_rows "$WORK/scan-0.jsonl" --concurrency 8 --move-percent 1 --save "$SNAP"

# 3b. The service scanning the same registry itself: its peak RSS includes the scan, and
# from the second scan on, the previous snapshot too.
log "memory of the service while it scans the registry itself (two scans, 20 s apart)"
SVC_PORT=$("$BENCH" port)
write_config "$WORK/scanning.conf" "$SVC_PORT" 2 "" "http://127.0.0.1:$REG_PORT/" "20 seconds"
if [ "$WARM" = 1 ]; then
    "$BENCH" warm --port "$REG_PORT" --connections 40 --path /v2/ >/dev/null
fi
start_bg "$WORK/service-scanning.log" "$BIN" -c "$WORK/scanning.conf"
SVC_PID=$LAST_PID
wait_200 "http://127.0.0.1:$SVC_PORT/health" 300
sleep 1
SCANNING_HWM=$(hwm_kib "$SVC_PID")
SCANNING_RSS=$(rss_kib "$SVC_PID")
for i in $(seq 1 120); do
    [ "$(grep -c 'scan finished' "$WORK/service-scanning.log" || true)" -ge 2 ] && break
    sleep 1
done
sleep 1
SCANNING2_HWM=$(hwm_kib "$SVC_PID")
SCANNING2_RSS=$(rss_kib "$SVC_PID")
SCANNING_LINES=$(grep 'scan finished' "$WORK/service-scanning.log" | head -n 2 || true)
stop_bg "$SVC_PID"
stop_bg "$REG_PID"

log "scanning at 2 ms per request"
start_registry 2 64
REGISTRY_CMD_2=$REGISTRY_CMD
scan_rows "$WORK/scan-2.jsonl" --concurrency 8 --move-percent 1
if [ "$QUICK" != 1 ]; then
    scan_rows "$WORK/scan-2.jsonl" --concurrency 16 --once
    scan_rows "$WORK/scan-2.jsonl" --concurrency 32 --once
fi
stop_bg "$REG_PID"

# ---------------------------------------------------------------------------------------
# 1. Serving, and 3a. memory at 100k tags
# ---------------------------------------------------------------------------------------
SNAP_BYTES=$(stat -c %s "$SNAP")
UNREACHABLE=http://127.0.0.1:$DEAD_PORT/

log "serving: service from the snapshot file (worker_threads = 2, the default)"
start_service 2
IDLE_HWM=$(hwm_kib "$SVC_PID")
IDLE_RSS=$(rss_kib "$SVC_PID")
OURS=http://127.0.0.1:$SVC_PORT

declare -A SIZES
mkdir -p "$WORK/www" "$WORK/nginx"
for n in "${NAMES[@]}"; do
    code=$(curl -s -o "$WORK/www/$n" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$OURS${PATHS[$n]}")
    if [ "$code" != 200 ]; then
        log "GET ${PATHS[$n]} answered $code"
        exit 1
    fi
    SIZES[$n]=$(stat -c %s "$WORK/www/$n")
done

# nginx's workers run as an unprivileged user: let them reach (not list) $WORK and read www/.
chmod 711 "$WORK"
chmod 755 "$WORK/www"
chmod 644 "$WORK"/www/*
NGINX_PORT=$("$BENCH" port)
cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 2;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65s;
    keepalive_requests 1000000;
    open_file_cache max=16 inactive=60s;
    types { }
    default_type application/hal+json;
    client_body_temp_path $WORK/nginx/body;
    proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi;
    uwsgi_temp_path $WORK/nginx/uwsgi;
    scgi_temp_path $WORK/nginx/scgi;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $WORK/www;
        location / { }
    }
}
EOF
start_bg "$WORK/nginx.log" "$NGINX" -e "$WORK/nginx/error.log" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf"
NGINX_PID=$LAST_PID
wait_200 "http://127.0.0.1:$NGINX_PORT/tag" 10
for n in "${NAMES[@]}"; do
    curl -s "http://127.0.0.1:$NGINX_PORT/$n" | cmp -s - "$WORK/www/$n" || {
        log "nginx does not serve the same bytes for $n"
        exit 1
    }
done

SERVE_ROWS=()
declare -A SERVE_RUNS
for n in "${NAMES[@]}"; do
    for c in 16 64; do
        # Ours and nginx alternate, $REPEAT times: on 2 shared cores one 10 s run of either
        # can be off by 30 % (nginx gave 101k to 161k req/s for the same small file in
        # one run); the table takes each server's median run.
        for r in $(seq 1 "$REPEAT"); do
            log "wrk $n -c$c (run $r of $REPEAT)"
            wrk_run "ours-$n-$c-$r" "$OURS${PATHS[$n]}" "$c" "$DURATION" "$SVC_PORT"
            wrk_run "nginx-$n-$c-$r" "http://127.0.0.1:$NGINX_PORT/$n" "$c" "$DURATION" ""
        done
        SERVE_ROWS+=("$n $c $(median_run "ours-$n-$c") $(median_run "nginx-$n-$c")")
        SERVE_RUNS[$n-$c]="$(runs_of "ours-$n-$c") / $(runs_of "nginx-$n-$c")"
    done
done
LOADED_HWM=$(hwm_kib "$SVC_PID")
LOADED_RSS=$(rss_kib "$SVC_PID")
LOADED_THREADS=$(threads_of "$SVC_PID")

# The connection-pool check on a fresh process (bench burst): connections that arrive
# together, kept open, one request each.
stop_bg "$SVC_PID"
start_service 2
BURST_16=$("$BENCH" burst --port "$SVC_PORT" --connections 16 --pace-us 0 --path /health)
stop_bg "$SVC_PID"
start_service 2
BURST_64=$("$BENCH" burst --port "$SVC_PORT" --connections 64 --pace-us 0 --path /health)
stop_bg "$SVC_PID"

# worker_threads sweep on the tag resource
SWEEP_ROWS=()
for w in 1 2 4 8; do
    log "worker_threads = $w"
    start_service "$w"
    for c in 16 64; do
        wrk_run "sweep-$w-$c" "http://127.0.0.1:$SVC_PORT${PATHS[tag]}" "$c" "$SWEEP_DURATION" "$SVC_PORT"
        SWEEP_ROWS+=("$w $c $(parse_wrk "sweep-$w-$c")")
    done
    stop_bg "$SVC_PID"
done
for c in 16 64; do
    wrk_run "sweep-nginx-$c" "http://127.0.0.1:$NGINX_PORT/tag" "$c" "$SWEEP_DURATION" ""
    SWEEP_ROWS+=("nginx $c $(parse_wrk "sweep-nginx-$c")")
done
stop_bg "$NGINX_PID"

log "the static build next to the glibc build"
static_compare "$WORK/static.md"

# ---------------------------------------------------------------------------------------
# 4. Start-up from the snapshot file
# ---------------------------------------------------------------------------------------
log "start-up from the snapshot file"
START_PORT=$("$BENCH" port)
write_config "$WORK/startup.conf" "$START_PORT" 2 "$SNAP" "$UNREACHABLE"
STARTUP=$("$BENCH" startup --bin "$BIN" --config "$WORK/startup.conf" --port "$START_PORT" --runs 5 | tail -n 1)
# The same with an htpasswd file of cost 12 (htpasswd -B -C 12): start-up must not depend
# on the cost (before the fixed dummy hash it computed one at that cost: +280 ms).
"$BENCH" htpasswd --user "$BENCH_USER" --password "$BENCH_PASSWORD" --cost 12 >"$WORK/htpasswd-12"
write_config "$WORK/startup-12.conf" "$START_PORT" 2 "$SNAP" "$UNREACHABLE" "1 hour" "$WORK/htpasswd-12"
STARTUP_12=$("$BENCH" startup --bin "$BIN" --config "$WORK/startup-12.conf" --port "$START_PORT" --runs 3 | tail -n 1)
LOAD_ONLY=$("$BENCH" load --snapshot "$SNAP" --runs 5)
USAGE_ONLY=$("$BENCH" usage --snapshot "$SNAP" --runs 5)

LOAD_AFTER=$(cat /proc/loadavg)
ELAPSED=$SECONDS

# ---------------------------------------------------------------------------------------
# BENCHMARKS.md
# ---------------------------------------------------------------------------------------
pass() { if [ "$1" = 1 ]; then echo "**pass**"; else echo "**FAIL**"; fi; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "-"}'; }
# Little's law: connections actually busy = requests/s x mean latency.
busy() { awk -v r="$1" -v l="$2" 'BEGIN {printf "%.1f", r * l / 1000}'; }

ANALYSIS=""
if [ -f "$OUT" ] && grep -q '^<!-- analysis -->$' "$OUT"; then
    ANALYSIS=$(sed -n '/^<!-- analysis -->$/,$p' "$OUT" | tail -n +2)
fi

{
    echo "# Benchmarks"
    echo
    echo "Written by \`make bench\` (contrib/bench.sh) on $STARTED_AT in ${ELAPSED} s."
    if [ "$QUICK" = 1 ]; then
        echo
        echo "**Trial run (BENCH_QUICK=1): 1,000 repositories, short wrk runs. Not the reference numbers.**"
    fi
    echo
    echo "## Machine"
    echo
    echo "| | |"
    echo "|---|---|"
    echo "| cores (nproc) | $(nproc) |"
    echo "| CPU | $CPU_MODEL |"
    echo "| memory | $(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo) |"
    echo "| kernel | $(uname -r) |"
    echo "| rustc | $(rustc --version) |"
    echo "| commit | $COMMIT |"
    echo "| wrk | $(wrk -v 2>&1 | head -n 1 | cut -d' ' -f1-2) |"
    echo "| nginx | $("$NGINX" -v 2>&1 | sed 's/.*: //') |"
    echo "| load average before (1, 5, 15 min) | $(echo "$LOAD_BEFORE" | cut -d' ' -f1-3) |"
    echo "| load average after | $(echo "$LOAD_AFTER" | cut -d' ' -f1-3) |"
    echo
    echo "Other processes at the start (\`top -bn1\`):"
    echo
    echo '```'
    echo "$TOP_BEFORE"
    echo '```'
    echo
    echo "The load generators (wrk, the scanner) run on the same 2 cores as the servers."
    echo

    echo "## 1. Serving"
    echo
    echo "The service holds the synthetic registry's $REPOSITORIES repositories x $TAGS tags, loaded from the"
    echo "snapshot file the 0 ms scan below wrote ($(mib $((SNAP_BYTES / 1024))) MiB), with the registry unreachable (no"
    echo "scan runs during the measurement). \`worker_threads = 2\` (the default). Every request carries"
    echo "\`Authorization: Bearer <token>\` (from \`/auth_token\`, htpasswd user, random 48-byte secret_key)."
    echo "nginx serves the bodies fetched from the service (compared byte for byte) as static files."
    echo
    echo "Commands (the token and the ports vary per run):"
    echo
    echo '```'
    if [ "$WARM" = 1 ]; then
        echo "bench warm --port PORT --connections C+16        # our service only (BENCH_WARM=1)"
    fi
    echo "wrk -t2 -cC -d$DURATION --latency --timeout 5s -H 'Authorization: Bearer \$TOKEN' URL"
    echo '```'
    echo
    echo "Each cell: $REPEAT runs of each server, alternating; the table shows each server's median"
    echo "run (req/s and its latencies), the ratio is of the two medians, and \"all runs\" lists"
    echo "every run's req/s (ours / nginx)."
    echo
    echo "| resource | body bytes | conns | ours req/s | ours p50 ms | ours p99 ms | nginx req/s | nginx p50 ms | nginx p99 ms | ours/nginx | all runs req/s ours / nginx | busy conns ours/nginx | errors ours/nginx |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"
    for row in "${SERVE_ROWS[@]}"; do
        read -r n c rps p50 p99 avg err bad tr nrps np50 np99 navg nerr nbad ntr <<<"$row"
        echo "| \`${PATHS[$n]}\` | ${SIZES[$n]} | $c | $rps | $p50 | $p99 | $nrps | $np50 | $np99 | $(ratio "$rps" "$nrps") | ${SERVE_RUNS[$n-$c]} | $(busy "$rps" "$avg") / $(busy "$nrps" "$navg") | $((err + bad)) / $((nerr + nbad)) |"
    done
    echo
    echo "Resources: \`/repositories/$REPO_ENC\` (repository), \`.../tags/$TAG\` (tag), the repository"
    echo "with its tags embedded and links, and the whole collection embedded (every repository and tag)."
    echo "nginx serves them as \`/repository\`, \`/tag\`, \`/repository_embed_links\`, \`/collection_embed\`."
    echo "The usage views: the top 20 repositories by exclusive bytes with their numbers embedded"
    echo "(\`/top_exclusive\`), and one top-level namespace with its children embedded (\`/namespace_embed\`);"
    echo "both are cached per snapshot generation like the other documents (precomputed orders)."
    echo "\"busy conns\" is requests/s x mean latency (Little's law). wrk's latency includes its own"
    echo "scheduling delays on the 2 shared cores, so this can exceed the connection count; far below it"
    echo "means connections were left unserved. \"errors\" are wrk socket errors plus non-2xx answers."
    echo
    echo "nginx settings (\`nginx.conf\` written by the script): \`worker_processes 2\` (one per core, as"
    echo "the service's 2 HTTP workers), \`worker_connections 1024\`, \`access_log off\`, \`sendfile on\`,"
    echo "\`tcp_nopush on\`, \`tcp_nodelay on\`, \`keepalive_timeout 65s\`, \`keepalive_requests 1000000\`"
    echo "(wrk's keep-alive connections are never closed, as with the service), \`open_file_cache max=16\`"
    echo "(the bodies stay open: nginx does not re-open the file per request, the service does not"
    echo "re-render), \`default_type application/hal+json\` with an empty \`types\` map."
    echo
    echo "### worker_threads"
    echo
    echo "The tag resource (${SIZES[tag]} bytes), \`wrk -t2 -cC -d$SWEEP_DURATION --latency\`, one fresh process per setting:"
    echo
    echo "| worker_threads | conns | req/s | p50 ms | p99 ms | busy conns | errors |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    best16=""
    best16_rps=0
    best64=""
    best64_rps=0
    for row in "${SWEEP_ROWS[@]}"; do
        read -r w c rps p50 p99 avg err bad tr <<<"$row"
        echo "| $w | $c | $rps | $p50 | $p99 | $(busy "$rps" "$avg") | $((err + bad)) |"
        if [ "$w" != nginx ]; then
            if [ "$c" = 16 ] && [ "$rps" -gt "$best16_rps" ]; then best16=$w; best16_rps=$rps; fi
            if [ "$c" = 64 ] && [ "$rps" -gt "$best64_rps" ]; then best64=$w; best64_rps=$rps; fi
        fi
    done
    echo
    echo "Most requests/s: worker_threads = $best16 at 16 connections, $best64 at 64 (measured in this run)."
    echo

    echo "### Connections that arrive together"
    echo
    echo "A fresh service, N connections opened at once and kept open, one \`GET /health\` on each"
    echo "(\`bench burst --port PORT --connections N --pace-us 0\`, 3 s per answer):"
    echo
    echo "| connections | answered | unanswered after 3 s | slowest answer ms |"
    echo "|---:|---:|---:|---:|"
    for b in "$BURST_16" "$BURST_64"; do
        echo "| $(jq -r .connections <<<"$b") | $(jq -r .answered <<<"$b") | $(jq -r .unanswered <<<"$b") | $(jq -r '.slowest_answered_ms | . * 10 | round / 10' <<<"$b") |"
    done
    echo
    echo "Upstream tiny_http 0.12 starts a thread for a new connection only when no pool thread is"
    echo "idle at that instant; of connections that arrive together, some then wait unanswered until"
    echo "another connection closes (with keep-alive clients: for good). patches/tiny_http carries a fix"
    echo "(patches/README.md); this check fails (unanswered > 0) without it. wrk also opens its"
    echo "connections together, so without the fix a run could use 4 of its 16 connections: the"
    echo "\"busy conns\" column above would show it."
    if [ "$WARM" = 1 ]; then
        echo "This run grew the pools with \`bench warm\` before each wrk run and scan (BENCH_WARM=1)."
    fi
    echo

    echo "## 2. Scanning"
    echo
    echo "\`examples/bench.rs scan\` runs \`scan::scan\` (the service's code) against the synthetic registry:"
    echo "a full scan, a re-scan of the unchanged registry with the first snapshot as the previous one,"
    echo "then \`POST /control/move?percent=1\` and a re-scan. The lower bound is requests x latency /"
    echo "concurrency (every request, token requests included, waits the latency)."
    echo
    echo '```'
    echo "$REGISTRY_CMD_0"
    echo "$REGISTRY_CMD_2"
    for cmd in "${SCAN_CMDS[@]}"; do echo "$cmd"; done
    echo '```'
    echo
    echo "| latency ms | concurrency | scan | seconds | requests | token | catalog | tags | manifest HEAD | manifest GET | retries | lower bound s | seconds / bound | failed repos | totals = expected |"
    echo "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    for f in 0 2; do
        jq -r --arg lat "$f" '
            . as $r | ($lat | tonumber) as $l
            | ($r.requests.total * $l / 1000 / $r.concurrency) as $bound
            | [$lat, $r.concurrency, $r.phase, ($r.seconds * 100 | round / 100),
               $r.requests.total, $r.requests.token, $r.requests.catalog, $r.requests.tags,
               $r.requests.manifest_head, $r.requests.manifest_get, $r.requests.retries,
               (if $l > 0 then ($bound * 100 | round / 100) else "-" end),
               (if $l > 0 then ($r.seconds / $bound * 100 | round / 100) else "-" end),
               $r.failed_repositories,
               (if $r.extra.expected_size == null then "-"
                elif ($r.size == $r.extra.expected_size and $r.disk_size == $r.extra.expected_disk_size) then "yes"
                else "NO" end)]
            | "| " + (map(tostring) | join(" | ")) + " |"
        ' "$WORK/scan-$f.jsonl"
    done
    echo
    MOVED_TAGS=$(jq -s -r 'map(select(.phase == "moved")) | .[0].extra.moved_tags' "$WORK/scan-0.jsonl")
    MISMATCH=$(for f in 0 2; do
        jq -r --arg f "$f" 'select(.requests.manifest_get != .registry_stats.manifest_get
            or .requests.manifest_head != .registry_stats.manifest_head
            or .requests.tags != .registry_stats.tags or .requests.token != .registry_stats.token)
            | "\($f) ms c=\(.concurrency) \(.phase)"' "$WORK/scan-$f.jsonl"
    done | paste -sd, -)
    echo "The move changed $MOVED_TAGS of $((REPOSITORIES * TAGS)) tags (each moved tag gets a new manifest)."
    if [ -z "$MISMATCH" ]; then
        echo "The registry's own counters (\`/control/stats\`) equal the client's in every row."
    else
        echo "The registry's own counters (\`/control/stats\`) differ from the client's in: $MISMATCH."
    fi
    echo

    echo "## 3. Memory"
    echo
    echo "| process | VmHWM (peak RSS) | VmRSS | threads |"
    echo "|---|---:|---:|---:|"
    echo "| service, $((REPOSITORIES * TAGS)) tags from the snapshot file, idle after load | $(mib "$IDLE_HWM") MiB | $(mib "$IDLE_RSS") MiB | |"
    echo "| same process after all the wrk runs above | $(mib "$LOADED_HWM") MiB | $(mib "$LOADED_RSS") MiB | $LOADED_THREADS |"
    echo "| service that scans the 0 ms registry itself (no snapshot file), 1 s after its first scan | $(mib "$SCANNING_HWM") MiB | $(mib "$SCANNING_RSS") MiB | |"
    echo "| same process 1 s after its second scan (\`refresh_interval = 20 seconds\`; the previous snapshot is kept during the scan) | $(mib "$SCANNING2_HWM") MiB | $(mib "$SCANNING2_RSS") MiB | |"
    echo
    echo "Its scan log lines:"
    echo
    echo '```'
    echo "${SCANNING_LINES:-none}"
    echo '```'
    echo

    echo "## 4. Start-up"
    echo
    echo '```'
    echo "bench startup --bin target/release/gitlab-registry-usage-rest --config startup.conf --port PORT --runs 5"
    echo "bench load --snapshot snapshot.json --runs 5      # snapshot::load alone, in-process"
    echo '```'
    echo
    echo "Exec to the first 200 on \`GET /health\` (a fresh TCP connection every 200 us), snapshot file of"
    echo "$((REPOSITORIES * TAGS)) tags ($SNAP_BYTES bytes), registry unreachable:"
    echo
    echo "| | runs ms | min ms | median ms |"
    echo "|---|---|---:|---:|"
    echo "| exec to first 200 | $(jq -r '.runs_ms | map(. * 10 | round / 10 | tostring) | join(", ")' <<<"$STARTUP") | $(jq -r '.min_ms * 10 | round / 10' <<<"$STARTUP") | $(jq -r '.median_ms * 10 | round / 10' <<<"$STARTUP") |"
    echo "| \`snapshot::load\` alone | $(jq -r '.runs_ms | map(. * 10 | round / 10 | tostring) | join(", ")' <<<"$LOAD_ONLY") | $(jq -r '.min_ms * 10 | round / 10' <<<"$LOAD_ONLY") | $(jq -r '.median_ms * 10 | round / 10' <<<"$LOAD_ONLY") |"
    echo "| \`Usage::of\` (the usage index, built once per snapshot) | $(jq -r '.runs_ms | map(. * 10 | round / 10 | tostring) | join(", ")' <<<"$USAGE_ONLY") | $(jq -r '.min_ms * 10 | round / 10' <<<"$USAGE_ONLY") | $(jq -r '.median_ms * 10 | round / 10' <<<"$USAGE_ONLY") |"
    echo "| exec to first 200, htpasswd file of bcrypt cost 12 instead of 5 | $(jq -r '.runs_ms | map(. * 10 | round / 10 | tostring) | join(", ")' <<<"$STARTUP_12") | $(jq -r '.min_ms * 10 | round / 10' <<<"$STARTUP_12") | $(jq -r '.median_ms * 10 | round / 10' <<<"$STARTUP_12") |"
    echo
    echo "The htpasswd file of the runs above has cost 5 (what \`htpasswd -B\` writes). Start-up"
    echo "hashes nothing (the dummy entry for unknown users is a fixed, well-formed hash), so the"
    echo "last row must match the first whatever the file's cost."
    echo

    echo "## Targets"
    echo
    echo "| target | measured | result |"
    echo "|---|---|---|"
    for n in repository tag repository_embed_links top_exclusive namespace_embed; do
        for row in "${SERVE_ROWS[@]}"; do
            read -r rn c rps p50 p99 avg err bad tr nrps _ <<<"$row"
            [ "$rn" = "$n" ] || continue
            if [ "$c" = 16 ]; then
                r=$(ratio "$rps" "$nrps")
                ok=$(awk -v r="$r" 'BEGIN {print (r >= 0.6) ? 1 : 0}')
                echo "| \`${PATHS[$n]}\`: >= 60 % of nginx's req/s at 16 connections | $rps vs $nrps req/s = $r | $(pass "$ok") |"
            else
                ok=$(awk -v p="$p99" 'BEGIN {print (p < 5) ? 1 : 0}')
                echo "| \`${PATHS[$n]}\`: p99 < 5 ms at 64 connections | $p99 ms | $(pass "$ok") |"
            fi
        done
    done
    for row in "${SERVE_ROWS[@]}"; do
        read -r rn c rps p50 p99 avg err bad tr nrps _ <<<"$row"
        [ "$rn" = collection_embed ] || continue
        r=$(ratio "$rps" "$nrps")
        ok=$(awk -v r="$r" 'BEGIN {print (r >= 0.5) ? 1 : 0}')
        echo "| \`/repositories?embed=true\` ($((REPOSITORIES * TAGS)) tags, ${SIZES[collection_embed]} bytes) within 2x of nginx, $c connections | $rps vs $nrps req/s = $r | $(pass "$ok") |"
    done
    usage_ms=$(jq -r '.median_ms * 10 | round / 10' <<<"$USAGE_ONLY")
    usage_kib=$(jq -r '.kept_kib' <<<"$USAGE_ONLY")
    usage_peak=$(jq -r '.peak_kib' <<<"$USAGE_ONLY")
    ok=$(awk -v m="$usage_ms" 'BEGIN {print (m < 150) ? 1 : 0}')
    echo "| usage index at $(jq -r '.tags' <<<"$USAGE_ONLY") tags built in < 150 ms | median $usage_ms ms | $(pass "$ok") |"
    ok=$(awk -v k="$usage_kib" -v p="$usage_peak" 'BEGIN {print (k < 8192 && p < 8192) ? 1 : 0}')
    echo "| usage index at $(jq -r '.tags' <<<"$USAGE_ONLY") tags adds < 8 MiB RSS | kept $(mib "$usage_kib") MiB, peak while building $(mib "$usage_peak") MiB | $(pass "$ok") |"
    jq -r 'select(.phase == "full" and .concurrency == 8)
        | (.requests.total * 2 / 1000 / .concurrency) as $b
        | "\(.seconds) \($b)"' "$WORK/scan-2.jsonl" | while read -r s b; do
        r=$(ratio "$s" "$b")
        ok=$(awk -v r="$r" 'BEGIN {print (r <= 1.5) ? 1 : 0}')
        echo "| scan at 2 ms, concurrency 8: <= 1.5x the lower bound | $(printf '%.2f' "$s") s vs $(printf '%.2f' "$b") s = ${r}x | $(pass "$ok") |"
    done
    for f in 0 2; do
        jq -r --arg f "$f" 'select(.phase == "unchanged") | "\($f) \(.concurrency) \(.requests.manifest_get)"' "$WORK/scan-$f.jsonl"
    done | while read -r f c g; do
        ok=$([ "$g" = 0 ] && echo 1 || echo 0)
        echo "| unchanged re-scan ($f ms, concurrency $c): zero manifest GETs | $g | $(pass "$ok") |"
    done
    for f in 0 2; do
        jq -s -r --arg f "$f" '
            (map(select(.phase == "full" and .concurrency == 8))[0].requests.manifest_get) as $full
            | map(select(.phase == "moved"))[0] as $m
            | "\($f) \($m.requests.manifest_get) \($full) \($m.extra.move_percent) \($m.extra.moved_tags)"' "$WORK/scan-$f.jsonl"
    done | while read -r f g full pct moved; do
        share=$(awk -v g="$g" -v f="$full" 'BEGIN {printf "%.2f", 100 * g / f}')
        ok=$(awk -v s="$share" -v p="$pct" 'BEGIN {print (s >= p * 0.5 && s <= p * 1.5) ? 1 : 0}')
        echo "| $pct % of the tags moved ($f ms): about $pct % of the full scan's manifest GETs | $g of $full = $share % ($moved tags moved) | $(pass "$ok") |"
    done
    ok=$(awk -v k="$LOADED_HWM" 'BEGIN {print (k <= 65536) ? 1 : 0}')
    echo "| peak RSS at $((REPOSITORIES * TAGS)) tags under load <= 64 MiB | VmHWM $(mib "$LOADED_HWM") MiB (idle after load: $(mib "$IDLE_HWM") MiB; a service that scans: $(mib "$SCANNING_HWM") MiB after one scan, $(mib "$SCANNING2_HWM") MiB after two) | $(pass "$ok") |"
    med=$(jq -r .median_ms <<<"$STARTUP")
    ok=$(awk -v m="$med" 'BEGIN {print (m < 300) ? 1 : 0}')
    echo "| start-up to the first 200 from a $((REPOSITORIES * TAGS))-tag snapshot < 300 ms | median $(printf '%.1f' "$med") ms, min $(jq -r '.min_ms * 10 | round / 10' <<<"$STARTUP") ms | $(pass "$ok") |"
    echo
    cat "$WORK/static.md"
    echo "<!-- analysis -->"
    if [ -n "$ANALYSIS" ]; then
        echo "$ANALYSIS"
    fi
} >"$WORK/BENCHMARKS.md"
mv "$WORK/BENCHMARKS.md" "$OUT"
log "wrote $OUT in ${ELAPSED} s"
