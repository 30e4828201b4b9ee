# Tests and benchmark of our X25519 (cross/x25519/README.md). Included by the
# top-level Makefile after cross/release.mk, whose per-target variables
# (<arch>_CC, _CCX, _B, _MBED, _X25519_OBJS, _CHACHA_OBJS) it uses: the
# programs below link the very objects and mbedTLS libraries that go into
# build/agent-<arch>.
#
#   make test-x25519   RFC 7748 vectors, small-order points, differential tests
#                      against mbedTLS's own curve25519 code, our ALT
#                      mbedtls_ecdh_* against mbedTLS's (curve25519, and the
#                      fallback on secp256r1/secp384r1) for x86_64 natively,
#                      aarch64 and armv7 under qemu-user; then TLS interop with
#                      openssl s_server (X25519 forced, and P-256); with
#                      valgrind installed, a constant-time check (memcheck);
#                      ends with "x25519: N passed, M failed".
#                      X25519_MILLION=1 adds RFC 7748's 1,000,000 iterations
#                      (x86_64 only, about 30 s).
#   make bench-x25519  scalar multiplications per second, ours vs mbedTLS, on
#                      x86_64; instructions per multiplication under qemu for
#                      aarch64 and armv7

X25519_T := $(X25519_DIR)/test
X25519_REF_SRCS := bignum constant_time ecp ecp_curves ecdh platform_util

.PHONY: test-x25519 bench-x25519

# $(call x25519_test_rules,ARCH)
define x25519_test_rules
$(1)_XT := $$($(1)_B)/x25519-test
$(1)_XT_LINK = $$($(1)_CCX) -static -fuse-ld=lld -B$(SWIFT_TC)/bin -Wl,--no-dynamic-linker
$(1)_XT_REF := $$(addprefix $$($(1)_B)/x25519-test/ref-,$(addsuffix .o,$(X25519_REF_SRCS)) wrap.o)
# 64-bit targets also test the 32-bit radix (x25519.c with -DAGENT_X25519_FE32,
# its functions renamed fe32_*) against their own.
$(1)_XT_FE32 := $(if $(filter armv7,$(1)),,$$($(1)_B)/x25519-test/fe32.o)
$(1)_XT_CFLAGS := $(if $(filter armv7,$(1)),,-DX25519_TEST_FE32)

# The reference: mbedTLS's own bignum/ECP/ECDH code without our ALT
# (test/ref_config.h), and test/ref.c, linked into one relocatable object
# whose mbedtls_* symbols are then all renamed ref_mbedtls_*; nothing of it
# may still refer to an mbedtls_* symbol (which would be the release's).
$$($(1)_XT)/ref-%.o: $(MBED_SRC)/library/%.c $(X25519_T)/ref_config.h $(MBED_SRC)/include/mbedtls/version.h
	mkdir -p $$(@D)
	$$($(1)_CCX) -O2 -I $(MBED_SRC)/include -I $(X25519_T) -DMBEDTLS_CONFIG_FILE='"ref_config.h"' -c $$< -o $$@
$$($(1)_XT)/ref-wrap.o: $(X25519_T)/ref.c $(X25519_T)/ref.h $(X25519_T)/ecdh_io.h $(X25519_T)/ref_config.h $(MBED_SRC)/include/mbedtls/version.h
	mkdir -p $$(@D)
	$$($(1)_CCX) -O2 -Wall -I $(MBED_SRC)/include -I $(X25519_T) -DMBEDTLS_CONFIG_FILE='"ref_config.h"' -c $$< -o $$@
$$($(1)_XT)/ref.o: $$($(1)_XT_REF)
	$$($(1)_CC) -r -nostdlib $$^ -o $$@.all
	$$(patsubst %gcc,%nm,$$($(1)_CC)) -g --defined-only $$@.all | \
	  awk '$$$$3 ~ /^mbedtls_/ { print $$$$3, "ref_" $$$$3 }' > $$@.syms
	$$(patsubst %gcc,%objcopy,$$($(1)_CC)) --redefine-syms=$$@.syms $$@.all $$@
	@if $$(patsubst %gcc,%nm,$$($(1)_CC)) $$@ | grep -E ' [A-Z] mbedtls_'; then \
	  echo "$$@: the reference still has mbedtls_* symbols" >&2; rm -f $$@; exit 1; fi

