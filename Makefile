# gpuhive: `make run` (set up, build, run) and `make test` (set up, build, every test).
# Everything installs what it needs first (scripts/install-deps.sh is quick when all is present).

BUILD_DIR   ?= build
JOBS        ?= $(shell nproc)
CMAKE_FLAGS ?=
# ccache keeps its default directory (~/.cache/ccache) so fresh clones on one machine share it.
export CCACHE_MAXSIZE ?= 5G

.PHONY: all deps deps-bench configure build test test-fast test-sanitizers run demo perf models bench soak soak-asan fuzz clean

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

# Every test: unit and integration suites, the ONNX conformance suite, the executor guard (which
# runs the benchmark and built-in models: `models` exports them), then sanitizer builds.
test: build models
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

# The built-in model repository (real architectures, random weights; generated once and cached).
REPOSITORY ?= models/repository
HTTP_PORT  ?= 8000
GRPC_PORT  ?= 8001
SERVE_ARGS ?=

# The benchmark models (models/generated, which the executor guard and `make bench` run) are exported
# first; the repository takes the ones it shares from that cache.
models: deps-bench
	$(PYTHON) bench/export_models.py --out models/generated
	$(PYTHON) scripts/make-repository.py --out $(REPOSITORY)

# The main job: set up, build, prepare the repository, serve it (Ctrl-C / SIGTERM drains and exits).
run: build models
	@echo "gpuhive: serving $(REPOSITORY) -- KServe v2 HTTP http://127.0.0.1:$(HTTP_PORT)/v2, gRPC 127.0.0.1:$(GRPC_PORT),"
	@echo "         metrics http://127.0.0.1:$(HTTP_PORT)/metrics, management http://127.0.0.1:$(HTTP_PORT)/v2/gpuhive/models"
	$(BUILD_DIR)/bin/gpuhive serve --model-repository $(REPOSITORY) --http-port $(HTTP_PORT) --grpc-port $(GRPC_PORT) $(SERVE_ARGS)

# Scenario 1 (visual analysis) against a server the scenario starts itself, naive vs gpuhive;
# prints where the report is.
DEMO_SCENARIO ?= bench/scenarios/visual_analysis.json
DEMO_OUT      ?= bench/out/demo
demo: build models
	$(BUILD_DIR)/bin/gpuhive bench scenario $(DEMO_SCENARIO) --out $(DEMO_OUT) --json $(DEMO_OUT)/report.json
	@echo "report: $(DEMO_OUT)/report.md"

# The executor alone on every built-in model: speed and memory per model.
perf: build models
	@for m in $(REPOSITORY)/*/1/model.onnx; do \
	  echo "== $$m"; $(BUILD_DIR)/bin/gpuhive perf $$m --threads $(JOBS) --iterations 10 || exit 1; \
	done

# gpuhive vs ONNX Runtime 1.30 side by side (docs/benchmarks.md records the figures).
bench: build models
	mkdir -p bench/out && node bench/compare_ort.js --models models/generated --repository $(REPOSITORY) --threads $(JOBS) --batches 1,8 --json bench/out/executor.json

# The soak (issue 16): a million requests over HTTP and gRPC on the CPU and on the simulated device,
# with load/unload, limit changes, malformed requests and injected faults (not part of `make test`:
# about 2 + 3 minutes on 2 cores). SOAK_REQUESTS=50000 for a quick one.
SOAK_REQUESTS ?= 1000000
soak: build
	@mkdir -p bench/out
	@for d in cpu sim; do \
	  echo "== soak on $$d"; \
	  $(BUILD_DIR)/bin/gpuhive bench soak --requests $(SOAK_REQUESTS) --device $$d --model-repository tests/data/repository \
	    --fake-nvml $(BUILD_DIR)/tests/monitor/libfake_nvml_v1.so --quiet --json bench/out/soak-$$d.json || exit 1; \
	done

# The soak's short form under ASan + UBSan: the server binary built in build-asan, 100,000 requests
# on each device (the RSS slope is not judged: ASan's quarantine holds freed memory by design).
SOAK_ASAN_REQUESTS ?= 100000
soak-asan: build
	scripts/configure-sanitizer.sh build-asan address
	cmake --build build-asan -j $(JOBS) --target gpuhive
	@mkdir -p bench/out
	@for d in cpu sim; do \
	  echo "== ASan soak on $$d"; \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(BUILD_DIR)/bin/gpuhive bench soak --requests $(SOAK_ASAN_REQUESTS) --device $$d \
	    --server-binary build-asan/bin/gpuhive --max-slope 1000000 --model-repository tests/data/repository \
	    --fake-nvml $(BUILD_DIR)/tests/monitor/libfake_nvml_v1.so --quiet --json bench/out/soak-asan-$$d.json || exit 1; \
	done

# The libFuzzer targets (fuzz/): the ONNX importer, config.pbtxt, the KServe JSON/binary request
# parser and the gRPC request conversion, FUZZ_SECONDS each under ASan + UBSan (clang++).
FUZZ_SECONDS ?= 60
fuzz: deps
	bash fuzz/run_all.sh $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD_DIR) build-asan build-tsan
