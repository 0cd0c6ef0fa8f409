# framering: make test runs what CI runs; see README.md.
GO        ?= go
ENABLE_RACE ?= 1
FUZZTIME  ?= 30s
RACE      := $(if $(filter 1,$(ENABLE_RACE)),-race,)

.PHONY: all demo fmt vet lint test test-gocv test-python bench fuzz arm64 c c-cv test-c chaos chaos-short chaos-run

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
		echo "$(GO) test $(RACE) -count=1 -tags gocv ./cv/... ./cmd/framering/... ./internal/source/..."; \
		$(GO) test $(RACE) -count=1 -timeout 15m -tags gocv ./cv/... ./cmd/framering/... ./internal/source/...; \
	else \
		echo "skipping the -tags gocv tests: OpenCV 4 not found (apt-get install libopencv-dev)"; \
	fi
	@$(MAKE) --no-print-directory test-python
	@if command -v $(CC) >/dev/null 2>&1 && command -v $(CXX) >/dev/null 2>&1; then \
		$(MAKE) --no-print-directory test-c; \
	else \
		echo "skipping the C/C++ tests: no $(CC) or $(CXX) (apt-get install gcc g++)"; \
	fi

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
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./bridge

arm64:
	GOARCH=arm64 $(GO) test -c -o /dev/null ./...

# The C/C++ library (c/framering.h), its programs and its tests; see
# c/README.md. Build output goes to c/build/.
CC       ?= cc
CXX      ?= g++
C_BUILD  := c/build
C_WARN   := -Wall -Wextra -Werror
C_CFLAGS := -std=c11 -O2 -g $(C_WARN) -pthread
C_XFLAGS := -std=c++17 -O2 -g $(C_WARN) -pthread
C_SAN    := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
C_SANENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:halt_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

c: $(C_BUILD)/framering-send-c $(C_BUILD)/framering-recv-c $(C_BUILD)/framering-quickstart $(C_BUILD)/framering-bench-c c-cv

$(C_BUILD):
	mkdir -p $@

$(C_BUILD)/framering-%-c: c/tools/%.c c/tools/cli.h c/framering.h | $(C_BUILD)
	$(CC) $(C_CFLAGS) -o $@ $<

$(C_BUILD)/framering-quickstart: c/examples/quickstart.c c/framering.h | $(C_BUILD)
	$(CC) $(C_CFLAGS) -o $@ $<

# The C reader of the benchmark suite (framering bench runs it; see
# docs/PERFORMANCE.md).
$(C_BUILD)/framering-bench-c: bench/workers/worker.c c/framering.h | $(C_BUILD)
	$(CC) $(C_CFLAGS) -o $@ $<

# The OpenCV examples, when pkg-config finds OpenCV 4 (Debian: libopencv-dev).
c-cv: | $(C_BUILD)
	@if pkg-config --exists opencv4 2>/dev/null; then \
		$(MAKE) --no-print-directory $(C_BUILD)/framering-cv-capture $(C_BUILD)/framering-cv-view; \
	else \
		echo "skipping the OpenCV C++ examples: OpenCV 4 not found by pkg-config (apt-get install libopencv-dev)"; \
	fi

$(C_BUILD)/framering-cv-%: c/examples/cv_%.cpp c/framering.h | $(C_BUILD)
	$(CXX) $(C_XFLAGS) $$(pkg-config --cflags opencv4) -o $@ $< $$(pkg-config --libs opencv4)

# The header as C11 and as C++17 (-Wall -Wextra -Werror), the C tests and
# the C++ tests under AddressSanitizer + UndefinedBehaviorSanitizer (any
# report fails), then the OpenCV examples end to end.
test-c: c
	$(CC) -std=c11 -g -O1 $(C_WARN) -pthread $(C_SAN) -o $(C_BUILD)/framering_test c/test/framering_test.c
	$(CXX) -std=c++17 -g -O1 $(C_WARN) -pthread $(C_SAN) -DCXX_TEST_IMPL -o $(C_BUILD)/cxx_test c/test/cxx_test.cpp
	$(CC) -std=c11 -g -O1 $(C_WARN) -pthread $(C_SAN) -c -o $(C_BUILD)/impl.o c/test/impl.c
	$(CXX) -std=c++17 -g -O1 $(C_WARN) -pthread $(C_SAN) -o $(C_BUILD)/cxx_link_test c/test/cxx_test.cpp $(C_BUILD)/impl.o
	$(C_SANENV) $(C_BUILD)/framering_test
	$(CC) -std=c11 -g -O1 $(C_WARN) -pthread $(C_SAN) -DFRAMERING_TEST_FORCE_NAMED_TMP -o $(C_BUILD)/framering_test_named_tmp c/test/framering_test.c
	$(C_SANENV) $(C_BUILD)/framering_test_named_tmp --named-tmp
	$(C_SANENV) $(C_BUILD)/cxx_test
	$(C_SANENV) $(C_BUILD)/cxx_link_test
	@if command -v aarch64-linux-gnu-gcc >/dev/null 2>&1; then \
		echo "arm64: the header and programs compile (aarch64-linux-gnu-gcc, with and without +crc)"; \
		for m in -march=armv8-a -march=armv8-a+crc; do \
			aarch64-linux-gnu-gcc -std=c11 -O2 $$m $(C_WARN) -pthread -c -o /dev/null c/test/impl.c && \
			aarch64-linux-gnu-gcc -std=c11 -O2 $$m $(C_WARN) -pthread -o /dev/null c/tools/recv.c || exit 1; \
		done; \
	else \
		echo "skipping the arm64 compile check: no aarch64-linux-gnu-gcc (apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross)"; \
	fi
	@if pkg-config --exists opencv4 2>/dev/null; then \
		sh c/test/cv_test.sh $(C_BUILD); \
	else \
		echo "skipping the OpenCV example test: OpenCV 4 not found (apt-get install libopencv-dev)"; \
	fi

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
