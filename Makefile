# zen: the two commands a new user needs are `make run` and `make test`.
# Everything else here is a step they call.

BUILD_DIR  ?= build
BUILD_TYPE ?= Release
ZEN_WERROR ?= OFF
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
ARGS       ?=

# Debian packages the build and the tests need (DESIGN §6).
DEB_PACKAGES := cmake make g++ pkg-config python3 systemd \
	libasio-dev liburing-dev libcli11-dev libfmt-dev libspdlog-dev libsystemd-dev \
	libwrap0-dev nlohmann-json3-dev libgtest-dev libgmock-dev libbenchmark-dev help2man

MAKEFLAGS += --no-print-directory

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps peer-deps npm-deps packaging-deps configure build zen run test install uninstall deb \
	sanitize bench profile soak fuzz clean cluster cluster-down

all: build

# Real peers the tests and benchmarks start themselves on loopback (DESIGN §6), strace for
# bench/syscalls.py, linux-perf for bench/cpu_profile.py and the io_uring tracepoint counts, logrotate for the deploy/logrotate snippet's test, prometheus (the server and
# promtool) for the --metrics tests and the cluster, iproute2's ip for the network namespaces of the
# reuseport restart test and of deploy/cluster, nftables' nft for the faults on a wire between
# namespaces (peers that vanish, the fault matrix of tests/wire/), python3-yaml for the deploy/kubernetes test:
# `make test`, `make bench` and `make soak` install them; `make run` needs none. That test also
# needs npm (its validator comes from the npm registry): Debian's npm, unless one is on PATH.
PEER_PACKAGES := redis-server memcached chromium haproxy openbsd-inetd strace logrotate prometheus iproute2 nftables \
	python3-yaml linux-perf
# What deploy/cluster/up needs (make cluster).
CLUSTER_PACKAGES := haproxy prometheus iproute2
# `make deb`: CPack's DEB generator runs dpkg-shlibdeps (dpkg-dev), which needs file; the
# packaging tests also run lintian and man.
PACKAGING_PACKAGES := dpkg-dev file lintian man-db
# bench/profile.py's callgrind.
PROFILE_PACKAGES := valgrind

# $(call install_missing,PACKAGES): apt-get installs those not installed yet, so a second run
# takes a moment. Packages like redis-server would start system-wide daemons on install; a
# temporary policy-rc.d forbids that, so the only one running is one a test started.
define install_missing
	@missing=""; \
	for p in $(1); do \
	  dpkg-query -W -f='$${Status}\n' "$$p" 2>/dev/null | grep -q '^install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "make: installing$$missing"; \
	  guard=""; \
	  if [ ! -e /usr/sbin/policy-rc.d ]; then \
	    printf '#!/bin/sh\nexit 101\n' | $(SUDO) tee /usr/sbin/policy-rc.d >/dev/null && \
	    $(SUDO) chmod 755 /usr/sbin/policy-rc.d && guard=1; \
	  fi; \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	  status=$$?; \
	  if [ -n "$$guard" ]; then $(SUDO) rm -f /usr/sbin/policy-rc.d; fi; \
	  exit $$status; \
	fi
endef

deps:
	$(call install_missing,$(DEB_PACKAGES))

peer-deps: deps
	$(call install_missing,$(PEER_PACKAGES))
	@command -v npm >/dev/null 2>&1 || $(MAKE) npm-deps

npm-deps:
	$(call install_missing,npm)

packaging-deps: deps
	$(call install_missing,$(PACKAGING_PACKAGES))

configure: deps
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DZEN_WERROR=$(ZEN_WERROR) >/dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

# Just the executable: what `make run` needs.
zen: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS) --target zen

# The server on its defaults (127.0.0.1:1060, --arch single); extra flags: make run ARGS='--arch single -p 1061'
run: zen
	$(BUILD_DIR)/zen serve $(ARGS)

# A cluster of zen nodes behind haproxy on this machine (docs/scaling.md; needs root):
# make cluster ARGS='--nodes 5 --arch uring', then make cluster-down.
cluster: zen
	$(call install_missing,$(CLUSTER_PACKAGES))
	$(SUDO) deploy/cluster/up --zen $(BUILD_DIR)/zen $(ARGS)

cluster-down:
	$(SUDO) deploy/cluster/down $(ARGS)

test: build peer-deps packaging-deps
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 300
	@if [ "$(ZEN_DEEP_CHECKS)" = 1 ]; then $(MAKE) sanitize fuzz; fi

# What an install holds: the binary, man pages, completion, the Debian changelog.
INSTALL_TARGETS := zen zen_man zen_completion zen_changelog
PREFIX ?= /usr/local
DESTDIR ?=

