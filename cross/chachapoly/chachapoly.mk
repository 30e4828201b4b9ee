# Tests and benchmark of our ChaCha20-Poly1305 (cross/chachapoly/README.md).
# Included by the top-level Makefile after cross/release.mk, whose per-target
# variables (<arch>_CCX, _B, _MBED, _CHACHA_OBJS) it uses: the programs below
# link the very objects and mbedTLS libraries that go into build/agent-<arch>.
#
#   make test-chachapoly  RFC 8439 vectors, differential tests against
#                         mbedTLS's portable code and overrun checks for every
#                         implementation (x86_64 natively, aarch64 and armv7
#                         under qemu-user), then TLS interop with openssl
#                         s_server; ends with "chachapoly: N passed, M failed"
#   make bench-crypto     MB/s ours vs mbedTLS on x86_64; instructions per byte
#                         under qemu for aarch64 and armv7; then the P-256 rows
#                         (make bench-p256: sign, verify, key generation, ECDH),
#                         then SHA-256 (make bench-sha256)

CHACHA_T := $(CHACHA_DIR)/test

.PHONY: test-chachapoly bench-crypto

# $(call chacha_test_rules,ARCH)
define chacha_test_rules
$(1)_CT := $$($(1)_B)/chachapoly-test
$(1)_CT_LINK = $$($(1)_CCX) -static -fuse-ld=lld -B$(SWIFT_TC)/bin -Wl,--no-dynamic-linker
$(1)_CT_REF := $$(addprefix $$($(1)_B)/chachapoly-test/ref-,chacha20.o poly1305.o chachapoly.o wrap.o)

# The reference: mbedTLS's own portable chacha20.c, poly1305.c, chachapoly.c
# (default upstream configuration, no ALT), every symbol renamed ref_*.
$$($(1)_CT)/ref-%.o: $(MBED_SRC)/library/%.c $(CHACHA_T)/ref_rename.h $(MBED_SRC)/include/mbedtls/version.h
	mkdir -p $$(@D)
	$$($(1)_CCX) -O2 -I $(MBED_SRC)/include -include $(CHACHA_T)/ref_rename.h -c $$< -o $$@
$$($(1)_CT)/ref-wrap.o: $(CHACHA_T)/ref.c $(CHACHA_T)/ref.h $(CHACHA_T)/ref_rename.h $(MBED_SRC)/include/mbedtls/version.h
	mkdir -p $$(@D)
	$$($(1)_CCX) -O2 -I $(MBED_SRC)/include -include $(CHACHA_T)/ref_rename.h -c $$< -o $$@

# Test programs, against the release's mbedTLS headers and configuration.
$$($(1)_CT)/t-%.o: $(CHACHA_T)/%.c $(wildcard $(CHACHA_T)/*.h) $(CHACHA_HDRS) $(INTEROP_DIR)/client.h $$($(1)_MBED)/lib/libmbedtls.a
	mkdir -p $$(@D)
	$$($(1)_CCX) -O2 -Wall -I $$($(1)_MBED)/include $(CHACHA_INC) $(INTEROP_INC) -I $(CHACHA_T) -c $$< -o $$@

# Our objects are the release's; the release libmbedcrypto.a supplies
# chachapoly.c (running on them) and platform_util.c.
$$($(1)_CT)/test_chachapoly $$($(1)_CT)/bench_chachapoly: $$($(1)_CT)/%: $$($(1)_CT)/t-%.o $$($(1)_CT_REF) $$($(1)_CHACHA_OBJS) $$($(1)_MBED)/lib/libmbedtls.a
	$$($(1)_CT_LINK) $$(filter %.o,$$^) $$($(1)_MBED)/lib/libmbedcrypto.a -o $$@

$$($(1)_CT)/interop: $$($(1)_CT)/t-interop.o $$($(1)_INTEROP_OBJ) $$($(1)_CHACHA_OBJS) $$($(1)_P256_OBJS) $$($(1)_SHA256_OBJS) $$($(1)_MBED)/lib/libmbedtls.a
	$$($(1)_CT_LINK) $$(filter %.o,$$^) $$($(1)_MBED)/lib/libmbedtls.a \
	  $$($(1)_MBED)/lib/libmbedx509.a $$($(1)_MBED)/lib/libmbedcrypto.a -o $$@

CHACHA_TEST_PROGS += $$($(1)_CT)/test_chachapoly $$($(1)_CT)/interop
CHACHA_BENCH_PROGS += $$($(1)_CT)/bench_chachapoly
endef

$(foreach a,$(RELEASE_ARCHES),$(eval $(call chacha_test_rules,$(a))))

test-chachapoly: $(CHACHA_TEST_PROGS)
	bash $(CHACHA_T)/run.sh test $(RELEASE_ARCHES)

bench-crypto: $(CHACHA_BENCH_PROGS) $(P256_BENCH_PROGS)
	bash $(CHACHA_T)/run.sh bench $(RELEASE_ARCHES)
	bash $(P256_T)/run.sh bench $(RELEASE_ARCHES)
	bash $(SHA256_DIR)/test/run.sh bench
