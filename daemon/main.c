/* main: liveeventsd's entry point. Parses the command line, then hands over to the master, which
 * forks the ingest and query workers from this same binary. */
#include "config.h"

#include <stdio.h>

#include "hash.h"
#include "log.h"
#include "master.h"
#include "options.h"

int
main(int argc, char **argv)
{
	struct config cfg;
	char err[512];
	switch (options_parse(&cfg, argc, argv, err, sizeof(err))) {
	case CONFIG_EXIT_OK:
		return 0;
	case CONFIG_ERROR:
		fprintf(stderr, "liveeventsd: %s\n", err);
		return 2;
	case CONFIG_OK:
		break;
	}
	log_init("master");
	log_set_burst(cfg.log_refusals); /* the workers inherit it */
	hash_seed();
	return master_run(&cfg);
}