# The binary, man pages, bash completion, systemd units (not enabled) and deploy/ examples under
# PREFIX (inside DESTDIR if given): make install PREFIX=/usr/local. CMake's install_manifest.txt
# (which leaves DESTDIR out) is added to zen_install_manifest.txt with DESTDIR in, since cpack and
# the tests rewrite the original; a second install to another prefix adds its own files.
install: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS) --target $(INSTALL_TARGETS)
	DESTDIR="$(DESTDIR)" cmake --install $(BUILD_DIR) --prefix "$(PREFIX)"
	@{ awk '{ print "$(DESTDIR)" $$0 }' $(BUILD_DIR)/install_manifest.txt; \
	  cat $(BUILD_DIR)/zen_install_manifest.txt 2>/dev/null; } | \
	  sort -u > $(BUILD_DIR)/zen_install_manifest.txt.new && \
	  mv $(BUILD_DIR)/zen_install_manifest.txt.new $(BUILD_DIR)/zen_install_manifest.txt

# Removes every file `make install` installed (DESTDIR included, as the manifest records it), then
# the emptied share/doc/zen; directories shared with other software stay.
uninstall:
	@manifest=$(BUILD_DIR)/zen_install_manifest.txt; \
	if [ ! -f "$$manifest" ]; then echo "make uninstall: no $$manifest: nothing was installed with make install"; exit 1; fi; \
	tr '\n' '\0' < "$$manifest" | xargs -0 -r rm -f --; \
	grep '/share/doc/zen/' "$$manifest" | sed 's|\(/share/doc/zen\)/.*|\1|' | sort -u | \
	  while read -r doc; do [ -d "$$doc" ] && find "$$doc" -depth -type d -empty -delete; done; \
	rm -f "$$manifest"; echo "make uninstall: removed what $$manifest listed"

# The Debian package, $(BUILD_DIR)/zen_VERSION_ARCH.deb: apt install ./$(BUILD_DIR)/zen_*.deb
deb: configure packaging-deps
	@cmake --build $(BUILD_DIR) -j $(JOBS) --target $(INSTALL_TARGETS)
	cd $(BUILD_DIR) && cpack -G DEB

