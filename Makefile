# Builds xpcd and xpcctl and installs them with their systemd units,
# tmpfiles.d entry, man pages and shell completions; docs/INSTALL.md has the
# layout. GNU make.
#
#   make                      bin/xpcd, bin/xpcctl, their man pages and completions
#   make install              into $(PREFIX) (/usr/local); DESTDIR=DIR stages under DIR
#   make uninstall            removes what install wrote (job and key directories only if empty)
#   make deb                  a Debian package, built from `make install PREFIX=/usr`
#
# install writes nothing outside $(DESTDIR) when it is set and never runs
# systemctl. The man pages and completions are written by the built binaries,
# so they are built for the machine that runs make.

GO ?= go
GOBUILDFLAGS ?= -trimpath
# Extra linker flags (packaging/deb/build strips with -s -w).
GOLDFLAGS ?=
# What --version prints when the toolchain recorded no version or commit
# (a build from a tarball, or with -buildvcs=false): from git when this is a
# checkout; a tarball's packager sets XPC_VERSION (and XPC_COMMIT) itself.
XPC_VERSION ?= $(shell git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null)
XPC_COMMIT ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)
XPC_MODIFIED ?= $(shell git rev-parse --verify -q HEAD >/dev/null 2>&1 && { git diff --quiet HEAD -- 2>/dev/null || echo true; })
BUILDINFO := github.com/goxpc/xpc/internal/buildinfo
STAMP := -X $(BUILDINFO).version=$(XPC_VERSION) -X $(BUILDINFO).commit=$(XPC_COMMIT) -X $(BUILDINFO).modified=$(XPC_MODIFIED)
BUILDDIR ?= bin

PREFIX ?= /usr/local
EXEC_PREFIX ?= $(PREFIX)
BINDIR ?= $(EXEC_PREFIX)/bin
LIBDIR ?= $(EXEC_PREFIX)/lib
DATADIR ?= $(PREFIX)/share
MANDIR ?= $(DATADIR)/man
SYSTEMDSYSTEMUNITDIR ?= $(LIBDIR)/systemd/system
SYSTEMDUSERUNITDIR ?= $(LIBDIR)/systemd/user
TMPFILESDIR ?= $(LIBDIR)/tmpfiles.d
BASHCOMPLETIONDIR ?= $(DATADIR)/bash-completion/completions
ZSHCOMPLETIONDIR ?= $(DATADIR)/zsh/site-functions
FISHCOMPLETIONDIR ?= $(DATADIR)/fish/vendor_completions.d
# polkit reads its actions from /usr/share/polkit-1/actions only.
POLKITACTIONSDIR ?= $(DATADIR)/polkit-1/actions
# xpcd reads its jobs and keys from /etc/xpc whatever PREFIX is
# (internal/bootstrap/paths.go, codesign.TrustDir).
SYSCONFDIR ?= /etc
XPCCONFDIR ?= $(SYSCONFDIR)/xpc

INSTALL ?= install
INSTALL_PROGRAM ?= $(INSTALL) -m 0755
INSTALL_DATA ?= $(INSTALL) -m 0644

# The Debian package (packaging/deb/build reads these).
VERSION ?=
MAINTAINER ?= goxpc developers <xpc@goxpc.invalid>
export VERSION MAINTAINER GOBUILDFLAGS

