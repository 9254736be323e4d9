/*
 * ftpfwd: FTP forwarding through a running OpenSSH ControlMaster.
 *
 * Each FTP session's control connection goes to the FTP server through a
 * stdio forward of the master.  ftpfwd reads the control lines in both
 * directions and, for every data connection, asks the master for the
 * forward it needs: a stdio forward carrying the client's passive data
 * socket, or the session's remote forward that the server's active data
 * connections come back through, joined to the client with splice(2).
 * Either side may be in the other mode (ActiveMode, PassiveMode) and the
 * other address family: ftpfwd sets up the server's side itself before
 * it passes the transfer command on.  Only with TLS on a side (tls.c) do
 * data bytes pass through user space.
 *
 * This file: the command line, the -o keywords, and the start-up order.
 * README's "Layout" says which file owns what.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <unistd.h>

#include <event2/event.h>

#include "ftpfwd.h"
#include "peeruid.h"
#include "tls.h"

struct options		 opt;
struct event_base	*evbase;

/* -L and -W as given, read once -o Backend is known wherever it came. */
static const char	*listen_specs[MAX_LISTENERS];
static int		 nlisten_specs;
static const char	*stdio_spec;
static char		*password_file;

/* A keyword's value, by name; the list ends with a NULL name. */
struct choice {
	const char	*name;
	int		 value;
};

static const struct choice act_modes[] = {
	{ "auto", AM_AUTO }, { "forward", AM_FORWARD },
	{ "passive", AM_PASSIVE }, { "off", AM_OFF }, { NULL, 0 }
};
static const struct choice pasv_modes[] = {
	{ "forward", PM_FORWARD }, { "active", PM_ACTIVE }, { NULL, 0 }
};
static const struct choice pasv_addrs[] = {
	{ "ignore", 0 }, { "trust", 1 }, { NULL, 0 }
};
static const struct choice backends[] = {
	{ "ftp", BACKEND_FTP }, { "sftp", BACKEND_SFTP }, { NULL, 0 }
};
static const struct choice yes_no[] = {
	{ "yes", 1 }, { "no", 0 }, { NULL, 0 }
};
static const struct choice tls_modes[] = {
	{ "off", TLS_OFF }, { "no", TLS_OFF }, { "explicit", TLS_EXPLICIT },
	{ "implicit", TLS_IMPLICIT }, { NULL, 0 }
};
static const struct choice loglevels[] = {
	{ "QUIET", LL_QUIET }, { "FATAL", LL_FATAL }, { "ERROR", LL_ERROR },
	{ "INFO", LL_INFO }, { "VERBOSE", LL_VERBOSE },
	{ "DEBUG", LL_DEBUG1 }, { "DEBUG1", LL_DEBUG1 },
	{ "DEBUG2", LL_DEBUG2 }, { "DEBUG3", LL_DEBUG3 }, { NULL, 0 }
};
/* SyslogFacility, as ssh_config names them. */
static const struct choice facilities[] = {
	{ "DAEMON", LOG_DAEMON }, { "USER", LOG_USER }, { "AUTH", LOG_AUTH },
	{ "LOCAL0", LOG_LOCAL0 }, { "LOCAL1", LOG_LOCAL1 },
	{ "LOCAL2", LOG_LOCAL2 }, { "LOCAL3", LOG_LOCAL3 },
	{ "LOCAL4", LOG_LOCAL4 }, { "LOCAL5", LOG_LOCAL5 },
	{ "LOCAL6", LOG_LOCAL6 }, { "LOCAL7", LOG_LOCAL7 }, { NULL, 0 }
};

enum kw_type { KW_STRING, KW_CHOICE, KW_UINT, KW_FUNC };

/*
 * The -o keywords, as ssh's readconf.c keeps its own: where each value
 * goes, and what it may be.  A choice's error says "must be" followed by
 * expect, or, with KW_UNKNOWN, names the value as unknown.
 */
#define KW_UNKNOWN	0x01
#define KW_STR(name, where) \
	{ name, KW_STRING, where, NULL, 0, 0, NULL, 0, NULL, NULL }
#define KW_ONE(name, where, choices, expect) \
	{ name, KW_CHOICE, where, choices, 0, 0, expect, 0, NULL, NULL }