$$($(1)_XT)/fe32.o: $(X25519_DIR)/x25519.c $(X25519_HDRS)
	mkdir -p $$(@D)
	$$($(1)_CCX) -Os -DAGENT_X25519_FE32 -Dagent_x25519=fe32_x25519 -Dagent_x25519_base=fe32_x25519_base \
	  -c $$< -o $$@

# Test programs, against the release's mbedTLS headers and configuration.
$$($(1)_XT)/t-%.o: $(X25519_T)/%.c $(wildcard $(X25519_T)/*.h) $(X25519_HDRS) $(INTEROP_DIR)/client.h $$($(1)_MBED)/lib/libmbedtls.a
	mkdir -p $$(@D)
	$$($(1)_CCX) -O2 -Wall -I $$($(1)_MBED)/include $(CHACHA_INC) $(INTEROP_INC) -I $(X25519_DIR) -I $(X25519_T) \
	  $$($(1)_XT_CFLAGS) -c $$< -o $$@

# Our objects are the release's; the release libmbedcrypto.a (with the ALT)
# supplies the rest of ECDH/ECP.
$$($(1)_XT)/test_x25519 $$($(1)_XT)/bench_x25519: $$($(1)_XT)/%: $$($(1)_XT)/t-%.o $$($(1)_XT)/ref.o $$($(1)_XT_FE32) $$($(1)_X25519_OBJS) $$($(1)_MBED)/lib/libmbedtls.a
	$$($(1)_XT_LINK) $$(filter %.o,$$^) $$($(1)_MBED)/lib/libmbedcrypto.a -o $$@

# The TLS client counts the calls into our X25519 (--wrap) to show it ran.
$$($(1)_XT)/interop: $$($(1)_XT)/t-interop.o $$($(1)_INTEROP_OBJ) $$($(1)_X25519_OBJS) $$($(1)_CHACHA_OBJS) $$($(1)_MBED)/lib/libmbedtls.a
	$$($(1)_XT_LINK) -Wl,--wrap=agent_x25519 -Wl,--wrap=agent_x25519_base $$(filter %.o,$$^) \
	  $$($(1)_MBED)/lib/libmbedtls.a $$($(1)_MBED)/lib/libmbedx509.a $$($(1)_MBED)/lib/libmbedcrypto.a -o $$@

X25519_TEST_PROGS += $$($(1)_XT)/test_x25519 $$($(1)_XT)/interop

# The release mbedTLS lacks mbedtls_ecdh_gen_public/compute_shared (the ALT):
# every program that links it and does TLS needs our objects, the
# ChaCha20-Poly1305 interop client too (its recipe links every .o it depends on).
$$($(1)_CT)/interop: $$($(1)_X25519_OBJS)
X25519_BENCH_PROGS += $$($(1)_XT)/bench_x25519
endef

$(foreach a,$(RELEASE_ARCHES),$(eval $(call x25519_test_rules,$(a))))

# Constant time under valgrind's memcheck (x86_64, natively; both radices),
# when valgrind is installed (cross/deps.sh installs it).
ifneq ($(wildcard /usr/include/valgrind/memcheck.h),)
$(x86_64_XT)/ct_x25519: $(X25519_T)/ct_x25519.c $(X25519_HDRS) $(x86_64_XT)/fe32.o $(x86_64_B)/x25519-x25519.o
	$(x86_64_CCX) -O2 -Wall -idirafter /usr/include/valgrind -I $(X25519_DIR) -c $< -o $@.o
	$(x86_64_XT_LINK) $@.o $(x86_64_XT)/fe32.o $(x86_64_B)/x25519-x25519.o -o $@
X25519_TEST_PROGS += $(x86_64_XT)/ct_x25519
endif

test-x25519: $(X25519_TEST_PROGS)
	X25519_MILLION=$(X25519_MILLION) bash $(X25519_T)/run.sh test $(RELEASE_ARCHES)

bench-x25519: $(X25519_BENCH_PROGS)
	bash $(X25519_T)/run.sh bench $(RELEASE_ARCHES)
