# Thin wrapper over CMake. `make test` and `make demo` install what is missing first.
BUILD ?= build
# The ASan + UBSan build (clang), with the fuzz targets.
SANITIZE_BUILD ?= build-asan
FUZZ_SECONDS ?= 300
JOBS ?= $(shell nproc)

.PHONY: all deps build binary peer test unit-test pg-test compat-test sanitize fuzz demo bench bench-wal docs clean

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD)/CMakeCache.txt:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

build: deps $(BUILD)/CMakeCache.txt
	@cmake --build $(BUILD) -j $(JOBS)

binary: deps $(BUILD)/CMakeCache.txt
	@cmake --build $(BUILD) -j $(JOBS) --target tidemark

# Debezium's connector in its embedded engine, beside tidemark in tests/compat and bench/.
peer: deps
	@bash scripts/debezium-peer.sh build >/dev/null

test: build peer
	@cd $(BUILD) && ctest --output-on-failure -j 2
	@$(MAKE) --no-print-directory sanitize

# The unit tests under AddressSanitizer and UndefinedBehaviorSanitizer, and each fuzz target
# for a few seconds from its seeds (fuzz/corpus).
sanitize: deps
	@CC=clang CXX=clang++ cmake -S . -B $(SANITIZE_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DTIDEMARK_SANITIZE=ON -DFUZZ_SECONDS=5 >/dev/null
	@echo "building the sanitizer build (log: $(SANITIZE_BUILD)/build.log)..."
	@cmake --build $(SANITIZE_BUILD) -j $(JOBS) --target unit_tests fuzz_pgoutput fuzz_replication_frame \
	  fuzz_values >$(SANITIZE_BUILD)/build.log 2>&1 || { tail -50 $(SANITIZE_BUILD)/build.log; exit 1; }
	@cd $(SANITIZE_BUILD) && ctest --output-on-failure -L 'unit|fuzz' -j $(JOBS)

# The fuzz targets for FUZZ_SECONDS each.
fuzz: sanitize
	@cd $(SANITIZE_BUILD) && cmake -DFUZZ_SECONDS=$(FUZZ_SECONDS) . >/dev/null && \
	  ctest --output-on-failure -L fuzz; cmake -DFUZZ_SECONDS=5 . >/dev/null

unit-test: build
	@cd $(BUILD) && ctest --output-on-failure -L unit -j $(JOBS)

pg-test: build
	@cd $(BUILD) && ctest --output-on-failure -L pg

compat-test: build peer
	@cd $(BUILD) && ctest --output-on-failure -L compat

# The demo builds quietly: its own output is what there is to see.
demo: deps $(BUILD)/CMakeCache.txt
	@echo "building tidemark (log: $(BUILD)/build.log)..."
	@cmake --build $(BUILD) -j $(JOBS) --target tidemark >$(BUILD)/build.log 2>&1 || { cat $(BUILD)/build.log; exit 1; }
	@bash scripts/demo.sh $(BUILD)/tidemark

bench: binary peer
	@cmake --build $(BUILD) -j $(JOBS) --target log_bench apply_bench
	@bash bench/run.sh $(BUILD)/tidemark
	@APPLY_BENCH=$(BUILD)/apply_bench bash bench/destination.sh $(BUILD)/tidemark
	@bash bench/snapshot.sh $(BUILD)/tidemark

# WAL retention with idle captured tables, per heartbeat mode; WAL_SECONDS of load per mode.
WAL_SECONDS ?= 70
bench-wal: binary
	@bash bench/wal_retention.sh $(BUILD)/tidemark $(WAL_SECONDS)

docs: binary
	@$(BUILD)/tidemark config-reference > docs/CONFIGURATION.md

clean:
	rm -rf $(BUILD)
