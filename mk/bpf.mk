# eBPF steering (src/bpf): the SK_REUSEPORT program is compiled with clang's
# BPF target and embedded in the server as a libbpf skeleton. Without clang,
# bpftool or libbpf the server builds without it (classic BPF and kernel
# hash steering remain).
BPF_CLANG ?= clang
HAVE_BPF := $(shell test -e /usr/include/bpf/libbpf.h && command -v $(BPF_CLANG) >/dev/null && \
              command -v bpftool >/dev/null && echo 1)

ifeq ($(HAVE_BPF),1)
BPF_OBJ  := $(O)/bpf/steer.bpf.o
BPF_SKEL := $(O)/bpf/steer.skel.h
BPF_ARCH_INC := /usr/include/$(shell $(CC) -print-multiarch 2>/dev/null)
CFLAGS += -DHAVE_BPF -I$(O)/bpf
LDLIBS += -lbpf -lelf -lz

# -ffreestanding: clang's own stdint.h, so util/hash.h compiles unchanged.
$(BPF_OBJ): src/bpf/steer.bpf.c src/util/hash.h
	@mkdir -p $(dir $@)
	$(BPF_CLANG) -g -O2 -target bpf -ffreestanding -Isrc -I$(BPF_ARCH_INC) -c $< -o $@

$(BPF_SKEL): $(BPF_OBJ)
	bpftool gen skeleton $< name steer_bpf > $@.tmp && mv $@.tmp $@

$(O)/src/net/steer.o: $(BPF_SKEL)
endif
