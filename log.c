/*
 * log.c: where ftpfwd's messages go.  Standard error until -f has forked,
 * syslog after it, or the file of -E all along, as ssh and sshd do it.  A
 * fatal error is logged wherever the log goes, and also to standard error
 * while that is still the user's terminal, so that it is never lost.
 */

#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <event2/event.h>

#include "ftpfwd.h"

static enum { SINK_STDERR, SINK_SYSLOG, SINK_FILE } log_sink = SINK_STDERR;
static FILE	*log_fp;
static int	 log_detached;	/* stderr is /dev/null now */

static void	log_libevent(int, const char *);
static void	log_libevent_fatal(int);

/*
 * -E: append to the file from now on, before anything is forked.  And
 * libevent's own messages go where ours go: its worst ones come just
 * before it exits, and would otherwise reach a stderr that is
 * /dev/null once -f has forked.
 */
void
log_init(void)
{
	int	fd;

	event_set_log_callback(log_libevent);
	event_set_fatal_callback(log_libevent_fatal);
	if (opt.log_file == NULL)
		return;
	if ((fd = open(opt.log_file, O_WRONLY | O_APPEND | O_CREAT |
	    O_CLOEXEC, 0600)) == -1)
		fatal("cannot open the log file %s", opt.log_file);
	if ((log_fp = fdopen(fd, "a")) == NULL)
		fatal("cannot open the log file %s", opt.log_file);
	setvbuf(log_fp, NULL, _IOLBF, 0);
	log_sink = SINK_FILE;
}

/* Daemonized: syslog, unless -E named a file. */
void
log_to_syslog(void)
{
	log_detached = 1;
	if (log_sink == SINK_FILE)
		return;
	openlog("ftpfwd", LOG_PID | LOG_NDELAY, opt.facility);
	log_sink = SINK_SYSLOG;
}

static void
log_line(enum loglevel level, const char *line)
{
	int	prio;

	switch (log_sink) {
	case SINK_SYSLOG:
		if (level == LL_FATAL)
			prio = LOG_CRIT;
		else if (level <= LL_ERROR)
			prio = LOG_ERR;
		else if (level <= LL_VERBOSE)
			prio = LOG_INFO;
		else
			prio = LOG_DEBUG;
		syslog(prio, "%s", line);
		break;
	case SINK_FILE:
		fprintf(log_fp, "ftpfwd[%ld]: %s%s\n", (long)getpid(),
		    level == LL_FATAL ? "fatal: " : "", line);
		break;
	case SINK_STDERR:
		fprintf(stderr, "ftpfwd: %s\n", line);
		break;
	}
}

void
logit(enum loglevel level, const char *fmt, ...)
{
	char	line[LOG_LINE_MAX];
	va_list	ap;

	if (level > opt.loglevel)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_line(level, line);
}

static void __attribute__((noreturn))
fatal_exit(int status, const char *line)
{
	log_line(LL_FATAL, line);
	if (log_sink != SINK_STDERR && !log_detached)
		fprintf(stderr, "ftpfwd: %s\n", line);
	exit(status);
}

static void
log_libevent(int severity, const char *msg)
{
	char	line[LOG_LINE_MAX];

	snprintf(line, sizeof(line), "libevent: %s", msg);
	switch (severity) {
	case EVENT_LOG_ERR:
		/* libevent exits after an error it reports. */
		log_line(LL_FATAL, line);
		if (log_sink != SINK_STDERR && !log_detached)
			fprintf(stderr, "ftpfwd: %s\n", line);
		break;
	case EVENT_LOG_WARN:
		logit(LL_ERROR, "%s", line);
		break;
	case EVENT_LOG_MSG:
		logit(LL_VERBOSE, "%s", line);
		break;
	default:
		logit(LL_DEBUG3, "%s", line);
		break;
	}
}

static void __attribute__((noreturn))
log_libevent_fatal(int err)
{
	fatalx("libevent failed (error %d)", err);
}

/* Give up, saying why; with errno's words. */
void
fatal(const char *fmt, ...)
{
	char	line[LOG_LINE_MAX];
	va_list	ap;
	int	saved = errno;
	size_t	n;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	n = strlen(line);
	snprintf(line + n, sizeof(line) - n, ": %s", strerror(saved));
	fatal_exit(EXIT_USAGE, line);
}

/* Give up, saying why. */
void
fatalx(const char *fmt, ...)
{
	char	line[LOG_LINE_MAX];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fatal_exit(EXIT_USAGE, line);
}

/* Give up with an exit status of its own (255: no master, as ssh). */
void
fatalx_status(int status, const char *fmt, ...)
{
	char	line[LOG_LINE_MAX];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fatal_exit(status, line);
}

/* Untrusted text, made safe for a log line or a reply. */
const char *
escape(char *buf, size_t sz, const char *s, size_t len)
{
	ftp_escape(buf, sz, s, len);
	return buf;
}

char *
xstrdup(const char *s)
{
	char	*copy;

	if ((copy = strdup(s)) == NULL)
		fatalx("out of memory");
	return copy;
}
