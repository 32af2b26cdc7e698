/* worker: the control-channel helpers both workers and the master use (see worker.h). */
#include "config.h"

#include "worker.h"

#include <errno.h>
#include <sys/socket.h>
#include <time.h>

uint64_t
worker_monotonic_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int
worker_send(int fd, const struct ctl_msg *m)
{
	ssize_t n = send(fd, m, sizeof(*m), MSG_NOSIGNAL | MSG_DONTWAIT);
	return n == (ssize_t)sizeof(*m) ? 0 : -1;
}

int
worker_recv(int fd, struct ctl_msg *m)
{
	ssize_t n = recv(fd, m, sizeof(*m), MSG_DONTWAIT | MSG_TRUNC);
	if (n < 0)
		return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
	if (n != (ssize_t)sizeof(*m) || m->magic != CTL_MAGIC)
		return -1;
	return 1;
}
