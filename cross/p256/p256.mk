# Tests and benchmark of our P-256 (cross/p256/README.md). Included by the
# top-level Makefile after cross/release.mk, whose per-target variables
# (<arch>_CC, _CCX, _B) it uses. Needs only the cross compilers and musl (no
# mbedTLS build): p256.c does not include mbedTLS; psa_random.c, the one file
# that does, belongs to the release build only.
#
#   make test-p256    known answers (RFC 6979, NIST CAVS ECDH), edge cases,
#                     differential tests against OpenSSL (python3
#                     cryptography: vectors made at test time, our signatures,
#                     keys and secrets checked by it) and against p256-m when
#                     its source is found, for x86_64 natively, aarch64 and
#                     armv7 under qemu-user; the 8 x 32-bit code (armv7's)
#                     also on the 64-bit targets; with valgrind installed, a
#                     constant-time check (memcheck); ends with
#                     "p256: N passed, M failed".
#   make bench-p256   operations per second, ours vs p256-m, on x86_64 (and
#                     `openssl speed` in the same run); under qemu for aarch64
#                     and armv7, guest instructions per operation and the
#                     wall-time ratio.
#
# The reference p256-m.c: mbedTLS 3.6's, unpacked by the release build in
# $(MBED_SRC)/3rdparty/p256-m (P256M_SRC=... overrides); without it the
# tests and the benchmark run without it, and say so.

P256_DIR  := cross/p256
P256_T    := $(P256_DIR)/test
P256_HDRS := $(wildcard $(P256_DIR)/*.h)
P256M_SRC ?= $(firstword $(wildcard $(MBED_SRC)/3rdparty/p256-m/p256-m/p256-m.c \
                                    /tmp/aptt/src/3rdparty/p256-m/p256-m/p256-m.c))
# The object as the release would build it (-Os, like cross/x25519).
P256_CFLAGS := -std=c99 -Os -ffunction-sections -fdata-sections -Wall -Wextra
P256_API := gen_keypair ecdh_shared_secret ecdsa_sign ecdsa_verify validate_pubkey \
            validate_privkey public_from_private
p256_rename = $(foreach f,$(P256_API) $(2),-Dp256_$(f)=$(1)p256_$(f))

.PHONY: test-p256 bench-p256

# $(call p256_test_rules,ARCH)
define p256_test_rules
$(1)_PT := $$($(1)_B)/p256-test
$(1)_PT_LIMB32 := $(if $(filter armv7,$(1)),,$$($(1)_B)/p256-test/l32.o)
$(1)_PT_REF := $(if $(P256M_SRC),$$($(1)_B)/p256-test/ref.o)
$(1)_PT_CFLAGS := $(if $(filter armv7,$(1)),,-DTEST_LIMB32) $(if $(P256M_SRC),-DHAVE_REF)

$$($(1)_PT)/p256.o: $(P256_DIR)/p256.c $(P256_HDRS)
	mkdir -p $$(@D)
	$$($(1)_CCX) $(P256_CFLAGS) -c $$< -o $$@

# The 32-bit limbs (armv7's code) on a 64-bit target, renamed l32_*.
$$($(1)_PT)/l32.o: $(P256_DIR)/p256.c $(P256_HDRS)
	mkdir -p $$(@D)
	$$($(1)_CCX) $(P256_CFLAGS) -DP256_LIMB32 $$(call p256_rename,l32_) -c $$< -o $$@

# p256-m, renamed ref_* (its p256_generate_random too), against a shim of
# the two mbedTLS headers it includes.
$$($(1)_PT)/ref.o: $(P256M_SRC) $(wildcard $(P256_T)/ref_shim/*/*.h)
	mkdir -p $$(@D)
	$$($(1)_CCX) -O2 -w -I $(P256_T)/ref_shim -I $$(dir $(P256M_SRC)) -DMBEDTLS_PSA_P256M_DRIVER_ENABLED \
	  $$(call p256_rename,ref_,generate_random) -c $$< -o $$@

$$($(1)_PT)/test_p256 $$($(1)_PT)/bench_p256: $$($(1)_PT)/%: $(P256_T)/%.c $(P256_HDRS) $$($(1)_PT)/p256.o $$($(1)_PT_LIMB32) $$($(1)_PT_REF)
	$$($(1)_CCX) -O2 -Wall -Wextra -I $(P256_DIR) $$($(1)_PT_CFLAGS) $$< \
	  $$($(1)_PT)/p256.o $$($(1)_PT_LIMB32) $$($(1)_PT_REF) -static -o $$@

P256_TEST_PROGS += $$($(1)_PT)/test_p256
P256_BENCH_PROGS += $$($(1)_PT)/bench_p256
endef

$(foreach a,$(RELEASE_ARCHES),$(eval $(call p256_test_rules,$(a))))

# Constant time under valgrind's memcheck (x86_64, natively; both radices,
# the 32-bit one as armv7 builds it: P256_SMALL),
# when valgrind is installed.
ifneq ($(wildcard /usr/include/valgrind/memcheck.h),)
$(x86_64_PT)/ct_p256: $(P256_T)/ct_p256.c $(P256_DIR)/p256.c $(P256_HDRS)
	mkdir -p $(@D)
	$(x86_64_CCX) $(P256_CFLAGS) -DP256_CT_VALGRIND -idirafter /usr/include/valgrind -c $(P256_DIR)/p256.c -o $@-64.o
	$(x86_64_CCX) $(P256_CFLAGS) -DP256_CT_VALGRIND -DP256_LIMB32 -DP256_SMALL=1 $(call p256_rename,l32_) \
	  -idirafter /usr/include/valgrind -c $(P256_DIR)/p256.c -o $@-32.o
	$(x86_64_CCX) -O2 -Wall -Wextra -idirafter /usr/include/valgrind -I $(P256_DIR) $< $@-64.o $@-32.o -static -o $@
P256_TEST_PROGS += $(x86_64_PT)/ct_p256
endif

test-p256: $(P256_TEST_PROGS)
	bash $(P256_T)/run.sh test $(RELEASE_ARCHES)

bench-p256: $(P256_BENCH_PROGS)
	bash $(P256_T)/run.sh bench $(RELEASE_ARCHES)
