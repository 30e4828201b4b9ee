# Packaging: make install, make dist, make deb, and their checks (make
# test-packaging). Included by the top-level Makefile. Files: packaging/.
#
#   make install [PREFIX=/usr/local] [DESTDIR=] [INSTALL_ARCH=x86_64]
#   make uninstall [PREFIX=...] [DESTDIR=]
#   make dist     build/dist/agent-VERSION-ARCH.tar.gz per architecture, SHA256SUMS
#   make deb      build/deb/agent_VERSION_{amd64,arm64,armhf}.deb (dpkg-deb), lintian
#
# Nothing here changes the binary: the packages carry the static release
# builds as they are.

PKG_VERSION := $(shell sed -nE 's/.*static let version = "([^"]+)".*/\1/p' Sources/agent/Usage.swift)
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
MANDIR      ?= $(PREFIX)/share/man
DATADIR     ?= $(PREFIX)/share
# The services read /etc/agent whatever the prefix.
SYSCONFDIR  ?= /etc
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
INSTALL_ARCH ?= $(patsubst armv7%,armv7,$(shell uname -m))
# For reproducible archives: the time of the last commit.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)

PKG_DIR   := packaging
PKG_UNITS := $(PKG_DIR)/systemd/agent-relay.service $(PKG_DIR)/systemd/agent-device.service
PKG_CONFS := $(PKG_DIR)/config/relay.conf $(PKG_DIR)/config/device.conf $(PKG_DIR)/config/operators
DEB_ARCH_x86_64  := amd64
DEB_ARCH_aarch64 := arm64
DEB_ARCH_armv7   := armhf
TAR_REPRO := tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@$(SOURCE_DATE_EPOCH)

.PHONY: install uninstall dist deb lintian test-packaging

install: build/agent-$(INSTALL_ARCH)
	install -D -m 0755 build/agent-$(INSTALL_ARCH) $(DESTDIR)$(BINDIR)/agent
	install -D -m 0644 $(PKG_DIR)/man/agent.1 $(DESTDIR)$(MANDIR)/man1/agent.1
	install -D -m 0644 $(PKG_DIR)/completion/agent $(DESTDIR)$(DATADIR)/bash-completion/completions/agent
	install -d $(DESTDIR)$(SYSTEMDUNITDIR)
	for u in $(PKG_UNITS); do \
	  sed 's|/usr/bin/agent|$(BINDIR)/agent|' $$u > $(DESTDIR)$(SYSTEMDUNITDIR)/$$(basename $$u); \
	  chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/$$(basename $$u); done
	install -D -m 0644 $(PKG_DIR)/systemd/agent.sysusers $(DESTDIR)$(PREFIX)/lib/sysusers.d/agent.conf
	install -D -m 0644 $(PKG_DIR)/systemd/agent.tmpfiles $(DESTDIR)$(PREFIX)/lib/tmpfiles.d/agent.conf
	install -d $(DESTDIR)$(DATADIR)/doc/agent/examples
	install -m 0644 $(PKG_CONFS) $(DESTDIR)$(DATADIR)/doc/agent/examples/
	install -m 0644 CHANGELOG.md $(DESTDIR)$(DATADIR)/doc/agent/
	@# The configuration is the administrator's: installed when missing, never overwritten.
	install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/agent
	for f in $(PKG_CONFS); do t=$(DESTDIR)$(SYSCONFDIR)/agent/$$(basename $$f); \
	  if [ -e $$t ]; then echo "install: keeping $$t"; else install -m 0644 $$f $$t; fi; done

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/agent $(DESTDIR)$(MANDIR)/man1/agent.1 \
	  $(DESTDIR)$(DATADIR)/bash-completion/completions/agent \
	  $(DESTDIR)$(SYSTEMDUNITDIR)/agent-relay.service $(DESTDIR)$(SYSTEMDUNITDIR)/agent-device.service \
	  $(DESTDIR)$(PREFIX)/lib/sysusers.d/agent.conf $(DESTDIR)$(PREFIX)/lib/tmpfiles.d/agent.conf
	rm -rf $(DESTDIR)$(DATADIR)/doc/agent
	@echo "uninstall: $(DESTDIR)$(SYSCONFDIR)/agent (configuration) and /var/lib/agent (keys) are left in place"

