# The TLS client shared by the interoperability tests of cross/chachapoly and
# cross/x25519 (client.c; the server side is s_server.sh). Included by the
# top-level Makefile after cross/release.mk (per-target <arch>_CCX, _B, _MBED)
# and before the two test makefiles, which link $(<arch>_INTEROP_OBJ).

INTEROP_DIR := cross/interop
INTEROP_INC := -I$(CURDIR)/$(INTEROP_DIR)

# $(call interop_rules,ARCH)
define interop_rules
$(1)_INTEROP_OBJ := $$($(1)_B)/interop-client.o
$$($(1)_B)/interop-client.o: $(INTEROP_DIR)/client.c $(INTEROP_DIR)/client.h $$($(1)_MBED)/lib/libmbedtls.a
	mkdir -p $$(@D)
	$$($(1)_CCX) -O2 -Wall -I $$($(1)_MBED)/include $(CHACHA_INC) -c $$< -o $$@
endef

$(foreach a,$(RELEASE_ARCHES),$(eval $(call interop_rules,$(a))))