#define KW_NUM(name, where, min, max, expect) \
	{ name, KW_UINT, where, NULL, min, max, expect, 0, NULL, NULL }
#define KW_FN(name, parse) \
	{ name, KW_FUNC, NULL, NULL, 0, 0, NULL, 0, NULL, parse }
static const struct keyword {
	const char		*name;
	enum kw_type		 type;
	void			*where;		/* char **, int *, u_int * */
	const struct choice	*choices;
	unsigned long		 min, max;	/* KW_UINT */
	const char		*expect;
	int			 flags;
	int			*set;		/* set to 1 when given */
	void			(*parse)(const char *);	/* KW_FUNC */
} keywords[] = {
	KW_STR("ActiveBindAddress", &opt.active_bind),
	KW_ONE("ActiveMode", &opt.act_mode, act_modes,
	    "forward, passive, auto or off"),
	KW_ONE("PassiveMode", &opt.pasv_mode, pasv_modes, "forward or active"),
	KW_ONE("PasvAddress", &opt.pasv_trust, pasv_addrs, "ignore or trust"),
	KW_NUM("MaxSessions", &opt.max_sessions, 1, 100000, "1 to 100000"),
	KW_NUM("IdleTimeout", &opt.idle_timeout, 0, 86400 * 365,
	    "a number of seconds"),
	{ "LogLevel", KW_CHOICE, &opt.loglevel, loglevels, 0, 0,
	    "QUIET, FATAL, ERROR, INFO, VERBOSE, DEBUG1 to DEBUG3",
	    KW_UNKNOWN, &opt.loglevel_set, NULL },
	KW_FN("LocalUsers", access_parse),
	KW_ONE("ExitWithMaster", &opt.exit_with_master, yes_no, "yes or no"),
	KW_ONE("TcpNoDelay", &opt.tcp_nodelay, yes_no, "yes or no"),
	KW_ONE("StartMaster", &opt.start_master, yes_no, "yes or no"),
	{ "SyslogFacility", KW_CHOICE, &opt.facility, facilities, 0, 0,
	    "DAEMON, USER, AUTH, LOCAL0 to LOCAL7", KW_UNKNOWN, NULL, NULL },
	KW_ONE("UpstreamTLS", &opt.up_tls, tls_modes,
	    "off, explicit or implicit"),
	KW_ONE("ClientTLS", &opt.cl_tls, tls_modes,
	    "off, explicit or implicit"),
	KW_ONE("UpstreamVerify", &opt.up_verify, yes_no, "yes or no"),
	KW_STR("UpstreamCAFile", &opt.up_cafile),
	KW_STR("UpstreamServerName", &opt.up_name),
	KW_STR("ClientCertificate", &opt.cl_cert),
	KW_STR("ClientKey", &opt.cl_key),
	KW_ONE("Backend", &opt.backend, backends, "ftp or sftp"),
	KW_STR("PasswordFile", &password_file),
};

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr,
	    "usage: ftpfwd [-46dfhqvV] [-E log_file] "
	    "[-L [bind_address:]port[:host:hostport]]...\n"
	    "              [-W host:port | -W sftp] [-S ctl_path] "
	    "[-F ssh_config]\n              "
	    "[-o option=value]...\n"
	    "              [destination]\n");
	exit(EXIT_USAGE);
}

/* Split on ':' outside brackets, as ssh's -L does. */
static int
split_colons(char *s, char **fields, int max)
{
	int	n = 0, depth = 0;

	fields[n++] = s;
	for (; *s != '\0'; s++) {
		if (*s == '[')
			depth++;
		else if (*s == ']')
			depth--;
		else if (*s == ':' && depth == 0) {
			if (n == max)
				return -1;
			*s = '\0';
			fields[n++] = s + 1;
		}
	}
	return depth == 0 ? n : -1;
}


static char *
unbracket(char *s)
{
	size_t	len = strlen(s);

	if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
		s[len - 1] = '\0';
		return s + 1;
	}
	return s;
}


static int
parse_port_str(const char *s, int zero_ok, uint16_t *portp)
{
	unsigned long	v;

	if (ftp_parse_uint(s, strlen(s), 65535, &v) == -1 ||
	    (v == 0 && !zero_ok))
		return -1;
	*portp = (uint16_t)v;
	return 0;
}