# $(call dist_rules,ARCH): the release tarball of one architecture.
define dist_rules
build/dist/agent-$(PKG_VERSION)-$(1).tar.gz: build/agent-$(1) $(PKG_UNITS) $(PKG_CONFS) $(PKG_DIR)/man/agent.1 \
    $(PKG_DIR)/completion/agent $(wildcard $(PKG_DIR)/systemd/* $(PKG_DIR)/openwrt/files/*) CHANGELOG.md
	rm -rf build/dist/stage-$(1) && mkdir -p build/dist/stage-$(1)/agent-$(PKG_VERSION)-$(1)
	cd build/dist/stage-$(1)/agent-$(PKG_VERSION)-$(1) && mkdir -p config systemd openwrt completion
	d=build/dist/stage-$(1)/agent-$(PKG_VERSION)-$(1); \
	  install -m 0755 build/agent-$(1) $$$$d/agent && (cd $$$$d && sha256sum agent > agent.sha256) && \
	  install -m 0644 $(PKG_DIR)/man/agent.1 CHANGELOG.md $$$$d/ && \
	  install -m 0644 $(PKG_CONFS) $$$$d/config/ && \
	  install -m 0644 $(PKG_UNITS) $(PKG_DIR)/systemd/agent.sysusers $(PKG_DIR)/systemd/agent.tmpfiles $$$$d/systemd/ && \
	  install -m 0644 $(PKG_DIR)/openwrt/files/* $$$$d/openwrt/ && \
	  install -m 0644 $(PKG_DIR)/completion/agent $$$$d/completion/
	$(TAR_REPRO) -C build/dist/stage-$(1) -cf - agent-$(PKG_VERSION)-$(1) | gzip -9n > $$@.tmp && mv $$@.tmp $$@
	rm -rf build/dist/stage-$(1)
endef
$(foreach a,$(RELEASE_ARCHES),$(eval $(call dist_rules,$(a))))

DIST_TARBALLS := $(foreach a,$(RELEASE_ARCHES),build/dist/agent-$(PKG_VERSION)-$(a).tar.gz)

dist: $(DIST_TARBALLS)
	cd build/dist && sha256sum $(notdir $(DIST_TARBALLS)) > SHA256SUMS
	@# Ready for packaging/buildroot/agent.hash.
	cd build/dist && sed -E 's/^([0-9a-f]+)  (.*)/sha256  \1  \2/' SHA256SUMS > buildroot-agent.hash
	@cat build/dist/SHA256SUMS

# $(call deb_rules,ARCH): the Debian package of one architecture, from the
# static release binary, with dpkg-deb (no build dependencies, no debhelper).
define deb_rules
build/deb/agent_$(PKG_VERSION)_$(DEB_ARCH_$(1)).deb: build/agent-$(1) $(PKG_UNITS) $(PKG_CONFS) $(PKG_DIR)/man/agent.1 \
    $(PKG_DIR)/completion/agent $(wildcard $(PKG_DIR)/debian/*) CHANGELOG.md
	rm -rf build/deb/root-$(1) && mkdir -p build/deb/root-$(1)/DEBIAN
	r=build/deb/root-$(1); \
	  install -D -m 0755 build/agent-$(1) $$$$r/usr/bin/agent && \
	  install -d $$$$r/usr/share/man/man1 && gzip -9n < $(PKG_DIR)/man/agent.1 > $$$$r/usr/share/man/man1/agent.1.gz && \
	  install -D -m 0644 $(PKG_DIR)/completion/agent $$$$r/usr/share/bash-completion/completions/agent && \
	  install -d $$$$r/lib/systemd/system && install -m 0644 $(PKG_UNITS) $$$$r/lib/systemd/system/ && \
	  install -d $$$$r/etc/agent && install -m 0644 $(PKG_CONFS) $$$$r/etc/agent/ && \
	  install -D -m 0644 $(PKG_DIR)/debian/copyright $$$$r/usr/share/doc/agent/copyright && \
	  install -D -m 0644 $(PKG_DIR)/debian/lintian-overrides $$$$r/usr/share/lintian/overrides/agent && \
	  bash $(PKG_DIR)/debian/changelog.sh $(PKG_VERSION) $(SOURCE_DATE_EPOCH) | gzip -9n > $$$$r/usr/share/doc/agent/changelog.gz && \
	  install -m 0644 $(PKG_DIR)/debian/conffiles $$$$r/DEBIAN/ && \
	  install -m 0755 $(PKG_DIR)/debian/postinst $(PKG_DIR)/debian/prerm $(PKG_DIR)/debian/postrm $$$$r/DEBIAN/ && \
	  sed -e 's/@VERSION@/$(PKG_VERSION)/' -e 's/@ARCH@/$(DEB_ARCH_$(1))/' \
	      -e "s/@SIZE@/$$$$(du -sk --exclude=DEBIAN $$$$r | cut -f1)/" $(PKG_DIR)/debian/control.in > $$$$r/DEBIAN/control && \
	  (cd $$$$r && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -printf '%P\n' | LC_ALL=C sort \
	     | xargs md5sum > DEBIAN/md5sums) && \
	  find $$$$r -exec touch -h -d @$(SOURCE_DATE_EPOCH) {} +
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) dpkg-deb --root-owner-group -Zxz --build build/deb/root-$(1) $$@ >/dev/null
	rm -rf build/deb/root-$(1)
endef
$(foreach a,$(RELEASE_ARCHES),$(eval $(call deb_rules,$(a))))

DEBS := $(foreach a,$(RELEASE_ARCHES),build/deb/agent_$(PKG_VERSION)_$(DEB_ARCH_$(a)).deb)

deb: $(DEBS)
	@ls -l $(DEBS)

# lintian: no errors (the one override, a static binary, is in the package with its reason).
lintian: $(DEBS)
	lintian --fail-on error $(DEBS)

# The checks of `make test`: units, man page, OpenWrt init script, make install
# and dist, the Debian packages (lintian, install and remove on this machine).
test-packaging: build/agent-x86_64 $(DEBS) $(DIST_TARBALLS)
	AGENT_BIN=$(CURDIR)/build/agent-x86_64 python3 -m pytest -q -p no:cacheprovider tests/packaging
