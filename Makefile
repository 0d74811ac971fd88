# gitlab-registry-usage-rest — the commands README.md documents.
CARGO ?= cargo
MUSL_TARGET := x86_64-unknown-linux-musl
BIN := gitlab-registry-usage-rest
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
MUSL_DIR := $(TARGET_DIR)/$(MUSL_TARGET)/release
DIST_NAME := $(BIN)-$(VERSION)-x86_64-linux-musl

.PHONY: build release test lint demo musl-toolchain static static-check dist bench clean openapi image offline-check fuzz fuzz-tools

build:
	$(CARGO) build

release:
	$(CARGO) build --release

## test: every unit and integration test (needs slapd, docker-registry: see .ci/run)
test:
	# the tests run the synthetic registry as a process (tests/support/synthetic.rs)
	$(CARGO) build --example synthetic_registry
	$(CARGO) test --all-targets -- --test-threads=4

## demo: the service in front of a synthetic registry (no LDAP, no GitLab); Ctrl-C stops it
demo:
	CARGO="$(CARGO)" examples/demo.sh

# The musl target (idempotent) and musl-gcc, which ring's C and assembly need.
musl-toolchain:
	@command -v musl-gcc >/dev/null 2>&1 || { \
	  echo "musl-gcc not found: ring needs it to build for $(MUSL_TARGET). Install it with:" >&2; \
	  echo "    sudo apt-get install musl-tools" >&2; exit 1; }
	@if command -v rustup >/dev/null 2>&1; then rustup target add $(MUSL_TARGET); \
	 else echo "no rustup: make sure your toolchain has the $(MUSL_TARGET) standard library" >&2; fi

## static: a static (musl) release binary, then static-check
static: musl-toolchain
	$(CARGO) build --release --target $(MUSL_TARGET)
	@$(MAKE) --no-print-directory static-check

## static-check: the static binary has no loader and works in an empty root (contrib/check-static.sh)
static-check: musl-toolchain
	$(CARGO) build --release --target $(MUSL_TARGET) --example synthetic_registry
	contrib/check-static.sh $(MUSL_DIR)/$(BIN) $(MUSL_DIR)/examples/synthetic_registry

IMAGE ?= $(TARGET_DIR)/image/$(BIN)-$(VERSION).oci.tar
## image: the scratch image as an OCI archive, built with buildah (no Docker engine): $(IMAGE)
image: musl-toolchain
	$(CARGO) build --release --target $(MUSL_TARGET) --bin $(BIN)
	contrib/image.sh $(MUSL_DIR)/$(BIN) $(IMAGE)

## offline-check: docs/INSTALL.md's offline build, in temporary copies, without network or cargo cache
offline-check:
	contrib/offline-check.sh

## dist: dist/$(DIST_NAME).tar.gz (static binary, systemd unit, default config, docs)
dist: static
	rm -rf dist/$(DIST_NAME) dist/$(DIST_NAME).tar.gz
	mkdir -p dist/$(DIST_NAME)
	cp $(MUSL_DIR)/$(BIN) contrib/$(BIN).service README.md LICENSE dist/$(DIST_NAME)/
	# README's relative links (docs/INSTALL.md, ARCHITECTURE.md, ...) at the same paths
	contrib/readme-files.sh | while read -r f; do \
	  install -D -m 0644 "$$f" "dist/$(DIST_NAME)/$$f"; done
	$(MUSL_DIR)/$(BIN) --print-default-config > dist/$(DIST_NAME)/gitlab_registry_usage_rest.conf
	chmod 0755 dist/$(DIST_NAME)/$(BIN)
	chmod 0644 dist/$(DIST_NAME)/$(BIN).service dist/$(DIST_NAME)/README.md dist/$(DIST_NAME)/LICENSE \
	  dist/$(DIST_NAME)/gitlab_registry_usage_rest.conf
	tar -C dist --sort=name --owner=0 --group=0 --numeric-owner \
	  $(if $(SOURCE_DATE_EPOCH),--mtime=@$(SOURCE_DATE_EPOCH)) -cf dist/$(DIST_NAME).tar $(DIST_NAME)
	gzip -n -9 -f dist/$(DIST_NAME).tar
	rm -rf dist/$(DIST_NAME)
	tar -tvzf dist/$(DIST_NAME).tar.gz
	@ls -l dist/$(DIST_NAME).tar.gz

## openapi: docs/openapi.json (served at /openapi.json) from docs/openapi.yaml; needs python3 with PyYAML
openapi:
	python3 contrib/openapi-json.py docs/openapi.yaml > docs/openapi.json.tmp
	mv docs/openapi.json.tmp docs/openapi.json

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

## bench: serving (vs nginx), scanning, memory and start-up on this machine; writes BENCHMARKS.md (~10 min)
bench:
	bash contrib/bench.sh

# cargo-fuzz (libFuzzer); CI does not fuzz, plain `cargo test` replays the corpora.
fuzz-tools:
	@command -v cargo-fuzz >/dev/null 2>&1 || { \
	  echo "cargo-fuzz not found: make fuzz needs it. Install it with:" >&2; \
	  echo "    cargo install cargo-fuzz" >&2; exit 1; }

## fuzz: every fuzz target for FUZZ_SECONDS (default 60) from fuzz/corpus; FUZZ_TARGETS="a b" picks some, FUZZ_MERGE=1 keeps new coverage (docs/FUZZING.md)
fuzz: fuzz-tools
	FUZZ_SECONDS="$(or $(FUZZ_SECONDS),60)" FUZZ_TARGETS="$(FUZZ_TARGETS)" FUZZ_RUNS="$(FUZZ_RUNS)" FUZZ_MERGE="$(FUZZ_MERGE)" FUZZ_SANITIZER="$(FUZZ_SANITIZER)" contrib/fuzz.sh

clean:
	$(CARGO) clean
	rm -rf dist
