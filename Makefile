# framering: make test runs what CI runs; see README.md.
GO        ?= go
ENABLE_RACE ?= 1
FUZZTIME  ?= 30s
RACE      := $(if $(filter 1,$(ENABLE_RACE)),-race,)

.PHONY: all demo fmt vet lint test test-gocv bench fuzz arm64

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

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# Each fuzz target runs for FUZZTIME (go test -fuzz takes one target at a time).
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParseSuperblock$$' -fuzztime $(FUZZTIME) ./internal/layout
	$(GO) test -run '^$$' -fuzz '^FuzzSlotInfo$$' -fuzztime $(FUZZTIME) ./internal/layout

arm64:
	GOARCH=arm64 $(GO) test -c -o /dev/null ./...
