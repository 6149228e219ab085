# burstlet: top-level entry points. Every target depends on `deps`, so a fresh machine needs
# no manual step. Builds use -j2 (the machine has 2 cores).
SHELL := /bin/bash
JOBS ?= 2
BUILD_TYPE ?= RelWithDebInfo
ASAN_DIR := build/asan
REL_DIR := build/release
BIN := $(CURDIR)/bin
STATE ?= $(CURDIR)/.state/testbed
GO ?= go
export GOFLAGS := -buildvcs=false
E2E_TIMEOUT ?= 40m
# The backend plane's mode for testbed-up, demo and e2e: cci (refuses what CCI refuses: Network
# CRD and controller, admission policies; e2e/README.md) or plain (runs any pod).
TESTBED_BACKEND ?= cci
# The Kubernetes release the testbed is built from (e2e/go.mod) and the version it reports.
KUBE_VERSION := v1.36.3
KUBE_LDFLAGS := -X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION) \
  -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=36 \
  -X k8s.io/component-base/version.gitTreeState=clean \
  -X k8s.io/client-go/pkg/version.gitVersion=$(KUBE_VERSION) \
  -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=36

.PHONY: all deps build build-asan unit testbed-bin image e2e test lint demo testbed-up testbed-down \
        format format-check tidy bench-bin bench-informer clean

all: build

deps:
	@bash scripts/deps.sh
	@cd e2e && $(GO) mod download
	@cd e2e/tools/metrics-server && $(GO) mod download
	@cd e2e/tools/image && $(GO) mod download
	@cd e2e/tools/helm && $(GO) mod download
	@cd bench && $(GO) mod download

