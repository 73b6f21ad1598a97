# mk/cachesim.mk — the offline cache simulator (bench/cachesim), included by
# the Makefile. It links the server's store objects, so "percore" in its
# tables is the store's actual eviction. Its unit tests
# (tests/unit/cachesim/) link the same objects (their link rule comes from
# the Makefile; the extra prerequisites are added here).

CACHESIM_SRCS    := $(wildcard bench/cachesim/*.c)
CACHESIM_OBJS    := $(CACHESIM_SRCS:%.c=$(O)/%.o)
CACHESIM_LIBOBJS := $(filter-out $(O)/bench/cachesim/main.o,$(CACHESIM_OBJS))
STORE_OBJS       := $(filter $(O)/src/store/% $(O)/src/util/%,$(SRV_OBJS))

$(O)/cachesim: $(CACHESIM_OBJS) $(STORE_OBJS)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

all: $(O)/cachesim

$(foreach t,$(wildcard tests/unit/cachesim/test_*.c),$(eval $(O)/tests/$(basename $(notdir $(t))): $(CACHESIM_LIBOBJS)))
