#!/bin/sh
# The file system of the scratch image, laid out in DEST: the static binary, users (root
# and nonroot 65532), the CA bundle, the state directory. One script for both ways the
# image is built: the Dockerfile's builder stage runs it, and so does `make image`
# (contrib/image.sh, buildah without a Docker engine), so both images hold the same files.
#
#   contrib/image-rootfs.sh BINARY DEST [CA_BUNDLE]
#
# CA_BUNDLE defaults to /etc/ssl/certs/ca-certificates.crt (Debian's ca-certificates).
set -eu
if [ $# -lt 2 ] || [ $# -gt 3 ]; then
  echo "usage: $0 BINARY DEST [CA_BUNDLE]" >&2
  exit 2
fi
binary=$1 dest=$2 ca=${3:-/etc/ssl/certs/ca-certificates.crt}
for f in "$binary" "$ca"; do
  [ -f "$f" ] || { echo "image-rootfs: $f does not exist" >&2; exit 1; }
done
# Refuse a binary that would need a dynamic loader (there is none in scratch).
if readelf -lW "$binary" | grep -q INTERP; then
  echo "image-rootfs: $binary is not static (build it with: make static)" >&2
  exit 1
fi
install -D -m 0755 "$binary" "$dest/usr/local/bin/gitlab-registry-usage-rest"
mkdir -p "$dest/etc/ssl/certs" "$dest/var/lib/gitlab-registry-usage-rest"
printf '%s\n' \
  'root:x:0:0:root:/root:/sbin/nologin' \
  'nonroot:x:65532:65532:nonroot:/var/lib/gitlab-registry-usage-rest:/sbin/nologin' \
  > "$dest/etc/passwd"
printf '%s\n' 'root:x:0:' 'nonroot:x:65532:' > "$dest/etc/group"
chmod 0644 "$dest/etc/passwd" "$dest/etc/group"
install -m 0644 "$ca" "$dest/etc/ssl/certs/ca-certificates.crt"
chmod 0700 "$dest/var/lib/gitlab-registry-usage-rest"
