# The two commands of the README: `make demo` and `make test`. Both install what is missing.
BUILD ?= build
SAN_BUILD ?= build-asan
GEN := -G Ninja

.PHONY: all deps build test unit integration demo sanitize fuzz format clean bench

all: build

deps:
	@scripts/install-deps.sh

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) $(GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: $(BUILD)/build.ninja
	cmake --build $(BUILD)

test: deps build
	cd $(BUILD) && ctest --output-on-failure -j2 --timeout 120
	scripts/run-integration.sh $(BUILD)/phoenix

unit: build
	cd $(BUILD) && ctest --output-on-failure -j2 --timeout 120

integration: build
	scripts/run-integration.sh $(BUILD)/phoenix

sanitize:
	cmake -S . -B $(SAN_BUILD) $(GEN) -DCMAKE_BUILD_TYPE=Debug -DPHOENIX_SANITIZE=ON
	cmake --build $(SAN_BUILD)
	cd $(SAN_BUILD) && ctest --output-on-failure -j2 --timeout 300

FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 20
# Every parser of untrusted bytes under libFuzzer with ASan+UBSan, FUZZ_SECONDS each.
fuzz: deps
	CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD) $(GEN) -DCMAKE_BUILD_TYPE=Debug \
	  -DPHOENIX_FUZZ=ON -DPHOENIX_SANITIZE=ON
	cmake --build $(FUZZ_BUILD) --target procfile_fuzz dotenv_fuzz toml_fuzz duration_fuzz control_fuzz \
	  scenario_fuzz har_fuzz response_fuzz writable_fuzz
	for t in procfile dotenv toml duration control scenario har response writable; do \
	  mkdir -p $(FUZZ_BUILD)/corpus/$$t && \
	  if $(FUZZ_BUILD)/$${t}_fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
	       $(FUZZ_BUILD)/corpus/$$t fuzz/corpus/$$t >$(FUZZ_BUILD)/$$t.log 2>&1; then \
	    echo "fuzz $$t: $$(tail -n 1 $(FUZZ_BUILD)/$$t.log)"; \
	  else tail -n 40 $(FUZZ_BUILD)/$$t.log; echo "fuzz $$t: FAILED"; exit 1; fi; \
	done

demo: deps build
	scripts/demo.sh $(BUILD)/phoenix

bench: deps build
	bench/run-all.sh $(BUILD)/phoenix

format:
	clang-format -i $$(git ls-files 'src/*.cc' 'src/*.h')

clean:
	rm -rf $(BUILD) $(SAN_BUILD) $(FUZZ_BUILD)