static void
parse_forward(const char *spec, struct forward *f, int is_w)
{
	char	*copy, *fld[4], *bind = NULL, *host;
	int	 n, i = 0;

	copy = xstrdup(spec);
	n = split_colons(copy, fld, 4);
	if (is_w ? n != 2 : (n != 3 && n != 4))
		fatalx("bad %s specification \"%s\" (expected %s)",
		    is_w ? "-W" : "-L", spec, is_w ? "host:port" :
		    "[bind_address:]port:host:hostport");
	memset(f, 0, sizeof(*f));
	f->claim_fd = -1;
	if (!is_w) {
		if (n == 4) {
			bind = unbracket(fld[i++]);
			if (*bind == '\0' || strcmp(bind, "*") == 0)
				bind = NULL;
		} else
			bind = "127.0.0.1";
		if (parse_port_str(fld[i++], 1, &f->bind_port) == -1)
			fatalx("bad listen port in -L %s", spec);
		if (bind != NULL)
			f->bind_host = xstrdup(bind);
	}
	host = unbracket(fld[i++]);
	if (*host == '\0' || strlen(host) >= NI_MAXHOST)
		fatalx("bad host in %s %s", is_w ? "-W" : "-L", spec);
	f->host = xstrdup(host);
	if (parse_port_str(fld[i], 0, &f->port) == -1)
		fatalx("bad port \"%s\" in %s %s (1 to 65535)",
		    fld[i], is_w ? "-W" : "-L", spec);
	free(copy);
}


/* Backend=sftp's -L: [bind_address:]port, and nothing behind it. */
static void
parse_sftp_listen(const char *spec, struct forward *f)
{
	char	*copy, *fld[4], *bind = "127.0.0.1";
	int	 n;

	copy = xstrdup(spec);
	n = split_colons(copy, fld, 4);
	if (n > 2)
		fatalx("-L %s names an FTP server, but Backend=sftp has none "
		    "(use -L [bind_address:]port)", spec);
	memset(f, 0, sizeof(*f));
	f->claim_fd = -1;
	if (n == 2) {
		bind = unbracket(fld[0]);
		if (*bind == '\0' || strcmp(bind, "*") == 0)
			bind = NULL;
	}
	if (parse_port_str(fld[n - 1], 1, &f->bind_port) == -1)
		fatalx("bad listen port in -L %s", spec);
	if (bind != NULL)
		f->bind_host = xstrdup(bind);
	f->host = xstrdup("sftp");
	free(copy);
}

/* Does a listener on host (NULL: every address) reach past loopback? */
static int
beyond_loopback(const char *host)
{
	struct addrinfo		 hints, *res, *ai;
	const struct sockaddr_in *sin;
	int			 beyond = 0;

	if (host == NULL)
		return 1;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	if (getaddrinfo(host, NULL, &hints, &res) != 0)
		return 1;	/* bind says why later; refuse to guess */
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		sin = (const struct sockaddr_in *)ai->ai_addr;
		if (ai->ai_family == AF_INET)
			beyond |= (ntohl(sin->sin_addr.s_addr) >> 24) != 127;
		else if (ai->ai_family == AF_INET6)
			beyond |= !IN6_IS_ADDR_LOOPBACK(&((const struct
			    sockaddr_in6 *)ai->ai_addr)->sin6_addr);
		else
			beyond = 1;
	}
	freeaddrinfo(res);
	return beyond;
}

/*
 * PasswordFile: the one password FTP clients must give.  Anyone who
 * can read it can act as the ssh user, so nobody else may.
 */
static void
password_load(void)
{
	char		 line[FTP_LINE_MAX];
	struct stat	 st;
	FILE		*fp;

	if ((fp = fopen(password_file, "re")) == NULL)
		fatal("PasswordFile %s", password_file);
	if (fstat(fileno(fp), &st) == -1)
		fatal("PasswordFile %s", password_file);
	if (st.st_mode & 077)
		fatalx("PasswordFile %s: mode %04o lets other users read it "
		    "(chmod 600 %s)", password_file,
		    (unsigned int)(st.st_mode & 07777), password_file);
	if (fgets(line, sizeof(line), fp) == NULL)
		line[0] = '\0';
	fclose(fp);
	line[strcspn(line, "\r\n")] = '\0';
	if (line[0] == '\0')
		fatalx("PasswordFile %s: its first line is empty", password_file);
	opt.password = xstrdup(line);
	explicit_bzero(line, sizeof(line));
}

