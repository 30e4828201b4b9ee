# Static Embedded Swift release builds of agent, one per target architecture.
# Included by the top-level Makefile; `make release` builds all three.
#
# Per target: mbedTLS 3.6 LTS (Debian's source, fetched at build time) compiled
# with cross/mbedtls_config.h and cross/crypto_config.h by the cross gcc against musl; CShims compiled the same
# way; each Swift module compiled whole-module (-wmo -Osize) in Embedded mode
# against the same headers; linked statically with lld; stripped.
#
# Each target has its own build folder and clang module cache: a cache shared
# between targets or configurations silently gives Swift the wrong C struct
# layouts (found the hard way: wrong field offsets, no compiler error).

SWIFTC      ?= swiftc
SWIFT_TC    := $(abspath $(dir $(shell command -v $(SWIFTC)))/..)
CROSS_DIR   := .build-cross
MBED_SRC    := $(CROSS_DIR)/mbedtls-src
# What every mbedTLS build depends on: our configuration and the build script.
MBED_CONFIG := cross/mbedtls_config.h cross/crypto_config.h cross/build-mbedtls.sh $(lastword $(MAKEFILE_LIST))
# Every C object of a release build: no unwind tables. Nothing in agent unwinds
# (no C++, Swift errors are return values, a trap ends the process), and the
# tables were 22 KB of .eh_frame in the aarch64 binary (mbedTLS's mostly).
RELEASE_CFLAGS := -fno-asynchronous-unwind-tables -fno-unwind-tables
# Swift modules in dependency order, and each one's Swift dependencies, from the one list
# (Sources/modules.txt) that Package.swift and Fuzz/fuzz.mk read too.
MODULES_FILE  := Sources/modules.txt
SWIFT_MODULES := $(shell sed -n 's/^\([A-Za-z0-9]*\):.*/\1/p' $(MODULES_FILE))
module_deps    = $(filter-out CShims,$(shell sed -n 's/^$(1):\(.*\)/\1/p' $(MODULES_FILE)))

# --- per-target settings ----------------------------------------------------
x86_64_SWIFT_TRIPLE := x86_64-unknown-linux-gnu
x86_64_CC           := gcc
x86_64_STRIP        := strip
x86_64_MUSL         := x86_64-linux-musl
x86_64_FLAGS        :=
x86_64_SWIFTOPT     :=
x86_64_RUN          :=

aarch64_SWIFT_TRIPLE := aarch64-none-none-elf
aarch64_CC           := aarch64-linux-gnu-gcc
aarch64_STRIP        := aarch64-linux-gnu-strip
aarch64_MUSL         := aarch64-linux-musl
aarch64_FLAGS        :=
# The devices' binaries (512 KiB budget): no LLVM inlining beyond what Swift's own
# optimizer decided (about 19 KB less on aarch64; the hot paths are C: ciphers, P-256).
aarch64_SWIFTOPT     := -Xllvm -inline-threshold=0
aarch64_RUN          := qemu-aarch64-static

# armv7 hard-float (Debian armhf baseline: VFPv3-D16, no NEON), Thumb-2.
armv7_SWIFT_TRIPLE := armv7-none-none-eabi
armv7_CC           := arm-linux-gnueabihf-gcc
armv7_STRIP        := arm-linux-gnueabihf-strip
armv7_MUSL         := arm-linux-musleabihf
armv7_FLAGS        := -mfloat-abi=hard -mfpu=vfpv3-d16 -mthumb
armv7_SWIFTOPT     := -Xllvm -inline-threshold=0
armv7_RUN          := qemu-arm-static

RELEASE_ARCHES := x86_64 aarch64 armv7
RELEASE_BINS   := $(addprefix build/agent-,$(RELEASE_ARCHES))

