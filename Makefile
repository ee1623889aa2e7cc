# The one test command of the README: `make test`. It installs redis-server and chromium when
# missing and it may (see .ci/deps), then runs every test against real Redis and Chromium.
.PHONY: test run lint fuzz

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

# Each fuzz target for a short time (CI runs this too).
FUZZTIME ?= 10s
fuzz:
	@for pkg in $$(go list ./...); do \
	  for f in $$(go test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; go test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done
