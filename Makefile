# framering: make test runs what CI runs; see README.md.
GO        ?= go
ENABLE_RACE ?= 1
FUZZTIME  ?= 30s
RACE      := $(if $(filter 1,$(ENABLE_RACE)),-race,)

.PHONY: all demo fmt vet lint test test-gocv test-python bench fuzz arm64 chaos chaos-short

all: fmt vet test

demo:
	$(GO) run ./cmd/framering demo

fmt:
	@bad=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$bad" ]; then echo "gofmt: $$bad"; exit 1; fi

vet:
	$(GO) vet ./...
	GOARCH=arm64 $(GO) vet ./...

# The README's test command: every package, race detector on, no cache;
# then the OpenCV adapter and the CLI again with -tags gocv, where OpenCV 4
# is installed.
test:
	$(GO) test $(RACE) -count=1 -timeout 15m ./...
	@if pkg-config --exists opencv4 2>/dev/null; then \
		echo "$(GO) test $(RACE) -count=1 -tags gocv ./cv/... ./cmd/framering/..."; \
		$(GO) test $(RACE) -count=1 -timeout 15m -tags gocv ./cv/... ./cmd/framering/...; \
	else \
		echo "skipping the -tags gocv tests: OpenCV 4 not found (apt-get install libopencv-dev)"; \
	fi
	@$(MAKE) --no-print-directory test-python

# The Python package's tests (python/tests), with Debian's python3 and its
# numpy and pytest; they build the Go CLI for the cross-language tests.
PYTHON ?= /usr/bin/python3
test-python:
	@if $(PYTHON) -c 'import numpy, pytest' 2>/dev/null; then \
		echo "$(PYTHON) -m pytest -q python/tests"; \
		GO=$(GO) $(PYTHON) -m pytest -q python/tests; \
	else \
		echo "skipping the Python tests: $(PYTHON) lacks numpy or pytest (apt-get install python3-numpy python3-pytest)"; \
	fi

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# Each fuzz target runs for FUZZTIME (go test -fuzz takes one target at a time).
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParseSuperblock$$' -fuzztime $(FUZZTIME) ./internal/layout
	$(GO) test -run '^$$' -fuzz '^FuzzSlotInfo$$' -fuzztime $(FUZZTIME) ./internal/layout
	# Whole segment files read through consumer under deadlines (hangs
	# fail too). An input runs its reads' deadlines out, so minimizing a
	# new one takes long: bound it, or it eats a short FUZZTIME.
	$(GO) test -run '^$$' -fuzz '^FuzzSegment$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./consumer

arm64:
	GOARCH=arm64 $(GO) test -c -o /dev/null ./...

# The chaos suite (chaos/, issue 9 item 15): writer kills mid-frame and
# during creation, SIGSTOP/SIGCONT, truncate/rm/replace, random corruption
# against every reader API and CLI command, hostile files, 32 readers,
# open/close leak cycles. Every scenario prints a "CHAOS ..." line of
# figures, collected at the end. chaos-short is what .ci/run runs (a few
# minutes on 2 cores); chaos is the full suite. The tests skip unless
# FRAMERING_CHAOS is set, so `make test` does not run them.
chaos:
	@$(MAKE) --no-print-directory chaos-run CHAOS_LEVEL=full CHAOS_TIMEOUT=120m

chaos-short:
	@$(MAKE) --no-print-directory chaos-run CHAOS_LEVEL=short CHAOS_TIMEOUT=15m

chaos-run:
	@r=$$(mktemp); \
	FRAMERING_CHAOS=$(CHAOS_LEVEL) FRAMERING_CHAOS_REPORT=$$r GO=$(GO) \
		$(GO) test -count=1 -v -timeout $(CHAOS_TIMEOUT) ./chaos/; s=$$?; \
	echo; echo "chaos figures ($(CHAOS_LEVEL)):"; cat $$r; rm -f $$r; exit $$s
