# gpuhive: `make run` (set up, build, run) and `make test` (set up, build, every test).
# Everything installs what it needs first (scripts/install-deps.sh is quick when all is present).

BUILD_DIR   ?= build
JOBS        ?= $(shell nproc)
CMAKE_FLAGS ?=
# ccache keeps its default directory (~/.cache/ccache) so fresh clones on one machine share it.
export CCACHE_MAXSIZE ?= 5G

.PHONY: all deps deps-bench configure build test test-fast test-sanitizers run models bench clean

all: build

deps:
	@scripts/install-deps.sh

deps-bench:
	@scripts/install-deps.sh --with-bench

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

configure: deps $(BUILD_DIR)/build.ninja

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

# Every test: unit and integration suites, the ONNX conformance suite, then sanitizer builds.
test: build
	cd $(BUILD_DIR) && ctest -j $(JOBS) --output-on-failure --timeout 900
	$(MAKE) test-sanitizers

# Unit tests only, no sanitizers (the inner loop while developing).
test-fast: build
	cd $(BUILD_DIR) && ctest -j $(JOBS) --output-on-failure -L unit -LE heavy

# ASan+UBSan over the unit tests, TSan over the concurrency suites (label "tsan").
test-sanitizers: deps
	scripts/sanitizer-tests.sh

# Debian's interpreter: it has python3-torch/torchvision/onnx (a pyenv python3 on PATH may not).
PYTHON ?= /usr/bin/python3

models: deps-bench
	$(PYTHON) bench/export_models.py --out models/generated

# Until the server lands: run the executor on every built-in model and print its speed and memory.
run: build models
	@for m in models/generated/*.onnx; do \
	  echo "== $$m"; $(BUILD_DIR)/bin/gpuhive perf $$m --threads $(JOBS) --iterations 10 || exit 1; \
	done

# gpuhive vs ONNX Runtime 1.30 side by side (docs/benchmarks.md records the figures).
bench: build models
	mkdir -p bench/out && node bench/compare_ort.js --models models/generated --threads $(JOBS) --batches 1,8 --json bench/out/executor.json

clean:
	rm -rf $(BUILD_DIR) build-asan build-tsan
