# mk/install.mk — `make install` / `make uninstall` (included by Makefile).
#
#   make install                       binaries, man pages, systemd unit, defaults
#   make install PREFIX=/usr           distribution layout (unit in /lib/systemd/system)
#   make install DESTDIR=/tmp/stage    staged install, e.g. for packaging
#   make uninstall [PREFIX=..] [DESTDIR=..]   removes exactly what install put there
#
# Layout (PREFIX defaults to /usr/local):
#   $(BINDIR)        percore, percore-bench (when built)
#   $(MANDIR)/man1   percore.1, percore-bench.1
#   $(UNITDIR)       percore.service: $(PREFIX)/lib/systemd/system, which systemd
#                    searches for /usr/local too; /lib/systemd/system when
#                    PREFIX=/usr (Debian's place for packaged units).
#   $(SYSCONFDIR)/default/percore   PERCORE_OPTS for the unit; /etc whatever
#                    the PREFIX, never overwritten by a later install.
# Nothing here runs systemctl: after a real install, run
#   systemctl daemon-reload && systemctl enable --now percore

PREFIX     ?= /usr/local
DESTDIR    ?=
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
ifeq ($(PREFIX),/usr)
  UNITDIR  ?= /lib/systemd/system
else
  UNITDIR  ?= $(PREFIX)/lib/systemd/system
endif
INSTALL    ?= install

INSTALL_UNIT    := $(DESTDIR)$(UNITDIR)/percore.service
INSTALL_DEFAULT := $(DESTDIR)$(SYSCONFDIR)/default/percore

.PHONY: install uninstall install-unit verify-unit

install: $(O)/percore install-unit
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1
	$(INSTALL) -m 755 $(O)/percore $(DESTDIR)$(BINDIR)/percore
	$(INSTALL) -m 644 docs/man/percore.1 $(DESTDIR)$(MANDIR)/man1/percore.1
	@if [ -f $(O)/percore-bench ]; then \
	    echo "$(INSTALL) -m 755 $(O)/percore-bench $(DESTDIR)$(BINDIR)/percore-bench"; \
	    $(INSTALL) -m 755 $(O)/percore-bench $(DESTDIR)$(BINDIR)/percore-bench && \
	    $(INSTALL) -m 644 docs/man/percore-bench.1 $(DESTDIR)$(MANDIR)/man1/percore-bench.1; \
	fi
	@if [ -e $(INSTALL_DEFAULT) ]; then \
	    echo "keeping existing $(INSTALL_DEFAULT)"; \
	else \
	    echo "$(INSTALL) -m 644 dist/percore.default $(INSTALL_DEFAULT)"; \
	    $(INSTALL) -d $(DESTDIR)$(SYSCONFDIR)/default && \
	    $(INSTALL) -m 644 dist/percore.default $(INSTALL_DEFAULT); \
	fi

# The unit names the installed binary and defaults file, so it is generated.
install-unit:
	$(INSTALL) -d $(DESTDIR)$(UNITDIR)
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
	    dist/percore.service > $(INSTALL_UNIT).tmp
	chmod 644 $(INSTALL_UNIT).tmp
	mv -f $(INSTALL_UNIT).tmp $(INSTALL_UNIT)

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/percore $(DESTDIR)$(BINDIR)/percore-bench
	rm -f $(DESTDIR)$(MANDIR)/man1/percore.1 $(DESTDIR)$(MANDIR)/man1/percore-bench.1
	rm -f $(INSTALL_UNIT) $(INSTALL_DEFAULT)

# Static check of the unit (needs systemd-analyze, not a running systemd). The
# unit is generated pointing at the build tree, since verify wants ExecStart's
# binary to exist.
verify-unit: $(O)/percore
	@d=$$(mktemp -d) && \
	sed -e 's|@BINDIR@|$(CURDIR)/$(O)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
	    dist/percore.service > $$d/percore.service && \
	systemd-analyze verify --man=no $$d/percore.service; \
	rc=$$?; rm -rf $$d; [ $$rc -eq 0 ] && echo "percore.service: verify OK"; exit $$rc
