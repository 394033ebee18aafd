# SPDX-License-Identifier: MIT
# xmesh build. `make` builds everything into build/; `make test` runs every
# test on the real kernel (root); `make demo` and `make bench-*` are in
# scripts/. Files are found by wildcard: adding a .bpf.c, a user/<tool>/*.c or
# a tests/unit/test_*.c needs no edit here.

CLANG ?= clang
CC ?= gcc
BPFTOOL ?= bpftool
ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo unknown)

B := build
BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(B)/bpf/%.bpf.o,$(BPF_SRCS))
SKELS := $(patsubst bpf/%.bpf.c,$(B)/skel/%.skel.h,$(BPF_SRCS))

LIB_SRCS := $(wildcard user/lib/*.c)
LIB_OBJS := $(patsubst %.c,$(B)/%.o,$(LIB_SRCS))
LIBXMESH := $(B)/libxmesh.a

TOOLS := xmesh-agent xmeshctl xmesh-cni
tool_dir = $(patsubst xmesh-%,%,$(patsubst xmeshctl,ctl,$(1)))
tool_objs = $(patsubst %.c,$(B)/%.o,$(wildcard user/$(call tool_dir,$(1))/*.c))
BINS := $(foreach t,$(TOOLS),$(if $(wildcard user/$(call tool_dir,$(t))/*.c),$(B)/bin/$(t)))

# Test tools: tests/tools/NAME.c or a directory tests/tools/NAME/*.c, on the
# shared test library tests/lib (tests/lib/README.md).
TESTLIB := $(B)/libxmtest.a
TESTLIB_OBJS := $(patsubst %.c,$(B)/%.o,$(wildcard tests/lib/*.c))
TEST_TOOL_SRCS := $(wildcard tests/tools/*.c)
TEST_TOOL_DIRS := $(sort $(patsubst %/,%,$(dir $(wildcard tests/tools/*/*.c))))
TEST_TOOLS := $(patsubst tests/tools/%.c,$(B)/tests/%,$(TEST_TOOL_SRCS)) \
	$(patsubst tests/tools/%,$(B)/tests/%,$(TEST_TOOL_DIRS))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(B)/tests/unit/%,$(UNIT_SRCS))

CFLAGS ?= -O2 -g
XM_CFLAGS := $(CFLAGS) -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter \
	-Wno-missing-field-initializers -MMD -MP -Iinclude -I$(B)/skel -I$(B) -Iuser/lib -Itests
LDLIBS := -lbpf -lelf -lz -ljansson -lmnl -lmicrohttpd -lcurl -lcrypto -lm -lpthread
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror \
	-Wno-unused-function -Iinclude -I$(B) -Ibpf -MMD -MP

ifeq ($(V),1)
Q :=
msg :=
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

.DELETE_ON_ERROR:
.SECONDARY:
.PHONY: FORCE all deps test test-quick test-unit test-integration k8s-build test-kernels demo bench clean install \
	uninstall fuzz soak-redirect

all: deps $(BINS) $(TEST_TOOLS) $(B)/tests/xmesh-cni-crash

deps:
	$(Q)scripts/install-deps.sh

