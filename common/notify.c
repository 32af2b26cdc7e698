/* notify: sd_notify over AF_UNIX datagrams (see notify.h). */
#include "config.h"

#include "notify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define NOTIFY_MSG_MAX 1024

static struct sockaddr_un notify_addr;
static socklen_t notify_addrlen;
static uint64_t watchdog_usec;

/* Only plain decimal digits: strtoull alone would take "-5" as a huge value and "12abc" as 12. */
static bool
parse_decimal(const char *s, unsigned long long *out)
{
	if (*s < '0' || *s > '9')
		return false;
	char *end;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno == 0 && *end == '\0';
}

void
notify_init(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	notify_addrlen = 0;
	if (path && (path[0] == '/' || path[0] == '@') && strlen(path) < sizeof(notify_addr.sun_path)) {
		memset(&notify_addr, 0, sizeof(notify_addr));
		notify_addr.sun_family = AF_UNIX;
		size_t n = strlen(path);
		memcpy(notify_addr.sun_path, path, n);
		if (path[0] == '@')
			notify_addr.sun_path[0] = '\0'; /* abstract namespace */
		/* The exact length: trailing NULs are significant for abstract names. */
		notify_addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	}
	const char *wu = getenv("WATCHDOG_USEC"), *wp = getenv("WATCHDOG_PID");
	watchdog_usec = 0;
	unsigned long long v, pid;
	if (wu && notify_addrlen && parse_decimal(wu, &v) && v > 0 &&
	    (!wp || (parse_decimal(wp, &pid) && pid == (unsigned long long)getpid())))
		watchdog_usec = v;
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}

bool
notify_enabled(void)
{
	return notify_addrlen != 0;
}

uint64_t
notify_watchdog_usec(void)
{
	return watchdog_usec;
}

int
notify_send(const char *fmt, ...)
{
	if (!notify_addrlen)
		return 0;
	char msg[NOTIFY_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(msg))
		return -1;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	ssize_t w = sendto(fd, msg, (size_t)n, MSG_NOSIGNAL, (struct sockaddr *)&notify_addr, notify_addrlen);
	int saved = errno;
	close(fd);
	errno = saved;
	return w == n ? 0 : -1;
}