B := $(BUILDDIR)
UNITS_SYSTEM := $(notdir $(wildcard contrib/systemd/system/*.service contrib/systemd/system/*.socket))
UNITS_USER := $(notdir $(wildcard contrib/systemd/user/*.service contrib/systemd/user/*.socket))

.PHONY: all build man completions install uninstall deb clean FORCE

all: build man completions

build: $(B)/xpcd $(B)/xpcctl

# go decides what to rebuild: the binaries are always handed to it.
$(B)/xpcd $(B)/xpcctl: FORCE
	$(GO) build -C cmd $(GOBUILDFLAGS) -ldflags='$(GOLDFLAGS) $(STAMP)' -o $(abspath $@) ./$(notdir $@)

man: $(B)/xpcd $(B)/xpcctl
	rm -rf $(B)/man
	mkdir -p $(B)/man/man1 $(B)/man/man8
	$(B)/xpcctl gen-man $(B)/man/man1
	$(B)/xpcd --gen-man $(B)/man/man8

completions: $(B)/xpcctl
	mkdir -p $(B)/completions
	$(B)/xpcctl completion bash > $(B)/completions/xpcctl.bash
	$(B)/xpcctl completion zsh > $(B)/completions/_xpcctl
	$(B)/xpcctl completion fish > $(B)/completions/xpcctl.fish

install: all
	$(INSTALL) -d $(DESTDIR)$(BINDIR)
	$(INSTALL_PROGRAM) $(B)/xpcd $(B)/xpcctl $(DESTDIR)$(BINDIR)/
	$(INSTALL) -d $(DESTDIR)$(SYSTEMDSYSTEMUNITDIR) $(DESTDIR)$(SYSTEMDUSERUNITDIR)
	for u in $(UNITS_SYSTEM); do \
		sed 's#/usr/local/bin/xpcd#$(BINDIR)/xpcd#g' contrib/systemd/system/$$u > $(DESTDIR)$(SYSTEMDSYSTEMUNITDIR)/$$u && \
		chmod 0644 $(DESTDIR)$(SYSTEMDSYSTEMUNITDIR)/$$u || exit 1; \
	done
	for u in $(UNITS_USER); do \
		sed 's#/usr/local/bin/xpcd#$(BINDIR)/xpcd#g' contrib/systemd/user/$$u > $(DESTDIR)$(SYSTEMDUSERUNITDIR)/$$u && \
		chmod 0644 $(DESTDIR)$(SYSTEMDUSERUNITDIR)/$$u || exit 1; \
	done
	$(INSTALL) -d $(DESTDIR)$(TMPFILESDIR)
	$(INSTALL_DATA) contrib/tmpfiles.d/xpc.conf $(DESTDIR)$(TMPFILESDIR)/xpc.conf
	$(INSTALL) -d $(DESTDIR)$(POLKITACTIONSDIR)
	$(INSTALL_DATA) contrib/polkit/org.goxpc.xpcd.policy $(DESTDIR)$(POLKITACTIONSDIR)/org.goxpc.xpcd.policy
	$(INSTALL) -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man8
	$(INSTALL_DATA) $(B)/man/man1/*.1 $(DESTDIR)$(MANDIR)/man1/
	$(INSTALL_DATA) $(B)/man/man8/*.8 $(DESTDIR)$(MANDIR)/man8/
	$(INSTALL) -d $(DESTDIR)$(BASHCOMPLETIONDIR) $(DESTDIR)$(ZSHCOMPLETIONDIR) $(DESTDIR)$(FISHCOMPLETIONDIR)
	$(INSTALL_DATA) $(B)/completions/xpcctl.bash $(DESTDIR)$(BASHCOMPLETIONDIR)/xpcctl
	$(INSTALL_DATA) $(B)/completions/_xpcctl $(DESTDIR)$(ZSHCOMPLETIONDIR)/_xpcctl
	$(INSTALL_DATA) $(B)/completions/xpcctl.fish $(DESTDIR)$(FISHCOMPLETIONDIR)/xpcctl.fish
	$(INSTALL) -d -m 0755 $(DESTDIR)$(XPCCONFDIR)/LaunchDaemons $(DESTDIR)$(XPCCONFDIR)/LaunchAgents $(DESTDIR)$(XPCCONFDIR)/trust.d

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/xpcd $(DESTDIR)$(BINDIR)/xpcctl
	rm -f $(addprefix $(DESTDIR)$(SYSTEMDSYSTEMUNITDIR)/,$(UNITS_SYSTEM))
	rm -f $(addprefix $(DESTDIR)$(SYSTEMDUSERUNITDIR)/,$(UNITS_USER))
	rm -f $(DESTDIR)$(TMPFILESDIR)/xpc.conf
	rm -f $(DESTDIR)$(POLKITACTIONSDIR)/org.goxpc.xpcd.policy
	rm -f $(DESTDIR)$(MANDIR)/man1/xpcctl.1 $(DESTDIR)$(MANDIR)/man1/xpcctl-*.1 $(DESTDIR)$(MANDIR)/man8/xpcd.8
	rm -f $(DESTDIR)$(BASHCOMPLETIONDIR)/xpcctl $(DESTDIR)$(ZSHCOMPLETIONDIR)/_xpcctl $(DESTDIR)$(FISHCOMPLETIONDIR)/xpcctl.fish
	rmdir $(DESTDIR)$(XPCCONFDIR)/LaunchDaemons $(DESTDIR)$(XPCCONFDIR)/LaunchAgents $(DESTDIR)$(XPCCONFDIR)/trust.d $(DESTDIR)$(XPCCONFDIR) 2>/dev/null || true

# A static build (CGO_ENABLED=0): the package depends on nothing.
deb:
	CGO_ENABLED=0 ./packaging/deb/build $(B)

clean:
	rm -rf $(B)

FORCE:
