# instance-sync: the two set-up commands are `make demo` and `make test`.
SHELL := /bin/bash
export CGO_ENABLED := 0
# Targets name the tools relatively and recipes quote the absolute path:
# make cannot take a target with a space, and a clone's folder may hold one.
BIN := .bin
ABSBIN := $(CURDIR)/.bin

.PHONY: demo test tools lint release release-check bench build load python-test pyz test-wine-gui

# Runs the whole sync on an embedded server: no external service needed.
demo: $(BIN)/restic
	INSTANCE_SYNC_RESTIC="$(ABSBIN)/restic" go run ./cmd/isync-demo

# Builds the pinned tools (restic, staticcheck) from tools/go.mod.
tools: $(BIN)/restic $(BIN)/staticcheck $(BIN)/restic.exe

# restic's version, as pinned in tools/go.mod.
RESTIC_VERSION := $(shell awk '$$1 == "github.com/restic/restic" { sub(/^v/, "", $$2); print $$2 }' tools/go.mod)

# The release's flags (cmd/isync-release), so "make release" and its test find
# restic's packages compiled already for linux/amd64 and windows/amd64.
RESTIC_BUILD_FLAGS := -trimpath -buildvcs=false -ldflags "-s -w -buildid="

# The first build compiles restic from source (about 90 s on two cores):
# say so, so a fresh "make demo" is not silent that long.
$(BIN)/restic: tools/go.mod
	@echo "building restic $(RESTIC_VERSION) from its pinned Go module (tools/go.mod): about 90 s the first time"
	cd tools && go build $(RESTIC_BUILD_FLAGS) -o "$(ABSBIN)/restic" github.com/restic/restic/cmd/restic

# For the Windows tests under Wine (internal/wintest).
$(BIN)/restic.exe: tools/go.mod
	@echo "building restic $(RESTIC_VERSION) for Windows from tools/go.mod (the Wine tests): about 90 s the first time"
	cd tools && GOOS=windows GOARCH=amd64 go build $(RESTIC_BUILD_FLAGS) -o "$(ABSBIN)/restic.exe" github.com/restic/restic/cmd/restic

$(BIN)/staticcheck: tools/go.mod
	cd tools && go build -o "$(ABSBIN)/staticcheck" honnef.co/go/tools/cmd/staticcheck

lint: tools
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needs to run on:"; echo "$$out"; exit 1; fi
	go vet ./...
	GOOS=windows go vet ./...
	GOOS=darwin go vet ./...
	"$(ABSBIN)/staticcheck" ./...
	go mod tidy -diff

# Everything CI runs: lint, then the race-enabled tests against real restic.
# cmd/instance-sync alone (scripts, GUI, Windows under Wine, kill -9) runs
# for several minutes on 2 cores: past go test's default 10-minute limit
# on a loaded machine.
test: lint
	CGO_ENABLED=1 INSTANCE_SYNC_TEST_RESTIC="$(ABSBIN)/restic" go test -race -count=1 -timeout=40m ./...
	$(MAKE) --no-print-directory python-test

# The Win32 dialogs of the Windows build under Wine on Xvfb, screenshotted
# into docs/screenshots/windows-*.png (not in every make test: Wine drops a
# key now and then on a loaded machine, leaving a dialog waiting).
test-wine-gui: $(BIN)/restic $(BIN)/restic.exe
	CGO_ENABLED=1 ISYNC_WINE_GUI=1 INSTANCE_SYNC_TEST_RESTIC="$(ABSBIN)/restic" go test -race -count=1 -timeout=20m -run 'TestWindowsGUI' -v ./cmd/instance-sync/

# The Python package (python/cloud_sync) against this tree's binaries, real
# restic and a real cloud-svc; skipped without python3 >= 3.10 unless CI=true.
python-test: $(BIN)/restic
	INSTANCE_SYNC_TEST_RESTIC="$(ABSBIN)/restic" ./python/test.sh

# cloud-sync.pyz: the Python package in one file; "python cloud-sync.pyz pull ..."
# (the predecessor's hook lines) runs the instance-sync binary beside it.
pyz:
	./python/build-pyz.sh cloud-sync.pyz

# Archives bundling restic, SHA256SUMS and package manifests, into dist/.
# Signs the Windows programs when RELEASE_SIGN_PKCS12 is set (see README).
release:
	./scripts/release.sh

# The release, then again from a copy of the tree with an empty build cache;
# fails unless every file is byte-identical. Several minutes: restic is
# compiled for every platform twice.
release-check:
	./scripts/release.sh -check

# Every figure of BENCHMARKS.md's targets: the large instance on loopback and
# at 40 ms round trip, the 100,000- and 250,000-file ones for memory and the
# walk (about half an hour on a quiet machine; -size=small for a quick look).
bench: tools
	INSTANCE_SYNC_TEST_RESTIC="$(ABSBIN)/restic" go run ./cmd/isync-bench -size=issue -rtt=0,40ms -runs=8 -out=BENCHMARKS-run.md

# cloud-svc's load and failure test at length (BENCHMARKS.md): PostgreSQL,
# two nodes behind HAProxy, one node killed mid-run; plus one node and the
# plain rest-server as baselines, and the data plane against rest-server in
# alternating rounds. `make test` runs the cluster test for 10 s per phase.
load: tools
	CGO_ENABLED=1 INSTANCE_SYNC_TEST_RESTIC="$(ABSBIN)/restic" ISYNC_LOAD_PHASE=60s ISYNC_LOAD_PLAYERS=8 ISYNC_LOAD_LISTERS=4 \
		ISYNC_LOAD_OVERHEAD_ROUNDS=5 go test -count=1 -timeout 60m -v -run 'TestClusterLoad|TestDataPlaneOverhead' ./cloudsvc/

# This platform's binaries, into the current folder.
build:
	go build -trimpath -o instance-sync ./cmd/instance-sync
	go build -trimpath -o cloud-svc ./cmd/cloud-svc
