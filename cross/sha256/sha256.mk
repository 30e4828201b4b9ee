# Tests and benchmark of our SHA-256 compression function (cross/sha256/README.md).
# Included by the top-level Makefile after cross/release.mk, whose x86_64
# variables (x86_64_CCX, _B, _MBED, _SHA256_OBJS) it uses: the program links the
# very object and mbedTLS library that go into build/agent-x86_64.
#
#   make test-sha256    FIPS 180-4 examples, lengths 0..200 and random messages
#                       against mbedTLS's own C and Python's hashlib, for the
#                       SHA extensions and the portable C (forced); ends with
#                       "sha256: N passed, M failed"
#   make bench-sha256   ns per block and per 32-byte hash: mbedTLS's C as the
#                       release built it before (-Os), ours portable, ours SHA-NI
#                       (also run by make bench-crypto)

SHA256_T  := $(SHA256_DIR)/test
SHA256_TB := $(x86_64_B)/sha256-test

.PHONY: test-sha256 bench-sha256

# The reference: mbedTLS's library/sha256.c without the ALT, at -Os like the
# release's mbedTLS, every public symbol renamed ref_*.
$(SHA256_TB)/ref-sha256.o: $(MBED_SRC)/library/sha256.c $(SHA256_T)/ref_rename.h $(SHA256_T)/ref_config.h $(x86_64_MBED)/lib/libmbedtls.a
	mkdir -p $(@D)
	$(x86_64_CCX) -Os -I $(x86_64_MBED)/include -I $(SHA256_T) '-DMBEDTLS_USER_CONFIG_FILE="ref_config.h"' \
	  -include $(SHA256_T)/ref_rename.h -c $< -o $@

$(SHA256_TB)/t-%.o: $(SHA256_T)/%.c $(wildcard $(SHA256_T)/*.h) $(SHA256_HDRS) $(x86_64_MBED)/lib/libmbedtls.a
	mkdir -p $(@D)
	$(x86_64_CCX) -O2 -Wall -I $(x86_64_MBED)/include $(SHA256_INC) -I $(SHA256_T) -c $< -o $@

$(SHA256_TB)/test_sha256: $(SHA256_TB)/t-test_sha256.o $(SHA256_TB)/ref-sha256.o $(x86_64_SHA256_OBJS) $(x86_64_MBED)/lib/libmbedtls.a
	$(x86_64_CCX) -static $(filter %.o,$^) $(x86_64_MBED)/lib/libmbedcrypto.a -o $@

test-sha256: $(SHA256_TB)/test_sha256
	bash $(SHA256_T)/run.sh test

bench-crypto: $(SHA256_TB)/test_sha256
bench-sha256: $(SHA256_TB)/test_sha256
	bash $(SHA256_T)/run.sh bench
