#!/usr/bin/env bash
# `make image`: the scratch image without a Docker engine, with Debian's buildah
# (--isolation chroot, --storage-driver vfs: both work as root on a plain machine), into an
# OCI archive.
#
#   contrib/image.sh STATIC_BINARY OUTPUT.tar [TAG]
#
# The files come from contrib/image-rootfs.sh (which the Dockerfile's builder stage runs
# too); the image's settings come from the Dockerfile's final stage itself, read here, so
# `docker build` and `make image` give the same image. Only the instructions that stage
# uses are understood (COPY --from=builder, USER, EXPOSE, ENTRYPOINT, CMD); anything else
# stops the build rather than being dropped silently.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 2 ] || [ $# -gt 3 ]; then
  echo "usage: $0 STATIC_BINARY OUTPUT.tar [TAG]" >&2
  exit 2
fi
binary=$1 output=$2 tag=${3:-gitlab-registry-usage-rest:$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)}
command -v buildah >/dev/null || {
  echo "image: buildah not found; install it with: apt-get install buildah" >&2; exit 1; }

work=$(mktemp -d /tmp/image.XXXXXX)
container=
storage=(--storage-driver vfs --root "$work/storage" --runroot "$work/run")
cleanup() {
  [ -z "$container" ] || buildah "${storage[@]}" rm "$container" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

contrib/image-rootfs.sh "$binary" "$work/rootfs"

container=$(buildah "${storage[@]}" from --isolation chroot scratch)
config=()
# The final stage: from `FROM scratch` to the end of the Dockerfile, continuation lines
# joined, comments and blank lines dropped.
final=$(awk '/^FROM scratch/{on=1; next} on' Dockerfile |
  sed -e 's/#.*$//' | awk '/\\$/ {sub(/\\$/, ""); printf "%s", $0; next} {print}' |
  sed -e '/^[[:space:]]*$/d')
while IFS= read -r line; do
  set -f
  # shellcheck disable=SC2086
  set -- $line
  set +f
  instruction=$1; shift
  case $instruction in
    COPY)
      chown=
      [ "$1" = --from=builder ] || { echo "image: unsupported COPY: $line" >&2; exit 1; }
      shift
      if [[ $1 == --chown=* ]]; then chown=${1#--chown=}; shift; fi
      [ $# -eq 2 ] || { echo "image: COPY needs one source and a destination: $line" >&2; exit 1; }
      src=${1#/rootfs}
      buildah "${storage[@]}" copy ${chown:+--chown "$chown"} "$container" "$work/rootfs$src" "$2" >/dev/null
      ;;
    USER) config+=(--user "$1") ;;
    EXPOSE) port=$1; [[ $port == */* ]] || port=$port/tcp; config+=(--port "$port") ;;  # as docker records it
    ENTRYPOINT) config+=(--entrypoint "$*") ;;
    CMD) config+=(--cmd "$*") ;;
    *) echo "image: the Dockerfile's final stage has $instruction, which contrib/image.sh does not build" >&2; exit 1 ;;
  esac
done <<< "$final"
buildah "${storage[@]}" config "${config[@]}" \
  --label org.opencontainers.image.title=gitlab-registry-usage-rest \
  --label "org.opencontainers.image.version=${tag##*:}" \
  --os linux --arch amd64 "$container"
mkdir -p "$(dirname "$output")"
rm -f "$output"
buildah "${storage[@]}" commit --rm -q --disable-compression=false "$container" "oci-archive:$output:$tag" >/dev/null
container=
echo "image: $output ($tag, $(du -h "$output" | cut -f1))"
