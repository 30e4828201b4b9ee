# Tests and benchmark of our P-256 (cross/p256/README.md). Included by the
# top-level Makefile after cross/release.mk, whose per-target variables
# (<arch>_CC, _CCX, _B, _P256OPT) it uses. Needs only the cross compilers and
# musl (no mbedTLS build): p256.c does not include mbedTLS; psa_random.c, the
# one file that does, belongs to the release build only.
#
#   make test-p256    known answers (RFC 6979, NIST CAVS ECDH), edge cases
#                     and edge scalars, differential tests against OpenSSL
#                     (python3 cryptography: vectors made at test time, our
#                     signatures, keys and secrets checked by it) and between
#                     our builds (as released, with the other fixed-base
#                     table and inversion, the 8 x 32-bit code on the 64-bit
#                     targets) and p256-m when its source is found, for x86_64
#                     natively, aarch64 and armv7 under qemu-user; white-box
#                     tests of the inversions and the recoding (64-bit
#                     targets); the committed tables against gen_table's
#                     output; with valgrind installed, a constant-time check
#                     (memcheck) of every configuration; ends with
#                     "p256: N passed, M failed".
#   make bench-p256   microseconds per operation on x86_64 (and `openssl
#                     speed` in the same run); under qemu for aarch64 and
#                     armv7, guest instructions per operation and wall time;
#                     P256_BASE=<git revision> adds that revision's cross/p256
#                     as a "before" column (make bench-crypto runs this too).
#
# The reference p256-m.c: mbedTLS 3.6's, unpacked by the release build in
# $(MBED_SRC)/3rdparty/p256-m (P256M_SRC=... overrides); without it the
# tests and the benchmark run without it, and say so.

P256_DIR  := cross/p256
P256_T    := $(P256_DIR)/test
P256_HDRS := $(wildcard $(P256_DIR)/*.h)
P256M_SRC ?= $(firstword $(wildcard $(MBED_SRC)/3rdparty/p256-m/p256-m/p256-m.c \
                                    /tmp/aptt/src/3rdparty/p256-m/p256-m/p256-m.c))
# "ours" is built as the release builds it for the target (release.mk's
# <arch>_P256OPT: -O2 on x86_64, -Os on ARM); "ours-alt" the same with the
# other fixed-base table and inversion (README.md), so that both are tested
# on every target.
P256_CFLAGS := -std=c99 -ffunction-sections -fdata-sections -Wall -Wextra
x86_64_P256ALT  := -DP256_WTABLE=0 -DP256_SAFEGCD=0
aarch64_P256ALT := -DP256_WTABLE=1 -DP256_SAFEGCD=1
armv7_P256ALT   := -DP256_WTABLE=0
P256_API := gen_keypair ecdh_shared_secret ecdsa_sign ecdsa_verify validate_pubkey \
            validate_privkey public_from_private
p256_rename = $(foreach f,$(P256_API) $(2),-Dp256_$(f)=$(1)p256_$(f))
# The benchmark's "before" column: cross/p256 as committed at this git
# revision (e.g. `make bench-crypto P256_BASE=main`), built the same way.
P256_BASE ?=

.PHONY: test-p256 bench-p256 test-p256-tables

# $(call p256_test_rules,ARCH)
define p256_test_rules
$(1)_PT := $$($(1)_B)/p256-test
$(1)_PT_LIMB32 := $(if $(filter armv7,$(1)),,$$($(1)_B)/p256-test/l32.o)
$(1)_PT_REF := $(if $(P256M_SRC),$$($(1)_B)/p256-test/ref.o)
$(1)_PT_BASE := $(if $(P256_BASE),$$($(1)_B)/p256-test/base.o)
$(1)_PT_CFLAGS := -DTEST_ALT $(if $(filter armv7,$(1)),,-DTEST_LIMB32) $(if $(P256M_SRC),-DHAVE_REF)

$$($(1)_PT)/p256.o: $(P256_DIR)/p256.c $(P256_HDRS)
	mkdir -p $$(@D)
	$$($(1)_CCX) $(P256_CFLAGS) $$($(1)_P256OPT) -c $$< -o $$@

# The other table and inversion, renamed alt_*.
$$($(1)_PT)/alt.o: $(P256_DIR)/p256.c $(P256_HDRS)
	mkdir -p $$(@D)
	$$($(1)_CCX) $(P256_CFLAGS) $$($(1)_P256OPT) $$($(1)_P256ALT) $$(call p256_rename,alt_) -c $$< -o $$@

# The 32-bit limbs (armv7's code) on a 64-bit target, renamed l32_*.
$$($(1)_PT)/l32.o: $(P256_DIR)/p256.c $(P256_HDRS)
	mkdir -p $$(@D)
	$$($(1)_CCX) $(P256_CFLAGS) $$($(1)_P256OPT) -DP256_LIMB32 $$(call p256_rename,l32_) -c $$< -o $$@

# p256-m, renamed ref_* (its p256_generate_random too), against a shim of
# the two mbedTLS headers it includes.
$$($(1)_PT)/ref.o: $(P256M_SRC) $(wildcard $(P256_T)/ref_shim/*/*.h)
	mkdir -p $$(@D)
	$$($(1)_CCX) -O2 -w -I $(P256_T)/ref_shim -I $$(dir $(P256M_SRC)) -DMBEDTLS_PSA_P256M_DRIVER_ENABLED \
	  $$(call p256_rename,ref_,generate_random) -c $$< -o $$@

