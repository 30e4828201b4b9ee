################################################################################
#
# agent: the prebuilt static release binary (make dist's tarballs)
#
# Copy this folder to package/agent in Buildroot (or a BR2_EXTERNAL tree) and
# source its Config.in from package/Config.in. Put the tarballs' hashes from
# `make dist`'s SHA256SUMS into agent.hash. AGENT_SITE can point to a local
# folder holding the tarballs (AGENT_SITE_METHOD = file).
#
################################################################################

AGENT_VERSION = 0.1.0
AGENT_ARCH = $(if $(BR2_aarch64),aarch64,$(if $(BR2_x86_64),x86_64,armv7))
AGENT_SOURCE = agent-$(AGENT_VERSION)-$(AGENT_ARCH).tar.gz
AGENT_SITE ?= https://example.invalid/agent/releases/$(AGENT_VERSION)

define AGENT_BUILD_CMDS
	cd $(@D) && sha256sum -c agent.sha256
endef

define AGENT_INSTALL_TARGET_CMDS
	$(INSTALL) -D -m 0755 $(@D)/agent $(TARGET_DIR)/usr/bin/agent
	$(INSTALL) -D -m 0644 $(@D)/config/device.conf $(TARGET_DIR)/etc/agent/device.conf
	$(INSTALL) -D -m 0644 $(@D)/config/relay.conf $(TARGET_DIR)/etc/agent/relay.conf
	$(INSTALL) -D -m 0644 $(@D)/config/operators $(TARGET_DIR)/etc/agent/operators
endef

define AGENT_INSTALL_INIT_SYSTEMD
	$(INSTALL) -D -m 0644 $(@D)/systemd/agent-device.service \
		$(TARGET_DIR)/usr/lib/systemd/system/agent-device.service
	$(INSTALL) -D -m 0644 $(@D)/systemd/agent-relay.service \
		$(TARGET_DIR)/usr/lib/systemd/system/agent-relay.service
	$(INSTALL) -D -m 0644 $(@D)/systemd/agent.tmpfiles \
		$(TARGET_DIR)/usr/lib/tmpfiles.d/agent.conf
endef

define AGENT_USERS
	agent -1 agent -1 * /var/lib/agent - - agent relay and device
endef

$(eval $(generic-package))
