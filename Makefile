# The one test command of the README: `make test`. It installs redis-server when it is missing
# and may (see .ci/deps), then runs every test with the race detector against real Redis.
.PHONY: test run lint fuzz

test:
	@./.ci/deps
	@echo "tests use: $${REDIS_URL:-$$(redis-server --version | cut -d' ' -f1-3), one redis-server per test package on a free port}"
	go test -race -count=1 ./...

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
