# mk/fuzz.mk — libFuzzer targets (included by Makefile).
#
#   make fuzz                       build every fuzz/fuzz_*.c into build-fuzz/
#   make fuzz-run [FUZZ_SECONDS=30] run each target that long on a scratch copy
#                                   of fuzz/corpus/<target>/ plus the inputs in
#                                   fuzz/regressions/<target>/; fails on a crash
#   make fuzz-regress               replay only the regression inputs (seconds)
#
# The server's sources are rebuilt with clang and -fsanitize=fuzzer-no-link,
# address,undefined; each target links them (without main.c) and supplies
# its own sink in place of the connection. A crash leaves its input in
# build-fuzz/artifacts/<target>/: copy it to fuzz/regressions/<target>/
# once fixed, so it is replayed by every later run.

FUZZ_CC      ?= clang-14
FUZZ_O       := build-fuzz
FUZZ_SECONDS ?= 30
FUZZ_FLAGS   := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                -fno-omit-frame-pointer
FUZZ_CFLAGS  := -std=gnu11 -O1 -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
                -Wmissing-prototypes -Wno-unused-parameter -D_GNU_SOURCE -Isrc -pthread \
                $(FUZZ_FLAGS) $(if $(filter 1,$(HAVE_URING)),-DHAVE_LIBURING) \
                $(if $(filter 1,$(HAVE_SASL)),-DHAVE_SASL)
# fuzz_sasl needs Cyrus SASL's headers (libsasl2-dev), as -S does.
FUZZ_SRCS    := $(filter-out $(if $(filter 1,$(HAVE_SASL)),,fuzz/fuzz_sasl.c), \
                  $(wildcard fuzz/fuzz_*.c))
FUZZ_BINS    := $(FUZZ_SRCS:fuzz/%.c=$(FUZZ_O)/%)
FUZZ_LIBOBJS := $(SRV_SRCS:%.c=$(FUZZ_O)/obj/%.o)

.PHONY: fuzz fuzz-run fuzz-regress

fuzz: $(FUZZ_BINS)

# Keep the objects between builds (make would delete them as intermediates).
.SECONDARY: $(FUZZ_LIBOBJS) $(FUZZ_SRCS:%.c=$(FUZZ_O)/obj/%.o)

# As for build/ (Makefile's FLAGS_STAMP): objects made with other flags (a
# build-fuzz/ from before SASL was compiled in) are rebuilt, not kept.
FUZZ_STAMP   := $(FUZZ_O)/.cflags
ifneq ($(filter fuzz%,$(MAKECMDGOALS)),)
$(shell mkdir -p $(FUZZ_O) && (echo '$(FUZZ_CC) $(FUZZ_CFLAGS)' | cmp -s - $(FUZZ_STAMP) || echo '$(FUZZ_CC) $(FUZZ_CFLAGS)' > $(FUZZ_STAMP)))
endif
$(FUZZ_STAMP):
	@mkdir -p $(FUZZ_O) && echo '$(FUZZ_CC) $(FUZZ_CFLAGS)' > $@

$(FUZZ_O)/obj/%.o: %.c $(FUZZ_STAMP)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(FUZZ_O)/fuzz_%: $(FUZZ_O)/obj/fuzz/fuzz_%.o $(FUZZ_LIBOBJS)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer $^ -o $@ $(LDLIBS)

-include $(shell find $(FUZZ_O)/obj -name '*.d' 2>/dev/null)

# Each target: a scratch corpus (seeds + regressions + what earlier runs
# found), then a bounded run. Exit status of the fuzzer decides.
fuzz-run: fuzz
	@set -e; for bin in $(FUZZ_BINS); do \
	    t=$$(basename $$bin); \
	    work=$(FUZZ_O)/corpus/$$t; art=$(FUZZ_O)/artifacts/$$t/; \
	    mkdir -p $$work $$art; \
	    for d in fuzz/corpus/$$t fuzz/regressions/$$t; do \
	        [ -d $$d ] && cp -f $$d/* $$work/ 2>/dev/null || true; \
	    done; \
	    echo "fuzz: $$t for $(FUZZ_SECONDS)s"; \
	    ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
	    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	    $$bin -max_total_time=$(FUZZ_SECONDS) -max_len=16384 -timeout=10 -rss_limit_mb=2048 \
	        -print_final_stats=1 -artifact_prefix=$$art $$work \
	        $$( [ -f fuzz/$$t.dict ] && echo -dict=fuzz/$$t.dict ) \
	        2>$(FUZZ_O)/$$t.log || { tail -60 $(FUZZ_O)/$$t.log; echo "fuzz: $$t FAILED"; exit 1; }; \
	    grep -E '^stat::number_of_executed_units|cov:' $(FUZZ_O)/$$t.log | tail -2; \
	done

fuzz-regress: fuzz
	@set -e; for bin in $(FUZZ_BINS); do \
	    t=$$(basename $$bin); d=fuzz/regressions/$$t; \
	    if [ -d $$d ] && [ -n "$$(ls $$d)" ]; then \
	        echo "fuzz: replaying $$d"; $$bin $$d/* >/dev/null 2>&1 || { $$bin $$d/*; exit 1; }; \
	    fi; \
	done
