/* jsmn_impl: the one translation unit that compiles jsmn's implementation. Every other file defines
 * JSMN_HEADER (via json.h), and all of them share -DJSMN_STRICT -DJSMN_PARENT_LINKS from AM_CPPFLAGS,
 * because those flags change jsmntok_t. */
#include "config.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wsign-compare"
#include <jsmn.h>
#pragma GCC diagnostic pop