# cross/p256 at git revision $(P256_BASE), renamed base_* (benchmark only).
$$($(1)_PT)/base.o: FORCE
	rm -rf $$(@D)/base-src && mkdir -p $$(@D)/base-src
	git archive $(P256_BASE) $(P256_DIR) | tar -x -C $$(@D)/base-src
	$$($(1)_CCX) $(P256_CFLAGS) $$($(1)_P256OPT) $$(call p256_rename,base_) \
	  -c $$(@D)/base-src/$(P256_DIR)/p256.c -o $$@

$$($(1)_PT)/test_p256: $(P256_T)/test_p256.c $(P256_HDRS) $$($(1)_PT)/p256.o $$($(1)_PT)/alt.o $$($(1)_PT_LIMB32) $$($(1)_PT_REF)
	$$($(1)_CCX) -O2 -Wall -Wextra -I $(P256_DIR) $$($(1)_PT_CFLAGS) $$< \
	  $$(filter %.o,$$^) -static -o $$@

$$($(1)_PT)/bench_p256: $(P256_T)/bench_p256.c $(P256_HDRS) $$($(1)_PT)/p256.o $$($(1)_PT_REF) $$($(1)_PT_BASE)
	$$($(1)_CCX) -O2 -Wall -Wextra -I $(P256_DIR) $(if $(P256M_SRC),-DHAVE_REF) $(if $(P256_BASE),-DHAVE_BASE) $$< \
	  $$(filter %.o,$$^) -static -o $$@

# White-box: divsteps inversions against Fermat's, the window recoding
# (64-bit limbs: not on armv7).
$$($(1)_PT)/internal_p256: $(P256_T)/internal_p256.c $(P256_DIR)/p256.c $(P256_HDRS)
	mkdir -p $$(@D)
	$$($(1)_CCX) -std=c99 -Wall -Wextra $$($(1)_P256OPT) -DP256_SAFEGCD=1 -DP256_WTABLE=1 $$< -static -o $$@

P256_TEST_PROGS += $$($(1)_PT)/test_p256 $(if $(filter armv7,$(1)),,$$($(1)_PT)/internal_p256)
P256_BENCH_PROGS += $$($(1)_PT)/bench_p256
endef

$(foreach a,$(RELEASE_ARCHES),$(eval $(call p256_test_rules,$(a))))

# Constant time under valgrind's memcheck (x86_64, natively), when valgrind is
# installed: each configuration a release target builds, and the 4 x 64 C
# code with the window table and divsteps (aarch64's alternate), renamed
# <prefix>_p256_* (test/ct_p256.c).
CT_VARIANTS := x64 a64 a32 c64
CT_x64 := $(x86_64_P256OPT)
CT_a64 := -Os -DP256_NO_ASM -DP256_SMALL=1 -DP256_WTABLE=0 -DP256_SAFEGCD=0
CT_a32 := -Os -DP256_NO_ASM -DP256_LIMB32 -DP256_SMALL=1 -DP256_WTABLE=1
CT_c64 := -O2 -DP256_NO_ASM -DP256_WTABLE=1 -DP256_SAFEGCD=1
ifneq ($(wildcard /usr/include/valgrind/memcheck.h),)
$(x86_64_PT)/ct-%.o: $(P256_DIR)/p256.c $(P256_HDRS)
	mkdir -p $(@D)
	$(x86_64_CCX) $(P256_CFLAGS) $(CT_$*) -DP256_CT_VALGRIND $(call p256_rename,$*_) \
	  -idirafter /usr/include/valgrind -c $< -o $@
$(x86_64_PT)/ct_p256: $(P256_T)/ct_p256.c $(foreach v,$(CT_VARIANTS),$(x86_64_PT)/ct-$(v).o)
	$(x86_64_CCX) -O2 -Wall -Wextra -idirafter /usr/include/valgrind -I $(P256_DIR) $< \
	  $(filter %.o,$^) -static -o $@
P256_TEST_PROGS += $(x86_64_PT)/ct_p256
endif

# The committed tables are what test/gen_table.c writes from the curve's
# constants (a host program: p256.c's own arithmetic, no table).
$(x86_64_PT)/gen_table: $(P256_T)/gen_table.c $(P256_DIR)/p256.c $(P256_DIR)/p256.h
	mkdir -p $(@D)
	gcc -O1 -DP256_GEN_TABLE -I $(P256_DIR) $< -o $@
test-p256-tables: $(x86_64_PT)/gen_table
	$< comb | cmp - $(P256_DIR)/p256_table.h
	$< window | cmp - $(P256_DIR)/p256_wtable.h
	@echo "p256 tables: as test/gen_table.c writes them"

test-p256: $(P256_TEST_PROGS) test-p256-tables
	bash $(P256_T)/run.sh test $(RELEASE_ARCHES)

bench-p256: $(P256_BENCH_PROGS)
	bash $(P256_T)/run.sh bench $(RELEASE_ARCHES)
