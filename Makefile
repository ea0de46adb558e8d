# libjetstream - GNU-convention Makefile.
#
# Targets
#   all (default)   $(BUILD)/libjetstream.so.$(VERSION) with SONAME
#                   libjetstream.so.$(MAJOR), the symlinks libjetstream.so.$(MAJOR)
#                   and libjetstream.so, and $(BUILD)/libjetstream.a
#   tests           $(BUILD)/tests/test_X for every tests/test_X.c (check
#                   framework, linked with the static library)
#   examples        $(BUILD)/examples/X for every examples/X.c (linked with the
#                   shared library, public header only)
#   check           deps, meta-check, then the stages CHECK_STAGES (the test
#                   programs; under ASan+UBSan; the threaded ones under TSan;
#                   under valgrind; the fuzz seeds and regressions; each
#                   fuzz target for 45 s); ends with the line
#                   "N passed, N failed" summed over the stages and fails on
#                   any failure
#   unit-check      only the test programs (no deps, no meta-tests)
#   crash-soak      the kill -9 tests with SOAK_ITERS (2000) children each
#   meta-check      every meta-test (see META_TESTS); each also has its own
#                   target meta-<name>, e.g. make meta-man
#   demo            deps, build everything, run $(BUILD)/examples/orders
#   bench           build bench/*.c and run $(BUILD)/bench/jsbench $(BENCH_ARGS)
#   asan ubsan tsan valgrind   the test programs under sanitizers / valgrind
#   coverage        line and branch coverage per library file (gcov)
#   abi-baseline    write abi/libjetstream.abi from the current sources
#   abi-check       compare the current ABI with abi/libjetstream.abi
#   install uninstall    honour PREFIX, DESTDIR, LIBDIR, INCLUDEDIR, MANDIR,
#                   PKGCONFIGDIR
#   deps            scripts/deps.sh: install missing Debian packages
#   clean
#
# Variables: CC, CFLAGS, CPPFLAGS, LDFLAGS as usual; BUILD (build directory,
# default build); NODEPS=1 skips scripts/deps.sh; TEST_TIMEOUT (seconds per
# test program, default 1800, 0 for none).
.POSIX:
.SUFFIXES:

PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
DESTDIR ?=

# .POSIX makes make's built-in defaults the POSIX ones (CC=c99, CFLAGS=-O1),
# so `?=` would never apply: replace the built-in values, keep the user's.
ifeq ($(origin CC),default)
CC = cc
endif
ifeq ($(origin CFLAGS),default)
CFLAGS = -O2 -g
endif
INSTALL ?= install
WARN = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
JS_CPPFLAGS = -Iinclude -Ilibjs -D_GNU_SOURCE
JS_CFLAGS = -std=c99 -fPIC -fvisibility=hidden -pthread $(WARN)
LIBS = -lz -lsodium -pthread

VERSION := $(shell sed -n 's/^\#define JS_VERSION_STRING "\(.*\)"/\1/p' include/jetstream.h)
MAJOR := $(shell sed -n 's/^\#define JS_VERSION_MAJOR \([0-9]*\)/\1/p' include/jetstream.h)
ifeq ($(VERSION)$(MAJOR),)
$(error cannot read JS_VERSION_STRING / JS_VERSION_MAJOR from include/jetstream.h)
endif

# Every build product lives under $(BUILD), so sanitizer and ABI builds go to
# their own trees (build-asan, build-tsan, build-abi, build-meta/...) and never
# mix objects compiled with different flags.
BUILD ?= build