/* -L and -W, as the backend reads them. */
static void
forwards_parse(void)
{
	int	i, sftp_w = stdio_spec != NULL && strcmp(stdio_spec, "sftp") == 0;

	if (sftp_w && opt.backend == BACKEND_FTP)
		fatalx("-W sftp serves from sftp, but -o Backend=ftp was given "
		    "(use -W host:port, or Backend=sftp)");
	if (opt.backend == -1)
		opt.backend = sftp_w ? BACKEND_SFTP : BACKEND_FTP;
	if (opt.backend == BACKEND_FTP) {
		for (i = 0; i < nlisten_specs; i++)
			parse_forward(listen_specs[i], &opt.fwds[opt.nfwds++],
			    0);
		if (stdio_spec != NULL)
			parse_forward(stdio_spec, &opt.stdio_fwd, 1);
		if (!opt.stdio_mode && opt.nfwds == 0)
			parse_forward(DEFAULT_FORWARD,
			    &opt.fwds[opt.nfwds++], 0);
		if (password_file != NULL)
			fatalx("PasswordFile is for Backend=sftp: an FTP "
			    "server checks its own passwords");
		return;
	}
	if (opt.up_tls != TLS_OFF)
		fatalx("UpstreamTLS is for Backend=ftp: with Backend=sftp "
		    "there is no FTP server to speak TLS to");
	if (stdio_spec != NULL && !sftp_w)
		fatalx("-W %s names an FTP server, but Backend=sftp has none "
		    "(use -W sftp)", stdio_spec);
	if (stdio_spec != NULL)
		parse_sftp_listen("0", &opt.stdio_fwd);
	for (i = 0; i < nlisten_specs; i++)
		parse_sftp_listen(listen_specs[i], &opt.fwds[opt.nfwds++]);
	if (!opt.stdio_mode && opt.nfwds == 0)
		parse_sftp_listen(DEFAULT_SFTP_LISTEN, &opt.fwds[opt.nfwds++]);
	if (password_file != NULL)
		password_load();
	for (i = 0; i < opt.nfwds && opt.password == NULL; i++)
		if (beyond_loopback(opt.fwds[i].bind_host))
			fatalx("-L %s:%u listens beyond this machine: with "
			    "Backend=sftp anyone who reaches it acts as the ssh "
			    "user, so it needs -o PasswordFile=path",
			    opt.fwds[i].bind_host != NULL ?
			    opt.fwds[i].bind_host : "*",
			    opt.fwds[i].bind_port);
}

/*
 * Where f's remote forwards listen on the ssh server, and so the address
 * its FTP server is sent in PORT/EPRT: ActiveBindAddress, else loopback
 * in the family of the FTP server's address (::1 for an IPv6 literal).
 */