# Our ChaCha20/Poly1305 (cross/chachapoly/README.md) replaces mbedTLS's through
# MBEDTLS_CHACHA20_ALT/POLY1305_ALT in cross/mbedtls_config.h: its alt headers must be
# on every include path that reads mbedTLS headers, its objects in every link.
CHACHA_DIR  := cross/chachapoly
CHACHA_SRCS := $(wildcard $(CHACHA_DIR)/*.c)
CHACHA_HDRS := $(wildcard $(CHACHA_DIR)/*.h)
CHACHA_INC  := -I$(CURDIR)/$(CHACHA_DIR)

# Our P-256 (cross/p256/README.md) behind mbedTLS's PSA driver glue for p256-m
# (MBEDTLS_PSA_P256M_DRIVER_ENABLED): build-mbedtls.sh takes p256-m's own core
# out of libmbedcrypto.a (P256_OURS=1) and these objects go into every link.
# x86_64 (room in its budget) builds it for speed, the devices' targets for size.
# p256.c's defaults then choose per target (cross/p256/README.md): the 26 KB
# fixed-base window table on x86_64 and armv7, the 2 KB comb on aarch64 (-Os:
# no room); divsteps inversions on x86_64 only.
# Our SHA-256 compression function (cross/sha256/README.md) on x86_64 only:
# cross/mbedtls_config.h defines MBEDTLS_SHA256_PROCESS_ALT there, and mbedTLS's
# sha256.c calls it; the ARM targets keep mbedTLS's code (no objects).
SHA256_DIR    := cross/sha256
SHA256_HDRS   := $(wildcard $(SHA256_DIR)/*.h)
SHA256_INC    := -I$(CURDIR)/$(SHA256_DIR)
SHA256_ARCHES := x86_64

P256_DIR  := cross/p256
P256_OURS := 1
P256_HDRS := $(wildcard $(P256_DIR)/*.h)
x86_64_P256OPT  := -O2
aarch64_P256OPT := -Os
armv7_P256OPT   := -Os

SWIFT_SOURCES  = $(shell find Sources -name '*.swift' | sort)
empty :=
space := $(empty) $(empty)
CSHIMS_SOURCES = $(wildcard Sources/CShims/*.c Sources/CShims/include/*.h Sources/CShims/include/*.modulemap)

.PHONY: release mbedtls-source
release: $(RELEASE_BINS)

# The git commit for `agent --version`: a one-line C file, rewritten only when
# the commit (or the work tree's cleanliness) changes, so a new commit relinks
# and recompiles nothing else. AGENT_COMMIT=... overrides it (builds outside git).
AGENT_COMMIT ?= $(shell c=$$(git rev-parse --short=12 HEAD 2>/dev/null) || c=unknown; \
  [ "$$c" = unknown ] || git diff --quiet HEAD -- Sources cross Package.swift 2>/dev/null || c=$$c-dirty; echo $$c)
BUILDINFO_C := $(CROSS_DIR)/buildinfo.c
.PHONY: FORCE
$(BUILDINFO_C): FORCE
	@mkdir -p $(@D)
	@printf 'const char *agent_build_commit(void) { return "%s"; }\n' '$(AGENT_COMMIT)' > $@.tmp
	@if cmp -s $@.tmp $@; then rm $@.tmp; else mv $@.tmp $@; fi

mbedtls-source: $(MBED_SRC)/include/mbedtls/version.h
$(MBED_SRC)/include/mbedtls/version.h: cross/fetch-mbedtls.sh
	bash cross/fetch-mbedtls.sh $(MBED_SRC)
	touch $@

# $(call release_rules,ARCH)
define release_rules
$(1)_B     := $(CROSS_DIR)/$(1)
$(1)_MBED  := $(CROSS_DIR)/$(1)/mbedtls
$(1)_GCCINC = $$(shell $$($(1)_CC) -print-file-name=include)
$(1)_MUSLINC := /usr/include/$$($(1)_MUSL)
$(1)_MUSLLIB := /usr/lib/$$($(1)_MUSL)
$(1)_CCX    = $$($(1)_CC) -specs $$($(1)_MUSLLIB)/musl-gcc.specs $$($(1)_FLAGS) $(RELEASE_CFLAGS)

# mbedTLS with the project's config, for this target.
$$($(1)_MBED)/lib/libmbedtls.a: $(MBED_SRC)/include/mbedtls/version.h $(MBED_CONFIG)
	AGENT_P256_OURS=$(P256_OURS) bash cross/build-mbedtls.sh $(MBED_SRC) $$($(1)_MBED) "$$($(1)_CCX)" \
	  $$(patsubst %gcc,%ar,$$($(1)_CC)) -Os -ffunction-sections -fdata-sections $(CHACHA_INC)
	rm -rf $$($(1)_B)/module-cache   # C modules compiled against the old headers

$$($(1)_B)/cshims.o: $(CSHIMS_SOURCES) $$($(1)_MBED)/lib/libmbedtls.a
	mkdir -p $$($(1)_B)
	$$($(1)_CCX) -Os -ffunction-sections -fdata-sections -I $$($(1)_MBED)/include -I Sources/CShims/include $(CHACHA_INC) \
	  -c Sources/CShims/shims.c -o $$@

$$($(1)_B)/buildinfo.o: $(BUILDINFO_C)
	mkdir -p $$($(1)_B)
	$$($(1)_CCX) -Os -c $$< -o $$@

$(1)_SWIFTFLAGS = -enable-experimental-feature Embedded -wmo -Osize -target $$($(1)_SWIFT_TRIPLE) \
	  -enable-experimental-feature Extern -D AGENT_BUILD_COMMIT \
	  -Xfrontend -function-sections -Xllvm -enable-machine-outliner=always $$($(1)_SWIFTOPT) \
	  -Xcc -nostdinc -Xcc -isystem -Xcc $$($(1)_GCCINC) -Xcc -isystem -Xcc $$($(1)_MUSLINC) \
	  -Xcc -I -Xcc $$($(1)_MBED)/include -Xcc $(CHACHA_INC) $$(addprefix -Xcc ,$$($(1)_FLAGS)) \
	  -I Sources/CShims/include -I $$($(1)_B) -module-cache-path $$($(1)_B)/module-cache \
	  -parse-as-library -swift-version 5

# All Swift sources as ONE whole-program module (-wmo): the modules' own imports
# are dropped and everything is optimized together, so each generic
# specialization exists once and dead code goes (about 8 KB smaller than one
# object per module). The host build (SwiftPM) still compiles the modules
# separately and so keeps checking their dependency direction.
$$($(1)_B)/swift.stamp: $$(SWIFT_SOURCES) $(MODULES_FILE) cross/single-module.sh $(CSHIMS_SOURCES) $$($(1)_MBED)/lib/libmbedtls.a
	bash cross/single-module.sh $$($(1)_B)/swift-src
	# swiftc keeps an existing object whose IR hash matches, and -Xllvm options are not
	# part of that hash: start from no object, so a flag change always takes effect.
	rm -f $$($(1)_B)/agent-all.o
	$(SWIFTC) $$($(1)_SWIFTFLAGS) -module-name agent $$($(1)_B)/swift-src/*.swift -c -o $$($(1)_B)/agent-all.o
	touch $$@

build/agent-$(1): $$($(1)_B)/swift.stamp $$($(1)_B)/cshims.o $$($(1)_B)/buildinfo.o
	mkdir -p build
	$$($(1)_CCX) -static -fuse-ld=lld -B$(SWIFT_TC)/bin -Wl,--no-dynamic-linker -Wl,--gc-sections -Wl,--icf=all \
	  $$($(1)_B)/agent-all.o $$($(1)_B)/cshims.o $$($(1)_B)/buildinfo.o $$($(1)_CHACHA_OBJS) $$($(1)_P256_OBJS) $$($(1)_SHA256_OBJS) \
	  $$($(1)_MBED)/lib/libmbedtls.a $$($(1)_MBED)/lib/libmbedx509.a $$($(1)_MBED)/lib/libmbedcrypto.a \
	  $(SWIFT_TC)/lib/swift/embedded/$$($(1)_SWIFT_TRIPLE)/libswiftUnicodeDataTables.a -lm \
	  -o $$@.unstripped
	$$($(1)_STRIP) -o $$@ $$@.unstripped
	@if [ "$(1)" = armv7 ]; then \
	  for o in $$($(1)_B)/*.o; do \
	    readelf -A $$$$o | grep -q 'Tag_ABI_VFP_args: VFP registers' || { echo "armv7: $$$$o is not hard-float" >&2; exit 1; }; \
	  done; \
	  readelf -A $$@ | grep -q 'Tag_ABI_VFP_args: VFP registers' || { echo "armv7: agent-armv7 is not hard-float" >&2; exit 1; }; \
	fi
endef

$(foreach a,$(RELEASE_ARCHES),$(eval $(call release_rules,$(a))))

# $(call chacha_rules,ARCH): our ChaCha20/Poly1305 objects for this target,
# compiled like cshims.o (at -O2: this is the hot path of every record).
define chacha_rules
$(1)_CHACHA_OBJS := $$(patsubst $(CHACHA_DIR)/%.c,$$($(1)_B)/chacha-%.o,$(CHACHA_SRCS))
$$($(1)_B)/chacha-%.o: $(CHACHA_DIR)/%.c $(CHACHA_HDRS) $$($(1)_MBED)/lib/libmbedtls.a
	mkdir -p $$(@D)
	$$($(1)_CCX) -O2 -ffunction-sections -fdata-sections -I $$($(1)_MBED)/include $(CHACHA_INC) -c $$< -o $$@
$$($(1)_MBED)/lib/libmbedtls.a: $(CHACHA_HDRS)
build/agent-$(1): $$($(1)_CHACHA_OBJS)
endef

$(foreach a,$(RELEASE_ARCHES),$(eval $(call chacha_rules,$(a))))


# $(call p256_rules,ARCH)
define p256_rules
$(1)_P256_OBJS := $$($(1)_B)/p256-p256.o $$($(1)_B)/p256-psa_random.o
$$($(1)_B)/p256-%.o: $(P256_DIR)/%.c $(P256_HDRS) $$($(1)_MBED)/lib/libmbedtls.a
	mkdir -p $$(@D)
	$$($(1)_CCX) $$($(1)_P256OPT) -ffunction-sections -fdata-sections -I $$($(1)_MBED)/include $(CHACHA_INC) -c $$< -o $$@
build/agent-$(1): $$($(1)_P256_OBJS)
endef

$(foreach a,$(RELEASE_ARCHES),$(eval $(call p256_rules,$(a))))

# $(call sha256_rules,ARCH): our SHA-256 object for this target, at -O2.
define sha256_rules
$(1)_SHA256_OBJS := $$($(1)_B)/sha256-sha256_x86.o
$$($(1)_B)/sha256-%.o: $(SHA256_DIR)/%.c $(SHA256_HDRS) $$($(1)_MBED)/lib/libmbedtls.a
	mkdir -p $$(@D)
	$$($(1)_CCX) -O2 -ffunction-sections -fdata-sections -I $$($(1)_MBED)/include $(SHA256_INC) -c $$< -o $$@
build/agent-$(1): $$($(1)_SHA256_OBJS)
endef

$(foreach a,$(SHA256_ARCHES),$(eval $(call sha256_rules,$(a))))