SRCS := $(sort $(wildcard libjs/*.c))
OBJS := $(SRCS:libjs/%.c=$(BUILD)/obj/%.o)
SONAME = libjetstream.so.$(MAJOR)
SHLIB = $(BUILD)/libjetstream.so.$(VERSION)
SOLINK = $(BUILD)/$(SONAME)
DEVLINK = $(BUILD)/libjetstream.so
STLIB = $(BUILD)/libjetstream.a

# The slowest programs first, so the test runner (several at once) does not
# end with one of them running alone.
TEST_SLOW := tests/test_powercut.c tests/test_corrupt.c tests/test_iofault.c \
  tests/test_recovery.c
TEST_SRCS := $(TEST_SLOW) \
  $(filter-out $(TEST_SLOW),$(sort $(wildcard tests/test_*.c)))
TEST_BINS := $(TEST_SRCS:tests/%.c=$(BUILD)/tests/%)
# Deferred (=, not :=): scripts/deps.sh may install check during this very
# run, so ask pkg-config only when a test is linked.
TEST_LIBS = $(shell pkg-config --libs check 2>/dev/null || echo -lcheck)

EXAMPLE_SRCS := $(sort $(wildcard examples/*.c))
EXAMPLE_BINS := $(EXAMPLE_SRCS:examples/%.c=$(BUILD)/examples/%)

BENCH_SRCS := $(sort $(wildcard bench/*.c))
BENCH_BINS := $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%)

MAN3 := $(sort $(wildcard man/man3/*.3))
MAN7 := $(sort $(wildcard man/man7/*.7))

# Goals that run scripts/deps.sh first. deps is an order-only prerequisite of
# every compile, so even under -j nothing is built before the packages are in.
# A plain `make` never touches the package manager.
DEPS_GOALS = check demo meta-check asan tsan ubsan valgrind abi-check \
  abi-baseline crash-soak
ifeq ($(NODEPS),)
ifneq ($(filter $(DEPS_GOALS),$(MAKECMDGOALS)),)
NEED_DEPS = deps
endif
endif

# Meta-tests, each scripts/check-<name>.sh (exit 0 pass, 77 skip, else fail).
META_TESTS = header symbols exports man warnings examples install abi

# Environment for the scripts under scripts/.
SCRIPT_ENV = MAKE='$(MAKE)' CC='$(CC)' BUILD='$(BUILD)' VERSION='$(VERSION)' \
  MAJOR='$(MAJOR)' SONAME='$(SONAME)' TEST_TIMEOUT='$(TEST_TIMEOUT)'

all: $(SHLIB) $(SOLINK) $(DEVLINK) $(STLIB)

# The compiler and flags a build tree was made with: rewritten only when they
# change, so `make` then `make CC=clang` rebuilds everything instead of
# silently keeping the gcc objects.
FLAGS_STAMP = $(BUILD)/flags.stamp
FLAGS_TEXT = $(CC) | $(CPPFLAGS) | $(CFLAGS) | $(LDFLAGS)
$(FLAGS_STAMP): FORCE
	@mkdir -p $(@D)
	@tmp=$@.$$$$; printf '%s\n' '$(subst ','\'',$(FLAGS_TEXT))' > $$tmp; \
	if cmp -s $$tmp $@; then rm -f $$tmp; else mv -f $$tmp $@; fi

$(BUILD)/obj/%.o: libjs/%.c $(wildcard libjs/*.h) include/jetstream.h $(FLAGS_STAMP) | $(NEED_DEPS)
	@mkdir -p $(@D)
	$(CC) $(JS_CPPFLAGS) $(CPPFLAGS) $(JS_CFLAGS) $(CFLAGS) -c $< -o $@

$(SHLIB): $(OBJS) libjs/jetstream.map $(FLAGS_STAMP)
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=libjs/jetstream.map \
	  -Wl,--no-undefined $(CFLAGS) $(LDFLAGS) -o $@ $(OBJS) $(LIBS)

$(SOLINK): $(SHLIB)
	ln -sf $(notdir $(SHLIB)) $@

$(DEVLINK): $(SOLINK)
	ln -sf $(SONAME) $@

$(STLIB): $(OBJS)
	rm -f $@
	$(AR) rcs $@ $(OBJS)

# Tests link the static library so they can reach internal (jsi_*) helpers.
$(BUILD)/tests/%: tests/%.c $(STLIB) $(wildcard tests/*.h) $(FLAGS_STAMP) | $(NEED_DEPS)
	@mkdir -p $(@D)
	$(CC) $(JS_CPPFLAGS) $(CPPFLAGS) -Itests -std=c99 -pthread $(WARN) $(CFLAGS) $< -o $@ \
	  $(LDFLAGS) $(STLIB) $(TEST_LIBS) $(LIBS)

# Examples see only the public header and the shared library, as an
# application would; the rpath lets them run from the build tree.
$(BUILD)/examples/%: examples/%.c $(SHLIB) $(DEVLINK) include/jetstream.h $(FLAGS_STAMP) | $(NEED_DEPS)
	@mkdir -p $(@D)
	$(CC) -Iinclude $(CPPFLAGS) -std=c99 $(WARN) $(CFLAGS) $< -o $@ \
	  $(LDFLAGS) -L$(BUILD) -Wl,-rpath,'$$ORIGIN/..' -ljetstream

# Benchmarks: public API and shared library, as the examples; they may use
# POSIX/GNU calls (clock_gettime, fdatasync), hence _GNU_SOURCE.
$(BUILD)/bench/%: bench/%.c $(SHLIB) $(DEVLINK) include/jetstream.h $(FLAGS_STAMP) | $(NEED_DEPS)
	@mkdir -p $(@D)
	$(CC) -Iinclude $(CPPFLAGS) -D_GNU_SOURCE -std=c99 -pthread $(WARN) $(CFLAGS) $< -o $@ \
	  $(LDFLAGS) -L$(BUILD) -Wl,-rpath,'$$ORIGIN/..' -ljetstream -pthread

tests: $(TEST_BINS)

examples: $(EXAMPLE_BINS)

bench-build: $(BENCH_BINS)

# make bench [BENCH_ARGS='-n 100000 -p always'] runs jsbench (see its usage).
bench: all bench-build
	$(BUILD)/bench/jsbench $(BENCH_ARGS)

deps:
	sh scripts/deps.sh

# ---- tests -----------------------------------------------------------------

# make check is what CI runs. meta-check comes first and stops check when
# it fails; then the stages run one after another, each to the end: every
# test program, the same under ASan+UBSan, the threaded ones under TSan,
# the test programs under valgrind (VALGRIND_SCALE), every fuzz seed and
# regression input, and every fuzz target for FUZZ_TIME (45 s, FUZZ_JOBS
# at a time). The last line sums them up.
CHECK_STAGES = unit-check asan tsan valgrind fuzz-regress fuzz
check: $(NEED_DEPS) meta-check
	+@$(SCRIPT_ENV) bash scripts/check-all.sh $(CHECK_STAGES)

# The process-crash tests with thousands of kill -9s each (make check runs
# 300, 240 and 200): make crash-soak [SOAK_ITERS=2000].
SOAK_ITERS ?= 2000
CRASH_TESTS = test_crash test_consumer_crash test_kv_crash
crash-soak: $(NEED_DEPS) $(CRASH_TESTS:%=$(BUILD)/tests/%)
	@CRASH_ITERS=$(SOAK_ITERS) CONSUMER_CRASH_ITERS=$(SOAK_ITERS) \
	  KV_CRASH_ITERS=$(SOAK_ITERS) $(SCRIPT_ENV) TEST_TIMEOUT=0 \
	  bash scripts/run-tests.sh $(CRASH_TESTS:%=$(BUILD)/tests/%)

unit-check: $(TEST_BINS)
	@$(SCRIPT_ENV) bash scripts/run-tests.sh $(TEST_BINS)

meta-check: $(NEED_DEPS) all examples
	+@$(SCRIPT_ENV) bash scripts/meta-check.sh $(META_TESTS)

$(META_TESTS:%=meta-%): $(NEED_DEPS) all examples
	+@$(SCRIPT_ENV) bash scripts/meta-check.sh $(@:meta-%=%)

# Sanitizer builds: separate build trees, every report fatal. CK_FORK stays
# on (each check test in its own child); the multiplier stretches check's
# per-test timeouts for the slower instrumented code. setarch -R turns off
# address randomisation, which ThreadSanitizer needs on high-entropy kernels.
SAN_CFLAGS = -O1 -g -fno-omit-frame-pointer -fno-sanitize-recover=all
ASAN_ENV = ASAN_OPTIONS=abort_on_error=1:halt_on_error=1:detect_leaks=1:detect_stack_use_after_return=1 \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 CK_TIMEOUT_MULTIPLIER=10
TSAN_ENV = TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 CK_TIMEOUT_MULTIPLIER=20
# The test programs that start threads (the others cannot race).
TSAN_TESTS = test_consumer test_consumer_review test_crash test_kv \
  test_kv_watch test_misuse test_regressions test_store test_sync \
  test_util test_vfs

asan: $(NEED_DEPS)
	+$(MAKE) BUILD=build-asan NODEPS=1 \
	  CFLAGS='$(SAN_CFLAGS) -fsanitize=address,undefined' tests
	@$(ASAN_ENV) TEST_WRAPPER='setarch -R' $(SCRIPT_ENV) BUILD=build-asan \
	  bash scripts/run-tests.sh $(TEST_BINS:$(BUILD)/%=build-asan/%)

tsan: $(NEED_DEPS)
	+$(MAKE) BUILD=build-tsan NODEPS=1 CFLAGS='$(SAN_CFLAGS) -fsanitize=thread' \
	  $(or $(TSAN_TESTS:%=build-tsan/tests/%),tests)
	@$(TSAN_ENV) TEST_WRAPPER='setarch -R' $(SCRIPT_ENV) BUILD=build-tsan \
	  bash scripts/run-tests.sh $(TSAN_TESTS:%=build-tsan/tests/%)

ubsan: $(NEED_DEPS)
	+$(MAKE) BUILD=build-ubsan NODEPS=1 \
	  CFLAGS='$(SAN_CFLAGS) -fsanitize=undefined' tests
	@UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 CK_TIMEOUT_MULTIPLIER=5 \
	  $(SCRIPT_ENV) BUILD=build-ubsan \
	  bash scripts/run-tests.sh $(TEST_BINS:$(BUILD)/%=build-ubsan/%)

# Coverage: a --coverage build in build-cov, every test program run once,
# then gcov's line and branch shares per library file, and apart for the
# record codec and the recovery code (COV_CORE).
COV_CORE = libjs/record.c libjs/msgstore_recover.c libjs/checkpoint.c \
  libjs/consumer_state.c libjs/catalog.c libjs/consumer_config_file.c \
  libjs/consumer_config_pair.c
coverage: $(NEED_DEPS)
	rm -f build-cov/obj/*.gcda
	+$(MAKE) BUILD=build-cov NODEPS=1 CC=gcc CFLAGS='-O0 -g --coverage' \
	  LDFLAGS=--coverage tests
	@$(SCRIPT_ENV) BUILD=build-cov bash scripts/run-tests.sh \
	  $(TEST_BINS:$(BUILD)/%=build-cov/%) || true
	@echo "== coverage: every library file"
	@bash scripts/coverage.sh build-cov
	@echo "== coverage: codec and recovery"
	@bash scripts/coverage.sh build-cov $(COV_CORE)

# Valgrind: the normal build; CK_FORK=no keeps each program in one process
# so valgrind sees every test (check's own timeouts are then off). The
# kill -9 loops, the enumerations (every 20th cut or fault point) and the
# large-file corruption sweeps run scaled down; make valgrind
# VALGRIND_SCALE= runs them whole.
VALGRIND_SCALE = CRASH_ITERS=10 CONSUMER_CRASH_ITERS=10 KV_CRASH_ITERS=10 \
  PC_EVERY=20 CORRUPT_FLIP_STRIDE=1000 CORRUPT_TRUNC_STRIDE=1000
# test_corrupt reopens a store for every damaged byte of the small files
# (thousands of opens, about ten minutes under valgrind): it runs under
# ASan+LeakSanitizer only.
VALGRIND_BINS = $(filter-out $(BUILD)/tests/test_corrupt,$(TEST_BINS))
valgrind: $(NEED_DEPS) $(TEST_BINS)
	@CK_FORK=no $(VALGRIND_SCALE) TEST_WRAPPER='valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite' \
	  $(SCRIPT_ENV) bash scripts/run-tests.sh $(VALGRIND_BINS)

# ---- fuzzing ---------------------------------------------------------------
# fuzz/fuzz_<target>.c: one libFuzzer target per parser of bytes that come
# from storage or a caller, and fuzz_store, which runs API operations on a
# whole store image (fuzz/README.md). The targets link the library's objects
# (through the static library) so they reach the internal jsi_* decoders.
#   fuzz            clang -fsanitize=fuzzer,address,undefined in build-fuzz/;
#                   each target runs FUZZ_TIME seconds (default 45) on a copy
#                   of fuzz/corpus/<target> and fuzz/regress/<target> under
#                   build-fuzz/run/; fails if any target crashes.
#                   FUZZ_TARGETS='record store' narrows the set.
#   fuzz-regress    every seed and regression input through every target
#                   once: $(CC) with ASan/UBSan and fuzz/replay_main.c, in
#                   build-fuzz-replay/ (no clang needed)
#   fuzz-coverage   executions and branch coverage per target: replays the
#                   corpora `make fuzz` left (else the seeds) through a
#                   clang source-coverage build in build-fuzz-cov/
#   fuzz-seeds      rebuild fuzz/corpus/ from real stores (fuzz/make_seeds.c)
FUZZ_TIME ?= 45
FUZZ_CC ?= clang
FUZZ_ALL := $(filter-out util,$(patsubst fuzz/fuzz_%.c,%,$(wildcard fuzz/fuzz_*.c)))
FUZZ_TARGETS ?= $(FUZZ_ALL)
FUZZ_SAN = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
  -fno-sanitize-recover=all
FUZZ_ENV = ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# How a target gets its main(), set by the recursive make of each tree.
FUZZ_MAIN ?= fuzz/replay_main.c
# As DEPS_GOALS above: these goals run scripts/deps.sh first.
ifeq ($(NODEPS),)
ifneq ($(filter fuzz fuzz-regress fuzz-coverage,$(MAKECMDGOALS)),)
FUZZ_NEED_DEPS = deps
endif
endif

$(BUILD)/fuzz/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz_util.c fuzz/fuzz_util.h \
  fuzz/replay_main.c $(STLIB) $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(JS_CPPFLAGS) $(CPPFLAGS) -Ifuzz -std=c99 -pthread $(WARN) $(CFLAGS) \
	  $< fuzz/fuzz_util.c $(FUZZ_MAIN) -o $@ $(LDFLAGS) $(STLIB) $(LIBS)

$(BUILD)/fuzz/make_seeds: fuzz/make_seeds.c fuzz/fuzz_util.h $(STLIB) $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(JS_CPPFLAGS) $(CPPFLAGS) -Ifuzz -std=c99 -pthread $(WARN) $(CFLAGS) \
	  $< -o $@ $(LDFLAGS) $(STLIB) $(LIBS)

fuzz-bins: $(FUZZ_TARGETS:%=$(BUILD)/fuzz/fuzz_%)

fuzz: $(FUZZ_NEED_DEPS)
	+$(MAKE) BUILD=build-fuzz NODEPS=1 CC=$(FUZZ_CC) \
	  CFLAGS='$(FUZZ_SAN) -fsanitize=fuzzer-no-link' \
	  FUZZ_MAIN=-fsanitize=fuzzer FUZZ_TARGETS='$(FUZZ_TARGETS)' fuzz-bins
	@$(FUZZ_ENV) FUZZ_TIME='$(FUZZ_TIME)' bash scripts/fuzz-run.sh build-fuzz $(FUZZ_TARGETS)

fuzz-regress: $(FUZZ_NEED_DEPS)
	+$(MAKE) BUILD=build-fuzz-replay NODEPS=1 CFLAGS='$(FUZZ_SAN)' \
	  FUZZ_MAIN=fuzz/replay_main.c FUZZ_TARGETS='$(FUZZ_TARGETS)' fuzz-bins
	@$(FUZZ_ENV) bash scripts/fuzz-regress.sh build-fuzz-replay $(FUZZ_TARGETS)

fuzz-coverage: $(FUZZ_NEED_DEPS)
	+$(MAKE) BUILD=build-fuzz-cov NODEPS=1 CC=$(FUZZ_CC) \
	  CFLAGS='-O1 -g -fprofile-instr-generate -fcoverage-mapping' \
	  FUZZ_MAIN=fuzz/replay_main.c FUZZ_TARGETS='$(FUZZ_TARGETS)' fuzz-bins
	@bash scripts/fuzz-coverage.sh build-fuzz-cov build-fuzz $(FUZZ_TARGETS)

fuzz-seeds: $(BUILD)/fuzz/make_seeds
	rm -rf $(FUZZ_ALL:%=fuzz/corpus/%)
	$(BUILD)/fuzz/make_seeds fuzz/corpus

fuzz-clean:
	rm -rf build-fuzz build-fuzz-replay build-fuzz-cov

clean: fuzz-clean

.PHONY: fuzz-bins fuzz fuzz-regress fuzz-coverage fuzz-seeds fuzz-clean
# ---- end of fuzzing --------------------------------------------------------

# ---- ABI -------------------------------------------------------------------
# The baseline is abidw's description of the shared library, restricted to
# the types declared under include/. Both targets build with gcc -O2 -g in
# build-abi/ so the debug info is comparable whatever CC/CFLAGS say. The
# policy (what abi-check accepts) is documented in scripts/check-abi.sh.
ABI_CC = gcc
ABI_BUILD = build-abi

abi-lib:
	+$(MAKE) BUILD=$(ABI_BUILD) NODEPS=1 CC=$(ABI_CC) CFLAGS='-O2 -g' $(ABI_BUILD)/libjetstream.so.$(VERSION)

abi-baseline: $(NEED_DEPS) abi-lib
	@mkdir -p abi
	@$(SCRIPT_ENV) ABI_BUILD=$(ABI_BUILD) bash scripts/check-abi.sh --baseline

abi-check: $(NEED_DEPS) abi-lib
	@$(SCRIPT_ENV) ABI_BUILD=$(ABI_BUILD) bash scripts/check-abi.sh || [ $$? -eq 77 ]

# ---- demo ------------------------------------------------------------------
# Runs in $(BUILD)/demo so the demo's store never lands in the source tree.
# The store is kept: a second `make demo` finds the first run's messages
# (make clean starts over).
demo: $(NEED_DEPS) all examples
	@test -x $(BUILD)/examples/orders || { echo "demo: examples/orders.c is missing" >&2; exit 1; }
	mkdir -p $(BUILD)/demo
	cd $(BUILD)/demo && $(CURDIR)/$(BUILD)/examples/orders

# ---- install ---------------------------------------------------------------

# Keep $${prefix}-relative paths in the .pc file when the directories are
# under PREFIX, so the installed tree stays relocatable.
PC_LIBDIR = $(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))
PC_INCLUDEDIR = $(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))

$(BUILD)/jetstream.pc: pkgconfig/jetstream.pc.in include/jetstream.h FORCE
	@mkdir -p $(@D)
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(PC_LIBDIR)|g' \
	  -e 's|@INCLUDEDIR@|$(PC_INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' \
	  pkgconfig/jetstream.pc.in > $@

install: all $(BUILD)/jetstream.pc
	$(INSTALL) -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR)
	$(INSTALL) -m 0755 $(SHLIB) $(DESTDIR)$(LIBDIR)/
	ln -sf $(notdir $(SHLIB)) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libjetstream.so
	$(INSTALL) -m 0644 $(STLIB) $(DESTDIR)$(LIBDIR)/
	$(INSTALL) -m 0644 include/jetstream.h $(DESTDIR)$(INCLUDEDIR)/
	$(INSTALL) -m 0644 $(BUILD)/jetstream.pc $(DESTDIR)$(PKGCONFIGDIR)/
ifneq ($(MAN3),)
	$(INSTALL) -d $(DESTDIR)$(MANDIR)/man3
	$(INSTALL) -m 0644 $(MAN3) $(DESTDIR)$(MANDIR)/man3/
endif
ifneq ($(MAN7),)
	$(INSTALL) -d $(DESTDIR)$(MANDIR)/man7
	$(INSTALL) -m 0644 $(MAN7) $(DESTDIR)$(MANDIR)/man7/
endif

# Removes exactly what install put there (directories stay, as is usual).
uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libjetstream.so.$(VERSION) \
	  $(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/libjetstream.so \
	  $(DESTDIR)$(LIBDIR)/libjetstream.a $(DESTDIR)$(INCLUDEDIR)/jetstream.h \
	  $(DESTDIR)$(PKGCONFIGDIR)/jetstream.pc
	rm -f $(MAN3:man/%=$(DESTDIR)$(MANDIR)/%) $(MAN7:man/%=$(DESTDIR)$(MANDIR)/%)

clean:
	rm -rf build build-asan build-ubsan build-tsan build-cov build-abi build-meta

FORCE:

.PHONY: all tests examples bench-build bench deps check unit-check crash-soak ubsan coverage meta-check $(META_TESTS:%=meta-%) \
  asan tsan valgrind abi-lib abi-baseline abi-check demo install uninstall clean FORCE
