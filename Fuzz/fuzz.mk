# Fuzzing (host only): libFuzzer targets in Fuzz/Targets, built with swiftc
# -sanitize=fuzzer,address against the Sources modules; see Fuzz/README.md.
# Included by the top-level Makefile.
#
#   make fuzz             build every target, fuzz each for FUZZ_SECONDS (default 30);
#                         prints executions, coverage and findings; fails on a crash
#   make fuzz-regress     run each target once over Fuzz/corpus/<t> and Fuzz/FailCases/<t>
#                         (no mutation; fast, deterministic); fails on a crash
#   make fuzz-build       build only
#   FUZZ_TARGETS="frame mux-ops" make fuzz    a subset
#
# Nothing here touches the host build (.build) or the release build (.build-cross):
# the Swift modules are compiled again, instrumented, into $(FUZZ_B); mbedTLS too,
# from the same Debian source (3.6) and with the same configuration as the release.

FUZZ_ALL_TARGETS := frame preamble mux-ops mux-rx token options identity formats
FUZZ_TARGETS     ?= $(FUZZ_ALL_TARGETS)
FUZZ_SECONDS     ?= 30
FUZZ_B           := .build-fuzz
FUZZ_SWIFTC      ?= swiftc
FUZZ_CC          ?= clang
FUZZ_SANITIZE    ?= fuzzer,address
FUZZ_MBED_SRC    := $(or $(MBED_SRC),.build-cross/mbedtls-src)
FUZZ_MBED        := $(FUZZ_B)/mbedtls
FUZZ_MBED_LIBS   := $(FUZZ_MBED)/lib/libmbedtls.a $(FUZZ_MBED)/lib/libmbedx509.a $(FUZZ_MBED)/lib/libmbedcrypto.a
FUZZ_SUPPORT     := $(sort $(wildcard Fuzz/Support/*.swift))

# Swift modules in dependency order from Sources/modules.txt (cross/release.mk reads it);
# agent, the executable, is not needed.
FUZZ_MODULES := $(filter-out agent,$(SWIFT_MODULES))
FUZZ_OBJS := $(addprefix $(FUZZ_B)/,$(addsuffix .o,$(FUZZ_MODULES))) $(FUZZ_B)/cshims.o

FUZZ_SWIFTFLAGS = -sanitize=$(FUZZ_SANITIZE) -O -g -parse-as-library -swift-version 5 \
	-I Sources/CShims/include -Xcc -I -Xcc $(FUZZ_MBED)/include -Xcc $(CHACHA_INC) -I $(FUZZ_B) \
	-module-cache-path $(FUZZ_B)/module-cache

.PHONY: fuzz fuzz-build fuzz-regress

fuzz-build: $(addprefix $(FUZZ_B)/fuzz-,$(FUZZ_TARGETS))

fuzz: fuzz-build
	@bash Fuzz/run.sh fuzz $(FUZZ_B) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-regress: fuzz-build
	@bash Fuzz/run.sh regress $(FUZZ_B) 0 $(FUZZ_TARGETS)

# mbedTLS with coverage and ASan instrumentation (so the fuzzer sees inside the
# PEM/DER/X.509 parsers, and ASan checks the buffers we hand them), built with
# the project's configuration like every other build; our ChaCha20/Poly1305,
# P-256 and SHA-256 objects (its ALTs and driver) beside it, instrumented the same way.
FUZZ_CFLAGS := -O1 -g -fsanitize=fuzzer-no-link,address
FUZZ_P256_OBJS := $(FUZZ_B)/alt/p256-p256.o $(FUZZ_B)/alt/p256-psa_random.o
FUZZ_SHA256_OBJS := $(FUZZ_B)/alt/sha256-sha256_x86.o
FUZZ_ALT_OBJS := $(patsubst $(CHACHA_DIR)/%.c,$(FUZZ_B)/alt/chacha-%.o,$(CHACHA_SRCS)) $(FUZZ_P256_OBJS) $(FUZZ_SHA256_OBJS)
$(FUZZ_MBED)/lib/libmbedtls.a: $(FUZZ_MBED_SRC)/include/mbedtls/version.h $(MBED_CONFIG)
	AGENT_P256_OURS=$(P256_OURS) bash cross/build-mbedtls.sh $(FUZZ_MBED_SRC) $(FUZZ_MBED) $(FUZZ_CC) ar \
	  $(FUZZ_CFLAGS) $(CHACHA_INC)
	rm -rf $(FUZZ_B)/module-cache   # C modules compiled against the old headers
$(FUZZ_MBED)/lib/libmbedx509.a $(FUZZ_MBED)/lib/libmbedcrypto.a: $(FUZZ_MBED)/lib/libmbedtls.a
$(FUZZ_B)/alt/p256-%.o: $(P256_DIR)/%.c $(P256_HDRS) $(FUZZ_MBED)/lib/libmbedtls.a
	mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -I $(FUZZ_MBED)/include $(CHACHA_INC) -c $< -o $@
$(FUZZ_B)/alt/sha256-%.o: $(SHA256_DIR)/%.c $(SHA256_HDRS) $(FUZZ_MBED)/lib/libmbedtls.a
	mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -I $(FUZZ_MBED)/include $(SHA256_INC) -c $< -o $@
$(FUZZ_B)/alt/chacha-%.o: $(CHACHA_DIR)/%.c $(CHACHA_HDRS) $(FUZZ_MBED)/lib/libmbedtls.a
	mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -I $(FUZZ_MBED)/include $(CHACHA_INC) -c $< -o $@

$(FUZZ_B)/cshims.o: Sources/CShims/shims.c $(wildcard Sources/CShims/include/*) $(FUZZ_MBED)/lib/libmbedtls.a
	mkdir -p $(FUZZ_B)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -I $(FUZZ_MBED)/include $(CHACHA_INC) -I Sources/CShims/include \
	  -c $< -o $@

# $(call fuzz_module,NAME): one whole-module object and its .swiftmodule.
define fuzz_module
$(FUZZ_B)/$(1).o: $$(shell find Sources/$(1) -name '*.swift') $$(addprefix $(FUZZ_B)/,$$(addsuffix .o,$$(call module_deps,$(1)))) \
		$(FUZZ_B)/cshims.o
	$(FUZZ_SWIFTC) $$(FUZZ_SWIFTFLAGS) -wmo -module-name $(1) -emit-module -emit-module-path $(FUZZ_B)/$(1).swiftmodule \
	  $$$$(find Sources/$(1) -name '*.swift' | sort) -c -o $$@
endef
$(foreach m,$(FUZZ_MODULES),$(eval $(call fuzz_module,$(m))))

# One executable per target: its file, the shared support files, every module.
$(FUZZ_B)/fuzz-%: Fuzz/Targets/%.swift $(FUZZ_SUPPORT) $(FUZZ_OBJS) $(FUZZ_MBED_LIBS) $(FUZZ_ALT_OBJS)
	$(FUZZ_SWIFTC) $(FUZZ_SWIFTFLAGS) -use-ld=lld -module-name FuzzTarget $< $(FUZZ_SUPPORT) \
	  $(FUZZ_OBJS) -Xlinker --start-group $(FUZZ_MBED_LIBS) $(FUZZ_ALT_OBJS) -Xlinker --end-group -lpthread -o $@

# Regenerates Fuzz/corpus (committed; only when a format changes): Fuzz/make-seeds.sh.
.PHONY: fuzz-seeds
fuzz-seeds: fuzz-build
	swift build --product agent
	bash Fuzz/make-seeds.sh $(FUZZ_B) .build/debug/agent $(FUZZ_TARGETS)

# `make clean` leaves this build alone (it is slow to redo and independent).
.PHONY: fuzz-clean
fuzz-clean:
	rm -rf $(FUZZ_B) Fuzz/artifacts
