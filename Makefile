# tidb-backup-guard. `make demo` and `make test` are the whole set-up on a fresh machine:
# both build the control plane binaries they need (once, cached; see hack/envtest-assets.sh).

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/tidb-backup-guard/tidb-backup-guard/cmd/tidb-backup-guard/app.Version=$(VERSION)
# The same build the Dockerfile runs (see there for grpcnotrace).
BUILD := CGO_ENABLED=0 go build -trimpath -tags grpcnotrace -ldflags "$(LDFLAGS)"

# Assets are built on first use; the script prints their directory last. The demo needs
# only the control plane, kubectl and TiDB Operator (no helm, staticcheck or promtool).
# promtool (test/alerts) is the slowest of the rest to build; it is built once, without
# Prometheus's service-discovery plugins, which its rule tests never use: measured options
# and the reason in hack/envtest-assets.sh.
ASSETS = $$(hack/envtest-assets.sh | tail -n 1)
DEMO_ASSETS = $$(hack/envtest-assets.sh etcd kube-apiserver kubectl tidb-operator | tail -n 1)

.PHONY: all build docs image e2e test stress test-compat unit demo assets vet lint fuzz bench clean

all: build

build: ## Build bin/tidb-backup-guard.
	$(BUILD) -o bin/tidb-backup-guard ./cmd/tidb-backup-guard

docs: ## Regenerate the command-line reference (docs/reference) from the binary's command tree.
	go run ./hack/flagdocs -out docs/reference

e2e: ## The chart and TiDB Operator's on a one-node cluster built from source, in its own namespaces (root; Debian's libseccomp-dev and busybox-static).
	@assets=$$(hack/e2e/assets.sh | tail -n 1) && \
	go test -c -tags e2e -o bin/e2e.test ./test/e2e && \
	hack/e2e/node.sh "$$assets" bin/e2e-work -- env E2E_ASSETS="$$assets" KUBEBUILDER_ASSETS="$$assets" E2E_ROOT="$(CURDIR)" bin/e2e.test -test.v -test.timeout 30m $(if $(RUN),-test.run '$(RUN)')

image: ## Build the image without a Docker engine: bin/tidb-backup-guard-image.tar (hack/image reads the Dockerfile).
	cd hack/image && go run . -root ../.. -out ../../bin/tidb-backup-guard-image.tar -tag tidb-backup-guard:$(VERSION) -version $(VERSION)

assets: ## Build (or find) kube-apiserver, etcd, kubectl and helm; print their directory.
	@hack/envtest-assets.sh

vet:
	go vet ./...

lint: vet ## go vet and staticcheck (built by hack/envtest-assets.sh).
	assets=$(ASSETS); $$assets/staticcheck ./...

# The integration stories beside TiDB Operator run in parallel (t.Parallel, a namespace and
# a PD each): they mostly wait on TiDB Operator's clocks, so far more of them than cores.
PARALLEL ?= 12

test: lint ## Run every test, integration suites against a real API server included; then the ten slowest.
	assets=$(ASSETS); mkdir -p bin; rc=0; \
	KUBEBUILDER_ASSETS=$$assets $$assets/gotestsum --format pkgname --jsonfile bin/test.json -- \
		-count=1 -timeout 30m -parallel $(PARALLEL) ./... || rc=$$?; \
	echo "The ten slowest tests (gotestsum tool slowest; all of them: bin/test.json):"; \
	$$assets/gotestsum tool slowest --jsonfile bin/test.json --threshold 1ms | sed -n 1,10p; \
	exit $$rc

stress: ## Run the integration stories matching RUN: COUNT (20) rounds, or COUNT (1) rounds of COPIES at once; counts per story.
	hack/stress.sh

test-compat: ## The stories beside each served TiDB Operator version (VERSIONS="v1.6.6 v1.6.0" for some), and the webhook and chart suites on Kubernetes 1.30 (COMPAT_K8S).
	hack/compat.sh $(VERSIONS); a=$$?; hack/compat-k8s.sh; b=$$?; exit $$((a || b))

unit: ## Every test that needs no control plane (-short: no soak, no etcd), the reconciler's Decide tables included.
	go test -count=1 -short ./defaults/... ./webhook/... ./certs/... ./reconciler/... ./cmd/... ./test/build/...

bench: ## Every benchmark of docs/benchmarks.md (not part of make test).
	hack/bench.sh

FUZZTIME ?= 60s
fuzz: ## Run each fuzz target for FUZZTIME (make test runs their seed corpora only).
	go test -run '^$$' -fuzz '^FuzzAdmissionReview$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./webhook/
	go test -run '^$$' -fuzz '^FuzzBackupObject$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./webhook/
	go test -run '^$$' -fuzz '^FuzzPolicy$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./defaults/
	go test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./webhook/
	go test -run '^$$' -fuzz '^FuzzDecideComesToRest$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./reconciler/retry/

demo: build ## Walk through the product against a local control plane (KEEP=1 leaves it up).
	assets=$(DEMO_ASSETS); KUBEBUILDER_ASSETS=$$assets go run ./hack/demo --binary bin/tidb-backup-guard $(if $(KEEP),--keep)

clean:
	rm -rf bin
