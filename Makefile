# pedia: the README's two commands are `make demo` and `make test`.
CARGO  ?= cargo
PEDIA  := target/debug/pedia
# Upstream Clusterpedia manifests (compatibility fixtures), beside the checkout.
COMPAT ?= ../shared/compat/clusterpedia
DEMO_DIR ?= .demo

# nextest runs test binaries in parallel; plain cargo test is the fallback.
TEST_RUNNER := $(shell cargo nextest --version >/dev/null 2>&1 && echo "nextest run" || echo test)

.PHONY: all build test lint fmt crds demo clean

all: build

build:
	$(CARGO) build --workspace --locked

## test: formatting, lints and every test (the CI gate).
test:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	$(CARGO) $(TEST_RUNNER) --workspace --locked

lint:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt:
	$(CARGO) fmt --all

## crds: regenerate crds/ from the Rust types (a test fails when it is stale).
crds: build
	rm -f crds/*.yaml
	$(PEDIA) crds --out-dir crds

## demo: what pedia does today, on this machine, with nothing else running.
demo: build
	@rm -rf $(DEMO_DIR) && mkdir -p $(DEMO_DIR)
	@echo "== 1. pedia generates Clusterpedia's four CRDs from its Rust types"
	$(PEDIA) crds --out-dir $(DEMO_DIR)/crds
	@ls $(DEMO_DIR)/crds
	@echo
	@echo "== 2. manifests written for Clusterpedia are accepted unchanged (strict apiserver-style validation)"
	$(PEDIA) validate docs/examples $(wildcard $(COMPAT)/examples $(COMPAT)/clusterimportpolicy)
	@echo
	@echo "== 3. a broken manifest is rejected with the field path, exit code 1"
	@printf 'apiVersion: cluster.clusterpedia.io/v1alpha2\nkind: PediaCluster\nmetadata: {name: broken}\nspec:\n  syncResources: pods\n  tokenData: not-base64!\n' \
		| $(PEDIA) validate - ; test $$? -eq 1
	@echo
	@echo "Not built yet: the kubesim fleet, syncing into SQLite and kubectl search (see README, Status)."

clean:
	$(CARGO) clean
	rm -rf $(DEMO_DIR)