$(B)/vmlinux.h:
	$(call msg,GEN,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@

$(B)/bpf/%.bpf.o: bpf/%.bpf.c $(B)/vmlinux.h
	$(call msg,BPF,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(B)/skel/%.skel.h: $(B)/bpf/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(BPFTOOL) gen skeleton $< name xm_$(subst -,_,$*) > $@

# User objects include skeletons; the first build needs them all in place,
# later builds follow the -MMD dependencies.
$(B)/%.o: %.c | $(SKELS) $(B)/version.h
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(XM_CFLAGS) -c $< -o $@

# The version string lives in one generated header, rewritten only when the
# version changes, so that every object that prints it is rebuilt then.
$(B)/version.h: FORCE
	$(Q)mkdir -p $(@D)
	$(Q)echo '#define XM_VERSION "$(VERSION)"' > $@.tmp
	$(Q)cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@

FORCE:

$(LIBXMESH): $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

.SECONDEXPANSION:
$(B)/bin/%: $$(call tool_objs,%) $(LIBXMESH)
	$(call msg,LINK,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(XM_CFLAGS) $^ $(LDLIBS) -o $@

$(TESTLIB): $(TESTLIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(B)/tests/unit/%: $(B)/tests/unit/%.o $(TESTLIB) $(LIBXMESH)
	$(call msg,LINK,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(XM_CFLAGS) $^ $(LDLIBS) -lcmocka -o $@

$(B)/tests/%: $(B)/tests/tools/%.o $(TESTLIB) $(LIBXMESH)
	$(call msg,LINK,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(XM_CFLAGS) $^ $(LDLIBS) -o $@

$(patsubst tests/tools/%,$(B)/tests/%,$(TEST_TOOL_DIRS)): \
$(B)/tests/%: $$(addsuffix .o,$$(basename $$(addprefix $(B)/,$$(wildcard tests/tools/$$*/*.c)))) \
	$(TESTLIB) $(LIBXMESH)
	$(call msg,LINK,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(XM_CFLAGS) $^ $(LDLIBS) -o $@

# xmesh-cni with its crash points compiled in (user/cni/cmd.c), for
# tests/integration/test_cni.sh only: the shipped plugin has no test hook.
CNI_CRASH_OBJS := $(patsubst user/cni/%.c,$(B)/tests/cni-crash/%.o,$(wildcard user/cni/*.c))
$(B)/tests/cni-crash/%.o: user/cni/%.c | $(SKELS) $(B)/version.h
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(XM_CFLAGS) -DXM_CNI_TEST_HOOKS -c $< -o $@
$(B)/tests/xmesh-cni-crash: $(CNI_CRASH_OBJS) $(LIBXMESH)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(XM_CFLAGS) $^ $(LDLIBS) -o $@

test: all $(UNIT_BINS) k8s-build
	$(Q)tests/run.sh

# Everything but the tests on the Kubernetes test cluster (they say "skipped").
test-quick: all $(UNIT_BINS)
	$(Q)XM_QUICK=1 tests/run.sh

test-unit: all $(UNIT_BINS)
	$(Q)XM_ONLY=unit tests/run.sh

test-integration: all k8s-build
	$(Q)XM_ONLY=integration tests/run.sh

# The Kubernetes test cluster's binaries (Go, upstream modules; a no-op once
# built), before the tests so that its progress shows. Not when XM_QUICK=1 or
# when XM_TEST selects no test_k8s_* test.
k8s-build:
	$(Q)[ "$(XM_QUICK)" = 1 ] || ! ls tests/integration/test_k8s_*.sh | grep -q -e '$(XM_TEST)' || \
		scripts/k8s-build.sh

# Kernel matrix (docs/kernels.md): the same build on Debian 12's 6.1 and 6.12
# under qemu, and on this kernel. KERNELS="6.1" to pick.
test-kernels: all $(UNIT_BINS)
	$(Q)scripts/kernels/run.sh $(KERNELS)

demo: all
	$(Q)scripts/demo.sh

bench-%: all
	$(Q)scripts/bench/$*.sh

bench: all
	$(Q)for b in scripts/bench/*.sh; do $$b || exit 1; done

# Minutes, not part of make test (DURATION, THREADS, RESTART: scripts/soak-redirect.sh).
soak-redirect: all
	$(Q)scripts/soak-redirect.sh

fuzz: deps $(LIBXMESH)
	$(Q)$(MAKE) -f tests/fuzz/Makefile

install: all
	install -d $(DESTDIR)/usr/local/bin $(DESTDIR)/opt/cni/bin
	install -m 0755 $(B)/bin/xmesh-agent $(B)/bin/xmeshctl $(DESTDIR)/usr/local/bin/
	[ ! -e $(B)/bin/xmesh-cni ] || install -m 0755 $(B)/bin/xmesh-cni $(DESTDIR)/opt/cni/bin/
	install -m 0755 deploy/install-cni.sh deploy/uninstall-node.sh $(DESTDIR)/usr/local/bin/
	install -D -m 0644 deploy/xmesh-agent.service $(DESTDIR)/usr/local/lib/systemd/system/xmesh-agent.service
	install -d $(DESTDIR)/usr/local/share/man/man8 $(DESTDIR)/usr/local/share/bash-completion/completions
	install -m 0644 docs/man/*.8 $(DESTDIR)/usr/local/share/man/man8/
	install -m 0644 deploy/bash-completion/xmesh $(DESTDIR)/usr/local/share/bash-completion/completions/xmeshctl
	ln -sf xmeshctl $(DESTDIR)/usr/local/share/bash-completion/completions/xmesh-agent
	ln -sf xmeshctl $(DESTDIR)/usr/local/share/bash-completion/completions/xmesh-cni

# Takes the datapath off this host first (it drains: redirected connections
# keep working until they close, bounded by DRAIN_TIMEOUT), then the files.
PIN_ROOT ?= /sys/fs/bpf/xmesh
XMESH_CGROUP ?= $(shell awk '$$3=="cgroup2"{print $$2; exit}' /proc/mounts)
DRAIN_TIMEOUT ?= 60
uninstall:
	[ ! -x $(DESTDIR)/usr/local/bin/xmesh-agent ] || $(DESTDIR)/usr/local/bin/xmesh-agent uninstall \
		--cgroup $(XMESH_CGROUP) --pin-root $(PIN_ROOT) --drain-timeout $(DRAIN_TIMEOUT)
	rm -f $(DESTDIR)/usr/local/bin/xmesh-agent $(DESTDIR)/usr/local/bin/xmeshctl \
		$(DESTDIR)/usr/local/bin/install-cni.sh $(DESTDIR)/usr/local/bin/uninstall-node.sh \
		$(DESTDIR)/usr/local/lib/systemd/system/xmesh-agent.service

clean:
	rm -rf $(B)

-include $(shell find $(B) -name '*.d' 2>/dev/null)
