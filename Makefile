# ftpfwd: FTP forwarding through a running OpenSSH ControlMaster.

VERSION =	0.1
# The release's date, set with VERSION: the man page's .Dd (written in
# at install, the tree's page says $Mdocdate$) and the package's
# debian/changelog (written by make deb) both come from here.
DATE =		2026-11-25
PROG =		ftpfwd
SRCS =		ftpfwd.c log.c access.c addr.c listener.c master.c session.c ctl.c \
		ftps.c data.c passive.c active.c xlate.c rundir.c writenow.c \
		fifo.c ftpparse.c ssh_mux.c join.c tls.c sockdiag.c peeruid.c \
		sftpd.c sftpfile.c sftpdata.c sftpxfer.c sftpstor.c sftplist.c \
		sftpcache.c sftp.c \
		sftpchan.c sftppool.c
OBJS =		$(SRCS:.c=.o)

PREFIX ?=	/usr/local
BINDIR ?=	$(PREFIX)/bin
MANDIR ?=	$(PREFIX)/share/man
# systemd user units, where this system has systemd: $(PREFIX)/lib/systemd/user
# is on a user manager's search path for /usr and /usr/local alike.
HAVE_SYSTEMD !=	test -d /usr/lib/systemd/user && echo yes || true
USERUNITDIR ?=	$(if $(HAVE_SYSTEMD),$(PREFIX)/lib/systemd/user)
MANDATE =	$(shell LC_ALL=C date -u -d $(DATE) '+%B %-d, %Y')

CC ?=		cc
PKG_CONFIG ?=	pkg-config
CFLAGS ?=	-O2 -g
WARNINGS =	-Wall -Wextra -Werror -Wshadow -Wpointer-arith \
		-Wmissing-prototypes -Wstrict-prototypes
DEPS_CFLAGS !=	$(PKG_CONFIG) --cflags libevent_core libevent_openssl openssl \
		    2>/dev/null || true
DEPS_LIBS !=	$(PKG_CONFIG) --libs libevent_core libevent_openssl openssl \
		    2>/dev/null || echo -levent_core -levent_openssl -lssl -lcrypto
ALL_CFLAGS =	$(CFLAGS) $(WARNINGS) -D_GNU_SOURCE \
		-DFTPFWD_VERSION='"$(VERSION)"' $(DEPS_CFLAGS)

ifeq ($(SANITIZE),1)
CFLAGS +=	-fsanitize=address,undefined -fno-sanitize-recover=all \
		-fno-omit-frame-pointer
LDFLAGS +=	-fsanitize=address,undefined
endif

# libFuzzer harnesses (t/fuzz.c), one per parser entry point, one for the
# mux reply decoder, one each for the sockdiag decoders and one for the
# SFTP codec, with ASan and UBSan.
FUZZ_TARGETS =	cmd port eprt 227 229 reply mux sockdiag procnet sftp
FUZZ_BINS =	$(FUZZ_TARGETS:%=t/fuzz-%)
FUZZ_SECONDS ?=	30
FUZZ_CC ?=	clang
FUZZ_CFLAGS =	-g -O1 -fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=undefined -D_GNU_SOURCE $(DEPS_CFLAGS)

.PHONY: all bench clean check demo deps dist install uninstall lint fuzz \
	fuzzers FORCE soak

all: $(PROG)

$(PROG): $(OBJS)
	$(CC) $(LDFLAGS) -o $@ $(OBJS) $(DEPS_LIBS)

# Rebuild everything when the flags change (make check SANITIZE=1 after a
# plain build must not reuse plain objects).
.build-flags: FORCE
	@echo '$(CC) $(ALL_CFLAGS) $(LDFLAGS)' | cmp -s - $@ || \
	    echo '$(CC) $(ALL_CFLAGS) $(LDFLAGS)' > $@
FORCE:

%.o: %.c ftpfwd.h fifo.h ftpparse.h ssh_mux.h join.h tls.h .build-flags
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

t/test_ftpparse: t/test_ftpparse.c ftpparse.o ssh_mux.o fifo.o .build-flags
	$(CC) $(ALL_CFLAGS) -I. -o $@ t/test_ftpparse.c ftpparse.o ssh_mux.o fifo.o \
	    $(LDFLAGS) $(DEPS_LIBS)

# Who owns a local client's socket (sock_diag, /proc/net/tcp): the codec
# and its I/O, tested against this machine's kernel.
sockdiag.o peeruid.o: sockdiag.h peeruid.h

t/test_sockdiag: t/test_sockdiag.c t/tap.h sockdiag.o peeruid.o .build-flags
	$(CC) $(ALL_CFLAGS) -I. -o $@ t/test_sockdiag.c sockdiag.o peeruid.o \
	    $(LDFLAGS)

# The SFTP v3 codec (issue 14): pure, tested alone and against this
# machine's sftp-server.
sftp.o: sftp.h

t/test_sftp: t/test_sftp.c t/tap.h sftp.o .build-flags
	$(CC) $(ALL_CFLAGS) -I. -o $@ t/test_sftp.c sftp.o $(LDFLAGS)

