# Hearth: `make run` sets up and starts the daemon; `make test` sets up and runs every test.
# Both install missing Debian packages first (as root; otherwise they print the apt line and stop).

BUILD      ?= build
BUILD_TYPE ?= Release
LISTEN     ?= 127.0.0.1:9000
DATA_DIR   ?= .hearth
JOBS       ?= $(shell nproc)
# The sandbox needs root; without it `make run` falls back to plain processes (the daemon warns
# loudly that functions are then not isolated).
ISOLATION  ?= $(if $(filter 0,$(shell id -u)),sandbox,process)

# Needed to build and run.
BUILD_PACKAGES := cmake ninja-build g++ pkg-config zip unzip \
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev libboost-system1.81-dev \
  libboost-context1.81-dev libsqlite3-dev libarchive-dev libssl-dev libcli11-dev libfmt-dev \
  libspdlog-dev libgtest-dev libgmock-dev libbenchmark-dev libseccomp-dev libcap-dev e2fsprogs \
  slirp4netns zlib1g-dev
# Needed by the end-to-end tests: real clients, and what the official Node.js runtime
# client (aws-lambda-ric, from npm) needs to compile its native part.
TEST_PACKAGES := python3 nodejs autoconf automake libtool make libcurl4-openssl-dev

.PHONY: all build run test unit e2e deps test-deps bench clean

all: build

deps:
	@./scripts/ensure-packages.sh $(BUILD_PACKAGES)

test-deps:
	@./scripts/ensure-packages.sh $(TEST_PACKAGES)
	@./scripts/ensure-clients.sh

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

run: build
	./$(BUILD)/hearth serve --listen $(LISTEN) --data-dir $(DATA_DIR) --isolation $(ISOLATION)

# Test tools before the build: CMake registers the Python and Node tests only when it finds them.
test: test-deps build
	ctest --test-dir $(BUILD) --output-on-failure -j 2

unit: build
	ctest --test-dir $(BUILD) --output-on-failure -j 2 -L unit

e2e: test-deps build
	ctest --test-dir $(BUILD) --output-on-failure -j 2 -L e2e

bench: build
	cmake --build $(BUILD) --target bench

clean:
	rm -rf $(BUILD)
