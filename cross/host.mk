# The host build (SwiftPM: `swift build`, `swift test`) against the same mbedTLS
# as the release binaries: 3.6 LTS from Debian's source, built here with
# agent's configuration for the host (glibc, -fPIC), with our ChaCha20/Poly1305
# and P-256 objects beside it. Debian 12's binary libmbedtls-dev is 2.28, whose
# support has ended and whose API differs: the host build does not use it.
# Package.swift finds the result under .build-cross/host (see HOST_MBED).
#
#   make host-mbedtls   build .build-cross/host/mbedtls/{include,lib} once

HOST_B     := $(CROSS_DIR)/host
HOST_MBED  := $(HOST_B)/mbedtls
HOST_CC    := gcc
HOST_CFLAGS := -O2 -fPIC -ffunction-sections -fdata-sections -DAGENT_MBEDTLS_THREADING
HOST_P256_OBJS := $(HOST_B)/alt/p256-p256.o $(HOST_B)/alt/p256-psa_random.o
# cross/sha256's file compiles to nothing where the configuration does not ask for it (non-x86_64 hosts).
HOST_SHA256_OBJS := $(HOST_B)/alt/sha256-sha256_x86.o
HOST_ALT_OBJS = $(patsubst $(CHACHA_DIR)/%.c,$(HOST_B)/alt/chacha-%.o,$(CHACHA_SRCS)) $(HOST_P256_OBJS) $(HOST_SHA256_OBJS)

.PHONY: host-mbedtls
host-mbedtls: $(HOST_MBED)/lib/libagentalt.a

$(HOST_MBED)/lib/libmbedtls.a: $(MBED_SRC)/include/mbedtls/version.h $(MBED_CONFIG)
	AGENT_P256_OURS=$(P256_OURS) bash cross/build-mbedtls.sh $(MBED_SRC) $(HOST_MBED) $(HOST_CC) ar \
	  $(HOST_CFLAGS) $(CHACHA_INC)

$(HOST_B)/alt/chacha-%.o: $(CHACHA_DIR)/%.c $(CHACHA_HDRS) $(HOST_MBED)/lib/libmbedtls.a
	mkdir -p $(@D)
	$(HOST_CC) $(HOST_CFLAGS) -I $(HOST_MBED)/include $(CHACHA_INC) -c $< -o $@

$(HOST_B)/alt/p256-%.o: $(P256_DIR)/%.c $(P256_HDRS) $(HOST_MBED)/lib/libmbedtls.a
	mkdir -p $(@D)
	$(HOST_CC) $(HOST_CFLAGS) -I $(HOST_MBED)/include $(CHACHA_INC) -c $< -o $@

$(HOST_B)/alt/sha256-%.o: $(SHA256_DIR)/%.c $(SHA256_HDRS) $(HOST_MBED)/lib/libmbedtls.a
	mkdir -p $(@D)
	$(HOST_CC) $(HOST_CFLAGS) -I $(HOST_MBED)/include $(SHA256_INC) -c $< -o $@

# Our objects that the mbedTLS libraries call (ChaCha20/Poly1305, the P-256 core, SHA-256's compression).
$(HOST_MBED)/lib/libagentalt.a: $(HOST_ALT_OBJS)
	rm -f $@
	ar rcs $@ $^
