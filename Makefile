# The two commands of the README: `make demo` and `make test`. Both install what is missing.
BUILD ?= build
SAN_BUILD ?= build-asan
GEN := -G Ninja

.PHONY: all deps build test unit integration demo sanitize format clean bench

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

demo: deps build
	scripts/demo.sh $(BUILD)/phoenix

bench: deps build
	bench/run-all.sh $(BUILD)/phoenix

format:
	clang-format -i $$(git ls-files 'src/*.cc' 'src/*.h')

clean:
	rm -rf $(BUILD) $(SAN_BUILD)
