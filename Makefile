# gitlab-registry-usage-rest — the commands README.md documents.
CARGO ?= cargo
MUSL_TARGET := x86_64-unknown-linux-musl
BIN := gitlab-registry-usage-rest
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)

.PHONY: build release test lint demo static static-check dist bench clean

build:
	$(CARGO) build

release:
	$(CARGO) build --release

## test: every unit and integration test (needs slapd, docker-registry: see .ci/run)
test:
	$(CARGO) test --all-targets -- --test-threads=4

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

clean:
	$(CARGO) clean
	rm -rf dist
