# ftpfwd: FTP forwarding through a running OpenSSH ControlMaster.

VERSION =	0.1
PROG =		ftpfwd
SRCS =		ftpfwd.c ftpparse.c ssh_mux.c
OBJS =		$(SRCS:.c=.o)

PREFIX ?=	/usr/local
BINDIR ?=	$(PREFIX)/bin
MANDIR ?=	$(PREFIX)/share/man

CC ?=		cc
PKG_CONFIG ?=	pkg-config
CFLAGS ?=	-O2 -g
WARNINGS =	-Wall -Wextra -Werror -Wshadow -Wpointer-arith \
		-Wmissing-prototypes -Wstrict-prototypes
DEPS_CFLAGS !=	$(PKG_CONFIG) --cflags libevent_core 2>/dev/null || true
DEPS_LIBS !=	$(PKG_CONFIG) --libs libevent_core 2>/dev/null || echo -levent_core
ALL_CFLAGS =	$(CFLAGS) $(WARNINGS) -D_GNU_SOURCE \
		-DFTPFWD_VERSION='"$(VERSION)"' $(DEPS_CFLAGS)

ifeq ($(SANITIZE),1)
CFLAGS +=	-fsanitize=address,undefined -fno-omit-frame-pointer
LDFLAGS +=	-fsanitize=address,undefined
endif

.PHONY: all clean check demo deps install uninstall lint

all: $(PROG)

$(PROG): $(OBJS)
	$(CC) $(LDFLAGS) -o $@ $(OBJS) $(DEPS_LIBS)

%.o: %.c ftpparse.h ssh_mux.h
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

t/test_ftpparse: t/test_ftpparse.c ftpparse.o ssh_mux.o
	$(CC) $(ALL_CFLAGS) -I. -o $@ t/test_ftpparse.c ftpparse.o ssh_mux.o \
	    $(LDFLAGS) $(DEPS_LIBS)

# Install what the lab and the tests need (Debian, as root); a no-op
# when everything is there.
deps:
	@sh t/deps.sh

check: deps $(PROG) t/test_ftpparse
	prove -e /usr/bin/python3 t/*.t

demo: deps $(PROG)
	/usr/bin/python3 t/demo.py

lint:
	mandoc -T lint -W warning man/ftpfwd.1

install: $(PROG)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 755 $(PROG) $(DESTDIR)$(BINDIR)/$(PROG)
	install -m 644 man/ftpfwd.1 $(DESTDIR)$(MANDIR)/man1/ftpfwd.1

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/$(PROG) $(DESTDIR)$(MANDIR)/man1/ftpfwd.1

clean:
	rm -f $(PROG) $(OBJS) t/test_ftpparse
