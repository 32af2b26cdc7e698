/* web_assets: the dashboard's files, compiled into the binary at build time by embed_web (so the
 * daemon needs no files at run time and serves exactly the dashboard it was built with). */
#ifndef LIVEEVENTS_WEB_ASSETS_H
#define LIVEEVENTS_WEB_ASSETS_H

#include <stddef.h>

struct web_asset {
	const char *path; /* URL path, e.g. "/" or "/app.js" */
	const char *type; /* Content-Type */
	const unsigned char *data;
	size_t len;
	const char *etag; /* a quoted strong validator derived from the content */
};

extern const struct web_asset web_assets[];
extern const size_t web_assets_count;

/* The asset served at path, or NULL. */
const struct web_asset *web_asset_find(const char *path);

#endif
