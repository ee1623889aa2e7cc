# The one test command of the README: `make test`. It installs redis-server and chromium when
# missing and it may (see .ci/deps), then runs every test against real Redis and Chromium.
.PHONY: test run lint fuzz image image-test

test:
	@./.ci/deps
	@echo "tests use: $${REDIS_URL:-$$(redis-server --version | cut -d' ' -f1-3), one redis-server per test package on a free port}"
	go test -race -count=1 $$(go list ./... | grep -v /cmd/incidentdrill)
	@# The incident drill checks timing goals on this machine's cores: it runs alone, after
	@# the other packages, and without the race detector slowing its simulated carriers.
	go test -count=1 ./cmd/incidentdrill

run:
	go run ./cmd/switchboard

lint:
	golangci-lint run ./...

# Each fuzz target for a short time (CI runs this too). Targets that negotiate a real pion
# PeerConnection per input (FuzzPeer*, FuzzAgentOffer) make a few hundred runs in seconds and
# time out on a busy machine, so they are left to longer runs (make fuzz FUZZ_ALL=1); their
# seed corpora still run in every make test.
#
# FUZZTIME is a count of runs per target (Nx) by default: Go 1.26's fuzz coordinator can fail a
# target with a bare "context deadline exceeded" when a duration-based -fuzztime ends while a
# starved worker is mid-run (golang/go#75804, fixed in Go 1.27); a count has no such deadline.
# A duration (FUZZTIME=30s) works too, on a machine that is not busy.
FUZZTIME ?= 50000x
FUZZ_SLOW := ^(FuzzPeerAnswer|FuzzPeerAddICECandidate|FuzzAgentOffer)$$
fuzz:
	@for pkg in $$(go list ./...); do \
	  for f in $$(go test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    if [ -z "$(FUZZ_ALL)" ] && echo "$$f" | grep -Eq '$(FUZZ_SLOW)'; then echo "fuzz $$pkg $$f: seed corpus only (make fuzz FUZZ_ALL=1)"; continue; fi; \
	    echo "fuzz $$pkg $$f"; go test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# The container image `switchboard`, with no registry access: a static binary from the local
# Go toolchain, the build machine's CA certificates and a passwd line for a non-root user, in
# a FROM scratch image (see Dockerfile; Dockerfile.multistage builds from source with a registry).
IMAGE ?= switchboard
CA_CERTS ?= /etc/ssl/certs/ca-certificates.crt
image:
	@docker info >/dev/null 2>&1 || { echo "make image: Docker does not answer here (docker info failed); start dockerd, or build elsewhere"; exit 1; }
	rm -rf build/image && mkdir -p build/image
	CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o build/image/switchboard ./cmd/switchboard
	cp $(CA_CERTS) build/image/ca-certificates.crt
	echo 'switchboard:x:65532:65532:switchboard:/:/nonexistent' > build/image/passwd
	docker build -f Dockerfile -t $(IMAGE) build/image

# Builds the image, runs it and checks /healthz, /readyz and the landing page from outside the
# container. Needs a running Docker daemon; not part of make test, which must pass where none runs.
image-test: image
	./deploy/image-test.sh $(IMAGE)
