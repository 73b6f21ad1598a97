# percore — build, run and test. See README.md.
#   make            build the server, the load generator and the test tools
#   make run        install missing packages, build, start on the defaults
#   make test       install missing packages, build, run every test
#   make asan|tsan  sanitizer builds in build-asan/ and build-tsan/
#   make check-layers  includes point only down src/'s layers, no circles

CC      ?= cc
O       ?= build
SAN     ?=
WERROR  ?= -Werror
OPT     ?= -O2
CFLAGS  += -std=gnu11 $(OPT) -g -Wall -Wextra $(WERROR) -Wshadow -Wstrict-prototypes \
           -Wmissing-prototypes -Wno-unused-parameter -D_GNU_SOURCE -Isrc -pthread
LDLIBS  += -pthread -lm

ifeq ($(SAN),asan)
  CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDFLAGS += -fsanitize=address,undefined
endif
ifeq ($(SAN),tsan)
  CFLAGS  += -fsanitize=thread -fno-omit-frame-pointer
  LDFLAGS += -fsanitize=thread
endif

# Optional backends: built when the library is present.
HAVE_URING := $(shell test -e /usr/include/liburing.h && echo 1)
ifeq ($(HAVE_URING),1)
  CFLAGS += -DHAVE_LIBURING
  LDLIBS += -luring
endif
# TLS (-Z) with OpenSSL; without its headers -Z is refused at start-up.
HAVE_OPENSSL := $(shell test -e /usr/include/openssl/ssl.h && echo 1)
ifeq ($(HAVE_OPENSSL),1)
  CFLAGS += -DHAVE_OPENSSL
  LDLIBS += -lssl -lcrypto
endif

# -S (SASL authentication, src/proto/auth_sasl.c): Cyrus SASL, libsasl2-dev.
HAVE_SASL := $(shell test -e /usr/include/sasl/sasl.h && echo 1)
ifeq ($(HAVE_SASL),1)
  CFLAGS += -DHAVE_SASL
  LDLIBS += -lsasl2
endif

SRV_SRCS   := $(filter-out src/server/main.c,$(wildcard src/util/*.c src/server/*.c src/net/*.c src/proto/*.c src/store/*.c))
SRV_OBJS   := $(SRV_SRCS:%.c=$(O)/%.o)
MAIN_OBJ   := $(O)/src/server/main.o
BENCH_SRCS := $(wildcard bench/percore-bench/*.c)
BENCH_OBJS := $(BENCH_SRCS:%.c=$(O)/%.o)
BENCH_LIB_OBJS := $(filter-out $(O)/bench/percore-bench/main.o,$(BENCH_OBJS))
# Unit tests sit in tests/unit/<layer>/ as the code they test sits in src/;
# their binaries stay flat in $(O)/tests/ (tests/run-unit.sh runs them).
UNIT_SRCS  := $(wildcard tests/unit/*/test_*.c)
UNIT_BINS  := $(addprefix $(O)/tests/,$(basename $(notdir $(UNIT_SRCS))))
TOOL_SRCS  := $(wildcard tests/tools/*.c)
TOOL_BINS  := $(TOOL_SRCS:tests/tools/%.c=$(O)/tools/%)

ALL := $(O)/percore $(UNIT_BINS) $(TOOL_BINS)
ifneq ($(BENCH_SRCS),)
  ALL += $(O)/percore-bench
endif
ifneq ($(wildcard bench/floor.c),)
  ALL += $(O)/percore-floor
endif

.PHONY: all run test deps deps-test unit integration asan tsan check-layers clean install uninstall
all: $(ALL)

# Objects also depend on the flags they were built with (FLAGS_STAMP, below).
FLAGS_STAMP := $(O)/.cflags
$(O)/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(O)/percore: $(MAIN_OBJ) $(SRV_OBJS)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(O)/percore-bench: $(BENCH_OBJS)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(O)/percore-floor: $(O)/bench/floor.o
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

# One link rule per unit test (a pattern cannot reach into the layer folder).
# The load generator's tests (tests/unit/bench/) link its objects; all others
# the server's.
define unit_test_rule
$(O)/tests/$(basename $(notdir $(1))): $(O)/$(1:.c=.o) $(if $(filter tests/unit/bench/%,$(1)),$(BENCH_LIB_OBJS),$(SRV_OBJS))
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) $$^ -o $$@ $$(LDLIBS) -lcmocka
endef
$(foreach t,$(UNIT_SRCS),$(eval $(call unit_test_rule,$(t))))

$(O)/tools/%: $(O)/tests/tools/%.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

-include $(shell find $(O) -name '*.d' 2>/dev/null)

# Feature fragments (eBPF programs, install rules, fuzzing) live in mk/.
-include $(wildcard mk/*.mk)

# make run needs only what building and running the server needs; make
# test adds the test tool chain (scripts/deps.sh run|test).
deps:
	@bash scripts/deps.sh run
deps-test:
	@bash scripts/deps.sh test

run: deps
	$(MAKE) $(O)/percore
	./$(O)/percore $(ARGS)

# Includes may only point down src/'s layers (util < store < proto < net < server).
check-layers:
	@bash scripts/check-layers.sh

unit: all
	@bash tests/run-unit.sh $(O)

integration: all
	@bash tests/run-integration.sh $(O)

asan:
	$(MAKE) O=build-asan SAN=asan OPT=-O1 all
tsan:
	$(MAKE) O=build-tsan SAN=tsan OPT=-O1 CC=clang all   # gcc rejects fences under TSan

test: deps-test
	@bash tests/run-all.sh

clean:
	rm -rf build build-asan build-tsan build-fuzz

# Rebuild everything when the compiler or its flags change: a first build
# made before `make deps` installed liburing-dev (or libbpf, OpenSSL, SASL)
# would otherwise keep objects compiled without that backend.
ifeq ($(filter clean,$(MAKECMDGOALS)),)
$(shell mkdir -p $(O) && (echo '$(CC) $(CFLAGS)' | cmp -s - $(FLAGS_STAMP) || echo '$(CC) $(CFLAGS)' > $(FLAGS_STAMP)))
endif