# --- C++ -----------------------------------------------------------------------------------
$(REL_DIR)/build.ninja: | deps
	cmake -S . -B $(REL_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DBURSTLET_TESTS=OFF

$(ASAN_DIR)/build.ninja: | deps
	cmake -S . -B $(ASAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DBURSTLET_SANITIZE=ON

build: deps $(REL_DIR)/build.ninja
	cmake --build $(REL_DIR) -j $(JOBS)

build-asan: deps $(ASAN_DIR)/build.ninja
	cmake --build $(ASAN_DIR) -j $(JOBS)

unit: build-asan
	cd $(ASAN_DIR) && ctest --output-on-failure -j $(JOBS)

# libFuzzer on the SPDY frame and header-block decoders: a clang build of its own (coverage,
# ASan, UBSan), seeded from test/kubelet/spdy/fuzz/corpus; new inputs stay in build/fuzz/corpus.
FUZZ_DIR := build/fuzz
FUZZ_SECONDS ?= 60
.PHONY: fuzz-spdy
fuzz-spdy: deps
	cmake -S . -B $(FUZZ_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_CXX_COMPILER=clang++ -DBURSTLET_FUZZ=ON
	cmake --build $(FUZZ_DIR) -j $(JOBS) --target spdy_frame_fuzzer
	@mkdir -p $(FUZZ_DIR)/corpus/spdy_frame
	$(FUZZ_DIR)/test/spdy_frame_fuzzer -max_total_time=$(FUZZ_SECONDS) -max_len=65536 \
	  -print_final_stats=1 $(FUZZ_DIR)/corpus/spdy_frame test/kubelet/spdy/fuzz/corpus

# --- testbed (real Kubernetes from the official Go modules) --------------------------------
testbed-bin: deps
	@mkdir -p $(BIN)
	cd e2e && $(GO) build -ldflags '$(KUBE_LDFLAGS)' -o $(BIN)/kube ./cmd/kube
	ln -sf kube $(BIN)/kubectl
	cd e2e && $(GO) build -o $(BIN)/kwok sigs.k8s.io/kwok/cmd/kwok
	cd e2e/tools/metrics-server && $(GO) build -o $(BIN)/metrics-server sigs.k8s.io/metrics-server/cmd/metrics-server
	cd e2e && $(GO) build -o $(BIN)/testbed ./cmd/testbed
	cd e2e/tools/image && $(GO) build -o $(BIN)/mkimage .
	cd e2e/tools/helm && $(GO) build -o $(BIN)/helm helm.sh/helm/v4/cmd/helm

# burstlet's OCI image, offline from the release build (no base image): build/image/oci (an OCI
# image layout) and build/image/burstlet.tar (docker/podman load).
IMAGE_DIR := build/image
VERSION := $(shell grep -oE 'burstlet VERSION [0-9.]+' CMakeLists.txt | cut -d' ' -f3)
image: build
	@mkdir -p $(BIN)
	cd e2e/tools/image && $(GO) build -o $(BIN)/mkimage .
	$(BIN)/mkimage build --binary $(REL_DIR)/src/cmd/burstlet/burstlet --version $(VERSION) \
	  --layout $(IMAGE_DIR)/oci --tarball $(IMAGE_DIR)/burstlet.tar

testbed-up: testbed-bin
	$(BIN)/testbed up --bin-dir $(BIN) --state $(STATE) --backend $(TESTBED_BACKEND)

testbed-down:
	@if [ -x $(BIN)/testbed ]; then $(BIN)/testbed down --state $(STATE) --wipe; \
	 else echo "testbed-down: no testbed binary, nothing to stop"; fi

# Packages run one at a time (-p 1): each starts real control planes and the machine has 2 cores.
e2e: testbed-bin build build-asan image
	@mkdir -p build
	cd e2e && $(GO) vet ./... && BURSTLET_BIN_DIR=$(BIN) BURSTLET_TESTBED_BACKEND=$(TESTBED_BACKEND) \
	  BURSTLET_IMAGE=$(CURDIR)/$(IMAGE_DIR)/oci \
	  BURSTLET=$(CURDIR)/$(REL_DIR)/src/cmd/burstlet/burstlet \
	  BURSTLET_TESTBED_TEST=$(CURDIR)/$(ASAN_DIR)/test/testbed_test \
	  $(GO) test -p 1 -count=1 -timeout $(E2E_TIMEOUT) -v ./... 2>&1 | tee $(CURDIR)/build/e2e.log; \
	  exit $${PIPESTATUS[0]}

# The whole suite: format and static checks, C++ unit tests under ASan/UBSan, then the e2e
# tests against the real testbed.
test: lint unit e2e

lint: format-check tidy

demo: testbed-bin build
	TESTBED_BACKEND=$(TESTBED_BACKEND) bash scripts/demo.sh

# --- code quality --------------------------------------------------------------------------
# Tracked and new (untracked, not ignored) files, so a file not yet added is formatted too.
CXX_SOURCES = $(shell git ls-files --cached --others --exclude-standard '*.cc' '*.h')

format: deps
	clang-format -i $(CXX_SOURCES)
	gofmt -w e2e bench

format-check: deps
	clang-format --dry-run --Werror $(CXX_SOURCES)
	@unformatted=$$(gofmt -l e2e bench); if [ -n "$$unformatted" ]; then \
	  echo "gofmt needed: $$unformatted (run make format)"; exit 1; fi

tidy: deps $(ASAN_DIR)/build.ninja
	run-clang-tidy -p $(ASAN_DIR) -j $(JOBS) -quiet '$(CURDIR)/(src|test)/.*\.cc$$' 2>&1 | \
	  grep -v ' warnings generated\.$$' ; exit $${PIPESTATUS[0]}

# --- benchmarks (not tests; results go to bench/results and docs/perf.md) -------------------
bench-bin: deps
	cd bench && $(GO) build -o $(BIN)/informer-peer ./informer/clientgo
	cd bench && $(GO) build -o $(BIN)/bench-informer ./informer/driver
	cd bench && $(GO) build -o $(BIN)/bench-burst ./burst/driver
	cd bench && $(GO) build -o $(BIN)/bench-cci ./cci/driver
	cd bench && $(GO) build -o $(BIN)/admission-peer ./admission/peer
	cd bench && $(GO) build -o $(BIN)/bench-admission ./admission/driver

PODS ?= 10000
ROUNDS ?= 5
bench-informer: testbed-bin build bench-bin
	$(BIN)/bench-informer -root $(CURDIR) -pods $(PODS) -rounds $(ROUNDS) \
	  -command "make bench-informer PODS=$(PODS) ROUNDS=$(ROUNDS)"

# Upstream virtual-kubelet, bench-burst's peer, built from its own module (it needs a newer
# client-go than bench/go.mod); one directory per version, so changing UPSTREAM_VK rebuilds.
UPSTREAM_VK ?= v1.14.1
UPSTREAM_VK_BIN := $(BIN)/upstream-vk/$(UPSTREAM_VK)/virtual-kubelet
$(UPSTREAM_VK_BIN): | deps
	GOBIN=$(dir $@) $(GO) install github.com/virtual-kubelet/virtual-kubelet/cmd/virtual-kubelet@$(UPSTREAM_VK)

# burstlet vs upstream virtual-kubelet vs kwok: PODS bound to one node (plus 1,000 pods at 100/s
# and 1,000 at once); UPSTREAM_WAIT caps each upstream run.
UPSTREAM_WAIT ?= 15m
.PHONY: bench-burst
bench-burst: testbed-bin build bench-bin $(UPSTREAM_VK_BIN)
	$(BIN)/bench-burst -root $(CURDIR) -pods $(PODS) -upstream-bin $(UPSTREAM_VK_BIN) \
	  -upstream-version $(UPSTREAM_VK) -upstream-wait $(UPSTREAM_WAIT) -command "make bench-burst PODS=$(PODS)"

# The backend path: PODS_CCI pods at once through burstlet's cci provider to the testbed's backend
# plane, against the same pods created straight on the backend; backend writes per pod. PODS on
# the command line sets it too (`make bench-cci PODS=1000`); its default of 10,000 does not.
ifeq ($(origin PODS),command line)
PODS_CCI ?= $(PODS)
else
PODS_CCI ?= 1000
endif
.PHONY: bench-cci
bench-cci: testbed-bin build bench-bin
	$(BIN)/bench-cci -root $(CURDIR) -pods $(PODS_CCI) -command "make bench-cci PODS=$(PODS_CCI)"

# Admission latency (issue 12): pod CREATE (dryRun=All) at RATE/s open loop for DURATION through
# the API server, with no webhook, a minimal Go webhook and burstlet's, on one testbed.
RATE ?= 100
DURATION ?= 60s
.PHONY: bench-admission
bench-admission: testbed-bin build bench-bin
	$(BIN)/bench-admission -root $(CURDIR) -rate $(RATE) -duration $(DURATION) \
	  -command "make bench-admission RATE=$(RATE) DURATION=$(DURATION)"

clean:
	rm -rf build $(BIN)
