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
# Cache mounts keep the crate downloads and compiled dependencies between builds, so the
# binary is taken out of the cached target directory within the same step: into the final
# file system (users, CA bundle, the state directory), laid out by the same script
# `make image` uses, so both builds give the same files.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --target x86_64-unknown-linux-musl \
      --bin gitlab-registry-usage-rest \
 && contrib/image-rootfs.sh target/x86_64-unknown-linux-musl/release/gitlab-registry-usage-rest /rootfs \
 && /rootfs/usr/local/bin/gitlab-registry-usage-rest --version

# ---- final: scratch -------------------------------------------------------------------
# `make image` (contrib/image.sh) builds this same stage with buildah from the files
# contrib/image-rootfs.sh lays out: it reads the instructions below (COPY --from=builder,
# USER, EXPOSE, ENTRYPOINT, CMD) and refuses any other, so keep to those.
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