static void
forward_active(struct forward *f)
{
	struct addrinfo	 hints, *res;
	const char	*where = opt.active_bind;
	int		 e;

	if (where == NULL)
		where = strchr(f->host, ':') != NULL ? "::1" : "127.0.0.1";
	memset(&hints, 0, sizeof(hints));
	hints.ai_flags = AI_NUMERICHOST;
	if ((e = getaddrinfo(where, NULL, &hints, &res)) != 0)
		fatalx("ActiveBindAddress must be a numeric address, "
		    "not \"%s\": %s", where, gai_strerror(e));
	memcpy(&f->act_addr, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	f->act_bind = xstrdup(where);
}


static void
keyword_set(const struct keyword *k, const char *value)
{
	const struct choice	*c;
	unsigned long		 v;

	switch (k->type) {
	case KW_FUNC:
		k->parse(value);
		break;
	case KW_STRING:
		free(*(char **)k->where);
		*(char **)k->where = xstrdup(value);
		break;
	case KW_UINT:
		if (ftp_parse_uint(value, strlen(value), k->max, &v) == -1 ||
		    v < k->min)
			fatalx("%s must be %s, not \"%s\"", k->name, k->expect,
			    value);
		*(u_int *)k->where = (u_int)v;
		break;
	case KW_CHOICE:
		for (c = k->choices; c->name != NULL; c++)
			if (strcasecmp(value, c->name) == 0)
				break;
		if (c->name == NULL && (k->flags & KW_UNKNOWN))
			fatalx("unknown %s \"%s\" (%s)", k->name, value,
			    k->expect);
		if (c->name == NULL)
			fatalx("%s must be %s, not \"%s\"", k->name, k->expect,
			    value);
		*(int *)k->where = c->value;
		break;
	}
	if (k->set != NULL)
		*k->set = 1;
}

/* -o Name=value (or "Name value"), keywords in any case as ssh's. */
static void
parse_option(const char *arg)
{
	char		 name[OPT_NAME_MAX];
	const char	*eq;
	size_t		 nlen, i;

	if ((eq = strpbrk(arg, "= ")) == NULL || (nlen = (size_t)(eq - arg)) ==
	    0 || nlen >= sizeof(name))
		fatalx("bad option \"%s\" (expected Name=value)", arg);
	memcpy(name, arg, nlen);
	name[nlen] = '\0';
	for (i = 0; i < nitems(keywords); i++)
		if (strcasecmp(name, keywords[i].name) == 0) {
			keyword_set(&keywords[i], eq + 1);
			return;
		}
	fatalx("unknown option \"%s\"", name);
}

static void
daemonize(void)
{
	pid_t	pid;
	int	fd;

	fflush(stderr);
	if ((pid = fork()) == -1)
		fatal("fork");
	if (pid != 0)
		_exit(0);
	if (setsid() == -1)
		fatal("setsid");
	if (chdir("/") == -1)
		logit(LL_ERROR, "chdir /: %s", strerror(errno));
	if ((fd = open("/dev/null", O_RDWR)) != -1) {
		(void)dup2(fd, STDIN_FILENO);
		(void)dup2(fd, STDOUT_FILENO);
		(void)dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	log_to_syslog();
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	(void)arg;
	if (sig == SIGUSR1) {
		session_status();
		return;
	}
	logit(LL_INFO, "%s, exiting", strsignal((int)sig));
	shutdown_all("421 ftpfwd: shutting down");
}

static void
parse_args(int argc, char *argv[])
{
	int	ch, verbose = 0, debug = 0, quiet = 0;

	while ((ch = getopt(argc, argv, "46dfqvVhE:L:W:S:F:o:")) != -1) {
		switch (ch) {
		case '4':
			opt.family = AF_INET;
			break;
		case '6':
			opt.family = AF_INET6;
			break;
		case 'd':
			debug = 1;
			break;
		case 'E':
			opt.log_file = optarg;
			break;
		case 'f':
			opt.daemonize = 1;
			break;
		case 'q':
			quiet = 1;
			break;
		case 'v':
			verbose++;
			break;
		case 'V':
			printf("ftpfwd %s\n", FTPFWD_VERSION);
			exit(0);
		case 'L':
			if (nlisten_specs == MAX_LISTENERS)
				fatalx("too many -L (at most %d)",
				    MAX_LISTENERS);
			listen_specs[nlisten_specs++] = optarg;
			break;
		case 'W':
			stdio_spec = optarg;
			opt.stdio_mode = 1;
			break;
		case 'S':
			opt.ctl_path = optarg;
			break;
		case 'F':
			opt.ssh_config = optarg;
			break;
		case 'o':
			parse_option(optarg);
			break;
		default:
			usage();
		}
	}
	if (!opt.loglevel_set) {
		if (quiet)
			opt.loglevel = LL_ERROR;
		if (debug)
			opt.loglevel = LL_DEBUG1;
		while (verbose-- > 0 && opt.loglevel < LL_DEBUG3)
			opt.loglevel++;
	}
	if (debug)
		opt.daemonize = 0;
}

/* What the options leave to be decided, and checked together. */
static void
options_finish(int argc, char *argv[])
{
	int	i;

	if (argc > 1)
		usage();
	if (argc == 1)
		opt.destination = argv[0];
	if (opt.ctl_path == NULL && opt.destination == NULL) {
		fprintf(stderr, "ftpfwd: need a destination or -S ctl_path\n");
		usage();
	}
	if (opt.stdio_mode && (nlisten_specs > 0 || opt.daemonize))
		fatalx("-W cannot be combined with -L or -f");
	if (opt.exit_with_master == -1)
		opt.exit_with_master = opt.daemonize;
	forwards_parse();
	for (i = 0; i < opt.nfwds; i++)
		forward_active(&opt.fwds[i]);
	if (opt.stdio_mode)
		forward_active(&opt.stdio_fwd);
}

static void
tls_setup(void)
{
	char	err[ERR_MAX];

	if (opt.up_tls != TLS_OFF) {
		if (tls_upstream_init(opt.up_cafile, opt.up_verify, err,
		    sizeof(err)) == -1)
			fatalx("UpstreamTLS: %s", err);
		if (!opt.up_verify)
			logit(LL_ERROR, "WARNING: UpstreamVerify=no: the FTP "
			    "server's certificate is not checked, so anyone "
			    "between the ssh server and the FTP server can "
			    "read and change the session");
	}
	if (opt.cl_tls != TLS_OFF) {
		if (opt.cl_cert == NULL || opt.cl_key == NULL)
			fatalx("ClientTLS needs -o ClientCertificate=file and "
			    "-o ClientKey=file");
		if (tls_client_init(opt.cl_cert, opt.cl_key, err,
		    sizeof(err)) == -1)
			fatalx("ClientTLS: %s", err);
	}
}

/* The loop, once forked: signals, listeners, the master watch. */
static void
serve(void)
{
	static const int	 sigs[] = { SIGTERM, SIGINT, SIGUSR1 };
	struct event		*sigev[nitems(sigs)];
	size_t			 i;

	atexit(rundir_remove);
	/* Made now, so its lock says at once that we live (rundir.c). */
	if (rundir_get() == NULL)
		logit(LL_ERROR, "cannot make a private directory in TMPDIR: "
		    "%s", strerror(errno));
	peer_uid_probe();
	/* After the fork: an epoll set must not be shared with a parent. */
	if ((evbase = event_base_new()) == NULL)
		fatalx("cannot start libevent");
	listeners_start();
	for (i = 0; i < nitems(sigs); i++)
		if ((sigev[i] = evsignal_new(evbase, sigs[i], signal_cb,
		    NULL)) == NULL || event_add(sigev[i], NULL) != 0)
			fatalx("cannot catch signals");
	master_watch_start();
	if (opt.stdio_mode)
		stdio_session_start();
	else
		logit(LL_INFO, "ready, master at %s", opt.ctl_path);
	event_base_dispatch(evbase);
	for (i = 0; i < nitems(sigs); i++)
		event_free(sigev[i]);
	listeners_free();
}

/*
 * Descriptors 0 to 2 open, so that no log file or listener lands there
 * and is clobbered by daemonize()'s /dev/null.
 */
static void
sanitise_stdfd(void)
{
	int	fd;

	while ((fd = open("/dev/null", O_RDWR)) != -1 && fd <= STDERR_FILENO)
		;
	if (fd == -1)
		fatal("/dev/null");
	close(fd);
}

int
main(int argc, char *argv[])
{
	sanitise_stdfd();
	opt.family = AF_UNSPEC;
	opt.max_sessions = DEFAULT_MAX_SESSIONS;
	opt.idle_timeout = DEFAULT_IDLE_TIMEOUT;
	opt.exit_with_master = -1;
	opt.tcp_nodelay = 1;
	opt.up_verify = 1;
	opt.facility = LOG_DAEMON;
	opt.loglevel = LL_INFO;
	opt.stdio_fwd.claim_fd = -1;
	opt.backend = -1;

	access_parse("self");
	parse_args(argc, argv);
	options_finish(argc - optind, argv + optind);
	log_init();
	tls_setup();
	if (opt.ctl_path == NULL)
		opt.ctl_path = master_lookup_path(1);
	else if (opt.backend == BACKEND_SFTP && opt.destination != NULL)
		free(master_lookup_path(0));	/* the user and host, for 230 */
	master_check(!opt.daemonize);
	listeners_bind();
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	if (opt.daemonize)
		daemonize();
	serve();
	return 0;
}
