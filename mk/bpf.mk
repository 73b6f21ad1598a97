# eBPF steering (src/bpf): the SK_REUSEPORT program (steer) and the XDP
# program (xdp_steer) are compiled with clang's BPF target and embedded in
# the server as libbpf skeletons. Without clang, bpftool or libbpf the
# server builds without them (classic BPF and kernel hash steering remain).
BPF_CLANG ?= clang
HAVE_BPF := $(shell test -e /usr/include/bpf/libbpf.h && command -v $(BPF_CLANG) >/dev/null && \
              command -v bpftool >/dev/null && echo 1)

ifeq ($(HAVE_BPF),1)
BPF_PROGS := steer xdp_steer
BPF_SKELS := $(BPF_PROGS:%=$(O)/bpf/%.skel.h)
BPF_ARCH_INC := /usr/include/$(shell $(CC) -print-multiarch 2>/dev/null)
CFLAGS += -DHAVE_BPF -I$(O)/bpf
LDLIBS += -lbpf -lelf -lz

# -ffreestanding: clang's own stdint.h, so util/hash.h compiles unchanged.
$(O)/bpf/%.bpf.o: src/bpf/%.bpf.c $(wildcard src/bpf/*.h) src/util/hash.h
	@mkdir -p $(dir $@)
	$(BPF_CLANG) -g -O2 -target bpf -ffreestanding -Isrc -I$(BPF_ARCH_INC) -c $< -o $@

$(O)/bpf/%.skel.h: $(O)/bpf/%.bpf.o
	bpftool gen skeleton $< name $(subst .,_,$*)_bpf > $@.tmp && mv $@.tmp $@

.SECONDARY: $(BPF_PROGS:%=$(O)/bpf/%.bpf.o)
$(O)/src/net/steer.o: $(O)/bpf/steer.skel.h
$(O)/src/net/xdp_steer.o: $(O)/bpf/xdp_steer.skel.h
endif