# The whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer, and the tests of
# the threaded architectures under ThreadSanitizer. Every sanitizer report, from the tests or
# from any zen they start, lands in a file; one file fails the run. CI runs this (and `make
# fuzz`) through `make test` with ZEN_DEEP_CHECKS=1 (.ci/run); about 20 minutes on 2 cores.
# Left out, and why: a 4 GiB address-space limit and the memory-growth bounds (prefork's, and
# memory flat after ten thousand conversations), which ASan's reservations and quarantine break; descriptor exhaustion, where the sanitizers' own checks need descriptors
# (UBSan then misreports every virtual call); the report and syscall tests (bench/, measurements;
# uring's system-call count runs the server under strace, where LeakSanitizer cannot work and
# ASan's runtime makes calls of its own);
# the counting allocator and the memory per idle connection (the sanitizers own malloc); the
# packaging tests (files and packages, no code of zen's to check); the simulation's mutants
# (tests/sim/mutants.py compiles and links binaries of its own, without the sanitizers' flags:
# they check the simulation, not zen, and Simulation.seeds runs under the sanitizers).
SANITIZE_EXCLUDE := ^Packaging\.|^Trace\.cap$$|FourGibibyte|ClientThatNeverReadsLeavesServerMemoryBounded/prefork|LeaveMemoryFlat|OutOfDescriptors|ShortOfDescriptors|^Startup\.descriptors$$|^Report\.|^Profile\.|^Uring\.NoSystemCall|Allocations\.|IdleMemory\.|^Simulation\.mutant\.
TSAN_TESTS       := /threaded|/per_client|/reuseport|^Threaded\.|^PerClient\.|^Bench\.
# TSan cannot follow a process that forks while it has threads and then starts more: prefork.
TSAN_EXCLUDE     := $(SANITIZE_EXCLUDE)|Prefork
sanitize: deps
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DZEN_SANITIZE=address >/dev/null
	@cmake --build build-asan -j $(JOBS)
	@rm -rf build-asan/reports && mkdir -p build-asan/reports
	cd build-asan && ASAN_OPTIONS=log_path=$(CURDIR)/build-asan/reports/asan:detect_leaks=1 \
	  UBSAN_OPTIONS=log_path=$(CURDIR)/build-asan/reports/ubsan:print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS) --timeout 300 -E '$(SANITIZE_EXCLUDE)'
	@if ls build-asan/reports | grep -q .; then head -60 build-asan/reports/*; echo "sanitize: ASan/UBSan reports above"; exit 1; fi
	@cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DZEN_SANITIZE=thread >/dev/null
	@cmake --build build-tsan -j $(JOBS)
	@rm -rf build-tsan/reports && mkdir -p build-tsan/reports
	cd build-tsan && TSAN_OPTIONS=log_path=$(CURDIR)/build-tsan/reports/tsan:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS) --timeout 300 -R '$(TSAN_TESTS)' -E '$(TSAN_EXCLUDE)'
	@if ls build-tsan/reports | grep -q .; then head -60 build-tsan/reports/*; echo "sanitize: TSan reports above"; exit 1; fi
	@echo "sanitize: no reports"

# The micro-benchmarks of the protocol core, codecs and PROXY reader (about a minute; mean,
# median and spread of 3 runs each, also in BENCH_OUT/micro.json), then the side-by-side
# comparison (about 12 minutes on 2 cores): every architecture, redis-server and memcached;
# memory per idle connection (about a minute); zen bench cross-checked against redis-benchmark;
# then `make profile` (about 2 minutes). About 17 minutes in all. Report: BENCH_OUT/report.html;
# docs/performance.md reads these.
BENCH_OUT ?= $(BUILD_DIR)/bench-report
MICRO_BENCH_FLAGS ?= --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
bench: build peer-deps
	@mkdir -p $(BENCH_OUT)
	$(BUILD_DIR)/zen_micro_bench $(MICRO_BENCH_FLAGS) \
	  --benchmark_out=$(BENCH_OUT)/micro.json --benchmark_out_format=json
	bench/compare.py --out $(BENCH_OUT) --zen $(BUILD_DIR)/zen
	bench/idle_memory.py --zen $(BUILD_DIR)/zen --json $(BENCH_OUT)/idle_memory.json
	bench/vs_redis_benchmark.py --zen $(BUILD_DIR)/zen
	@$(MAKE) profile

# System calls per answer for every architecture and both peers under strace (about 2 minutes;
# BENCH_OUT/syscalls.json), epoll's instructions per answer and top functions under callgrind
# (BENCH_OUT/callgrind.out.epoll), then where epoll's and redis-server's CPU goes, kernel
# included, in short conversations (perf; BENCH_OUT/cpu-*.json). docs/profiling.md says how to
# read them.
profile: build peer-deps
	$(call install_missing,$(PROFILE_PACKAGES))
	@mkdir -p $(BENCH_OUT)
	bench/syscalls.py --zen $(BUILD_DIR)/zen --json $(BENCH_OUT)/syscalls.json
	bench/profile.py --zen $(BUILD_DIR)/zen --out $(BENCH_OUT)
	bench/cpu_profile.py --zen $(BUILD_DIR)/zen --arch epoll --reconnect 3 --json $(BENCH_OUT)/cpu-epoll.json
	bench/cpu_profile.py --zen $(BUILD_DIR)/zen --peer redis-server --reconnect 3 --json $(BENCH_OUT)/cpu-redis.json

# Mixed load with random resets against every architecture for SOAK_SECONDS in all; descriptors
# and memory must come back to their baseline; then the connection core's simulation over
# SOAK_SEEDS seeds (about 25 s for 200,000; docs/simulation.md); then the whole fault matrix on a
# real wire (every fault x every architecture, about 11 minutes; needs root for its network
# namespaces, skipped with the reason without) and the cluster's partition: figures in
# BUILD_DIR/wire/wire-matrix.md (docs/reliability.md). Not part of `make test`, which runs the
# matrix's short form.
SOAK_SECONDS ?= 600
SOAK_SEEDS ?= 200000
WIRE_OUT ?= $(BUILD_DIR)/wire
soak: build peer-deps
	bench/soak.py --seconds $(SOAK_SECONDS) --zen $(BUILD_DIR)/zen
	$(BUILD_DIR)/tests/sim/zen_simulation --seeds 1..$(SOAK_SEEDS)
	@rm -f $(WIRE_OUT)/matrix-*.json
	@for step in "tests/wire/matrix.py --zen $(BUILD_DIR)/zen --out $(WIRE_OUT) --all" \
	             "tests/wire/cluster_partition.py $(BUILD_DIR)/zen $(WIRE_OUT)"; do \
	  echo "$$step"; python3 $$step; status=$$?; \
	  if [ $$status = 77 ]; then echo "soak: skipped (the reason is above)"; \
	  elif [ $$status != 0 ]; then exit $$status; fi; \
	done

# libFuzzer on the session, the chapter-5 codecs and the PROXY header reader, FUZZ_SECONDS each (clang from Debian).
FUZZ_DIR     ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_PACKAGES := clang libclang-rt-dev
fuzz: deps
	$(call install_missing,$(FUZZ_PACKAGES))
	@CC=clang CXX=clang++ cmake -S . -B $(FUZZ_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DZEN_FUZZ=ON >/dev/null
	@cmake --build $(FUZZ_DIR) -j $(JOBS) --target fuzz_session fuzz_framing fuzz_proxy
	@for target in fuzz_session fuzz_framing fuzz_proxy; do \
	  mkdir -p $(FUZZ_DIR)/corpus/$$target && \
	  echo "fuzz: $$target for $(FUZZ_SECONDS) s" && \
	  dict=; [ -f tests/fuzz/$$target.dict ] && dict=-dict=tests/fuzz/$$target.dict; \
	  seeds=; [ -d tests/fuzz/seeds/$$target ] && seeds=tests/fuzz/seeds/$$target; \
	  $(FUZZ_DIR)/$$target -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/ \
	    $$dict $(FUZZ_DIR)/corpus/$$target $$seeds > $(FUZZ_DIR)/$$target.log 2>&1; rc=$$?; \
	  grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units)' $(FUZZ_DIR)/$$target.log | tail -2; \
	  if [ $$rc != 0 ]; then tail -40 $(FUZZ_DIR)/$$target.log; echo "fuzz: $$target failed"; exit 1; fi; \
	done

clean:
	rm -rf $(BUILD_DIR) $(FUZZ_DIR) build-asan build-tsan
