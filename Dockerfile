# syntax=docker/dockerfile:1
#
# gitlab-registry-usage-rest in a `FROM scratch` image: one static (musl) binary, the CA
# bundle, a non-root user, nothing else (no shell, no libc, no package manager).
#
#   docker build -t gitlab-registry-usage-rest .        # x86_64 (linux/amd64) only
#   docker run --rm gitlab-registry-usage-rest --help
#   docker run --rm gitlab-registry-usage-rest --print-default-config > gitlab_registry_usage_rest.conf
#   (edit it: set [general] socket_host = 0.0.0.0, or the port is unreachable from outside
#    the container; secrets; URLs by name or IP)
#   docker run -d --name registry-usage -p 5000:5000 \
#     -v "$PWD/gitlab_registry_usage_rest.conf:/etc/gitlab_registry_usage_rest.conf:ro" \
#     -v registry-usage-state:/var/lib/gitlab-registry-usage-rest \
#     gitlab-registry-usage-rest
#
# The config is mounted, never baked in: it holds secrets ([jwt] secret_key,
# [registry] access_token, [ldap] bind_password). The container runs as uid/gid 65532, so
# the mounted file must be readable by that uid (e.g. `chown 65532 file && chmod 0400 file`,
# or a Docker/Kubernetes secret mounted at that path). To keep the last scan across
# restarts set `snapshot_file = /var/lib/gitlab-registry-usage-rest/snapshot.json` and keep
# that directory on a volume (it is the only writable place the service needs).
#
# There is no HEALTHCHECK on purpose: the image has no shell and no curl to run one.
# Check health from outside (orchestrator probe, load balancer, monitoring) with
# GET /health: 200 once a scan is being served, 503 before the first one.

# ---- builder: a static x86_64-unknown-linux-musl binary --------------------------------
FROM rust:1-bookworm AS builder

# musl-tools: musl-gcc, which ring needs for its C and assembly parts.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      musl-tools ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN rustup target add x86_64-unknown-linux-musl

WORKDIR /src
COPY . .
# Cache mounts keep the crate downloads and compiled dependencies between builds; the
# binary is copied out of the cached target directory within the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --target x86_64-unknown-linux-musl \
      --bin gitlab-registry-usage-rest \
 && install -D -m 0755 target/x86_64-unknown-linux-musl/release/gitlab-registry-usage-rest \
      /rootfs/usr/local/bin/gitlab-registry-usage-rest

# Refuse a binary that would need a dynamic loader (there is none in scratch).
RUN if readelf -lW /rootfs/usr/local/bin/gitlab-registry-usage-rest | grep -q INTERP; then \
      echo "the binary is not static" >&2; exit 1; \
    fi \
 && /rootfs/usr/local/bin/gitlab-registry-usage-rest --version

# The rest of the final file system: users, CA bundle, the state directory.
RUN mkdir -p /rootfs/etc/ssl/certs /rootfs/var/lib/gitlab-registry-usage-rest \
 && printf '%s\n' \
      'root:x:0:0:root:/root:/sbin/nologin' \
      'nonroot:x:65532:65532:nonroot:/var/lib/gitlab-registry-usage-rest:/sbin/nologin' \
      > /rootfs/etc/passwd \
 && printf '%s\n' 'root:x:0:' 'nonroot:x:65532:' > /rootfs/etc/group \
 && chmod 0644 /rootfs/etc/passwd /rootfs/etc/group \
 && cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ca-certificates.crt \
 && chmod 0700 /rootfs/var/lib/gitlab-registry-usage-rest

# ---- final: scratch -------------------------------------------------------------------
FROM scratch

COPY --from=builder /rootfs/etc/ /etc/
COPY --from=builder /rootfs/usr/local/bin/gitlab-registry-usage-rest /usr/local/bin/gitlab-registry-usage-rest
# Copying /var/lib/'s contents makes the state directory itself an entry of the copy, so
# --chown applies to it: owned by 65532, mode 0700.
COPY --from=builder --chown=65532:65532 /rootfs/var/lib/ /var/lib/

USER 65532:65532
EXPOSE 5000
# The default config path of the service; mount the real file there (see above).
ENTRYPOINT ["/usr/local/bin/gitlab-registry-usage-rest"]
CMD ["-c", "/etc/gitlab_registry_usage_rest.conf"]
