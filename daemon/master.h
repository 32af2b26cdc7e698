/* master: the supervisor process (see master.c). */
#ifndef LIVEEVENTS_MASTER_H
#define LIVEEVENTS_MASTER_H

#include "options.h"

/* Runs the daemon until SIGTERM; returns the exit status (0 after a clean stop). */
int master_run(const struct config *cfg);

#endif
