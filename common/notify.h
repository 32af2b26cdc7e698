/* notify: the sd_notify protocol spoken directly over $NOTIFY_SOCKET (no libsystemd, as systemd's
 * own notify-selfcontained-example recommends). Only the master talks to systemd: notify_init reads
 * and then removes NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID from the environment so the workers
 * never inherit them. Without NOTIFY_SOCKET every call is a no-op. */
#ifndef LIVEEVENTS_NOTIFY_H
#define LIVEEVENTS_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

void notify_init(void);
bool notify_enabled(void);
/* Sends one datagram of newline-separated assignments, e.g. "READY=1\nSTATUS=...". 0 or -1. */
int notify_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The watchdog interval systemd asked for, in microseconds (0: none or not for this process). */
uint64_t notify_watchdog_usec(void);

#endif