# The SFTP channels over the master (sftpchan.c), tested through the
# lab's real one by t/14-sftpchan.t.
sftpchan.o sftppool.o: sftp.h sftpchan.h sftpchan_impl.h ssh_mux.h

t/sftpchan_probe: t/sftpchan_probe.c sftpchan.o sftppool.o sftp.o ssh_mux.o \
    .build-flags
	$(CC) $(ALL_CFLAGS) -I. -o $@ t/sftpchan_probe.c sftpchan.o \
	    sftppool.o sftp.o ssh_mux.o $(LDFLAGS) $(DEPS_LIBS)

t/fuzz-%: t/fuzz.c t/tap.h ftpparse.c ssh_mux.c sockdiag.c ftpparse.h ssh_mux.h \
    sockdiag.h sftp.c sftp.h
	$(FUZZ_CC) $(FUZZ_CFLAGS) -DFUZZ_TARGET_$* -I. -o $@ t/fuzz.c \
	    ftpparse.c ssh_mux.c sockdiag.c sftp.c $(DEPS_LIBS)

fuzzers: $(FUZZ_BINS)

# Run every harness for FUZZ_SECONDS each (make fuzz FUZZ_SECONDS=600).
fuzz: $(FUZZ_BINS)
	FUZZ_SECONDS=$(FUZZ_SECONDS) prove -v -e /usr/bin/python3 t/60-fuzz.t

# The long stamina run: 5,000 transfers across 20 sessions.
soak: deps $(PROG)
	SOAK_TRANSFERS=5000 prove -v -e /usr/bin/python3 t/90-soak.t

# ftpfwd against the raw ssh stream and sftp, side by side (README has a
# run's table).  A benchmark: it prints PASS/MISS and never fails a build.
bench: deps $(PROG)
	/usr/bin/python3 bench/bench.py

# Install what the lab and the tests need (Debian, as root); a no-op
# when everything is there.
deps:
	@sh t/deps.sh

check: deps $(PROG) t/test_ftpparse t/test_sockdiag t/test_sftp \
    t/sftpchan_probe $(FUZZ_BINS)
	FUZZ_SECONDS=$(FUZZ_SECONDS) FTPFWD_SANITIZED=$(SANITIZE) \
	    prove -e /usr/bin/python3 t/*.t

demo: deps $(PROG)
	/usr/bin/python3 t/demo.py

lint:
	mandoc -T lint -W warning man/ftpfwd.1

install: $(PROG) $(if $(USERUNITDIR),install-units)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 755 $(PROG) $(DESTDIR)$(BINDIR)/$(PROG)
	sed 's/^\.Dd .*/.Dd $(MANDATE)/' man/ftpfwd.1 \
	    > $(DESTDIR)$(MANDIR)/man1/ftpfwd.1
	chmod 644 $(DESTDIR)$(MANDIR)/man1/ftpfwd.1

# The service's ExecStart names the ftpfwd installed here.
.PHONY: install-units uninstall-units
install-units:
	install -d $(DESTDIR)$(USERUNITDIR)
	sed 's,@BINDIR@,$(BINDIR),' systemd/ftpfwd@.service.in \
	    > $(DESTDIR)$(USERUNITDIR)/ftpfwd@.service
	chmod 644 $(DESTDIR)$(USERUNITDIR)/ftpfwd@.service
	install -m 644 systemd/ftpfwd@.socket $(DESTDIR)$(USERUNITDIR)/

uninstall-units:
	rm -f $(DESTDIR)$(USERUNITDIR)/ftpfwd@.service \
	    $(DESTDIR)$(USERUNITDIR)/ftpfwd@.socket

# A Debian package, ftpfwd_$(VERSION)_ARCH.deb in DEBDIR, built by
# dpkg-buildpackage from debian/ in a copy of the tree, with its
# debian/changelog written from VERSION and DATE (debian/mkdeb.sh says
# why a copy).  Installs the Debian packages it lacks, as make check does.
DEBDIR ?=	.
.PHONY: deb
deb:
	@sh t/deps.sh deb
	sh debian/mkdeb.sh $(VERSION) $(DATE) $(DEBDIR)

# A tarball of what git tracks, which builds and tests on its own.
DIST =		$(PROG)-$(VERSION)
dist:
	git archive --format=tar.gz --prefix=$(DIST)/ -o $(DIST).tar.gz HEAD
	@echo $(DIST).tar.gz

uninstall: $(if $(USERUNITDIR),uninstall-units)
	rm -f $(DESTDIR)$(BINDIR)/$(PROG) $(DESTDIR)$(MANDIR)/man1/ftpfwd.1

clean:
	rm -f $(PROG) $(OBJS) t/test_ftpparse $(FUZZ_BINS) .build-flags \
	    sockdiag.o peeruid.o t/test_sockdiag \
	    sftp.o t/test_sftp sftpchan.o sftppool.o t/sftpchan_probe \
	    $(PROG)-*.tar.gz
