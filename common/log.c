/* log: journald-aware line logging (see log.h). */
#include "config.h"

#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "json.h"

static char log_role[16] = "liveeventsd";
static int journal = -1;

void
log_set_role(const char *role)
{
	snprintf(log_role, sizeof(log_role), "%s", role);
}

void
log_init(const char *role)
{
	log_set_role(role);
	journal = 0;
	const char *js = getenv("JOURNAL_STREAM");
	struct stat st;
	unsigned long long dev, ino;
	if (js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
	    (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino)
		journal = 1;
}

bool
log_to_journal(void)
{
	return journal == 1;
}

static void log_vmsg(int prio, const char *fmt, va_list ap);

void
log_msg(int prio, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(prio, fmt, ap);
	va_end(ap);
}

static unsigned limit_burst = LOG_LIMIT_BURST;

void
log_set_burst(unsigned burst)
{
	limit_burst = burst;
}

void
log_limited(struct log_limit *l, int prio, const char *fmt, ...)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	if (now - l->window_start_ms >= LOG_LIMIT_WINDOW_MS) {
		if (l->suppressed)
			log_msg(prio, "(%u similar lines suppressed in the last %u s)", l->suppressed,
			        LOG_LIMIT_WINDOW_MS / 1000);
		l->window_start_ms = now;
		l->count = l->suppressed = 0;
	}
	if (limit_burst && l->count >= limit_burst) {
		l->suppressed++;
		return;
	}
	l->count++;
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(prio, fmt, ap);
	va_end(ap);
}

static void
log_vmsg(int prio, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];
	size_t n = 0;
	int saved = errno;
	if (journal == 1) {
		n = (size_t)snprintf(line, sizeof(line), "<%d>%s: ", prio, log_role);
	} else {
		struct timespec ts;
		struct tm tm;
		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		static const char *const lvl[8] = { "EMERG ", "ALERT ", "CRIT ", "ERROR ", "WARN ", "", "", "DEBUG " };
		n = strftime(line, sizeof(line), "%Y-%m-%d %H:%M:%S", &tm);
		n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ld %s: %s", ts.tv_nsec / 1000000, log_role,
		                      lvl[prio & 7]);
	}
	int k = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (k < 0)
		k = 0;
	n += (size_t)k;
	if (n > sizeof(line) - 2)
		n = json_utf8_cut(line, n < sizeof(line) ? n : sizeof(line) - 1, sizeof(line) - 2);
	line[n++] = '\n';
	/* One write per line: three processes share the stream. */
	ssize_t w = write(STDERR_FILENO, line, n);
	(void)w;
	errno = saved;
}

void
log_text(struct buf *b, const char *s, size_t n, size_t max_chars)
{
	size_t cut = json_utf8_prefix(s, n, max_chars);
	for (size_t i = 0; i < cut; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\n')
			buf_adds(b, "\xE2\x8F\x8E"); /* ⏎ */
		else if (c == '\r' && i + 1 < cut && s[i + 1] == '\n')
			continue; /* CR LF is one line break */
		else if (c == '\r')
			buf_adds(b, "\xE2\x8F\x8E");
		else if (c == '\t')
			buf_adds(b, "\xE2\x86\x92"); /* → */
		else if (c < 0x20 || c == 0x7f)
			buf_adds(b, "\xEF\xBF\xBD");
		else if (c == 0xC2 && i + 1 < cut && (unsigned char)s[i + 1] >= 0x80 && (unsigned char)s[i + 1] <= 0x9F) {
			buf_adds(b, "\xEF\xBF\xBD"); /* C1 controls: some terminals act on them as escapes */
			i++;
		}
		else if (c == 0xE2 && i + 2 < cut && (unsigned char)s[i + 1] == 0x80 &&
		         ((unsigned char)s[i + 2] == 0xA8 || (unsigned char)s[i + 2] == 0xA9)) {
			buf_adds(b, "\xE2\x8F\x8E"); /* U+2028/U+2029 also break lines in some viewers */
			i += 2;
		} else if (c == 0xE2 && i + 2 < cut &&
		           (((unsigned char)s[i + 1] == 0x80 &&
		             (((unsigned char)s[i + 2] >= 0xAA && (unsigned char)s[i + 2] <= 0xAE) ||
		              (unsigned char)s[i + 2] == 0x8E || (unsigned char)s[i + 2] == 0x8F)) ||
		            ((unsigned char)s[i + 1] == 0x81 && (unsigned char)s[i + 2] >= 0xA6 &&
		             (unsigned char)s[i + 2] <= 0xA9))) {
			/* Bidirectional controls (U+200E/F, U+202A-E, U+2066-9) reorder what follows them
			 * on a terminal, so a line could be made to read as something else (Trojan Source). */
			buf_adds(b, "\xEF\xBF\xBD");
			i += 2;
		} else if (c == 0xD8 && i + 1 < cut && (unsigned char)s[i + 1] == 0x9C) {
			buf_adds(b, "\xEF\xBF\xBD"); /* U+061C, the Arabic letter mark: a bidi control too */
			i++;
		} else if (c >= 0x80) {
			/* A path or a header is whatever bytes the client sent, and journald shows a line
			 * that is not UTF-8 as a blob, not as text. */
			bool ok;
			size_t len = json_utf8_seq(s + i, cut - i, &ok);
			if (ok)
				buf_add(b, s + i, len);
			else
				buf_adds(b, "\xEF\xBF\xBD");
			i += len - 1;
		} else
			buf_addc(b, (char)c);
	}
	if (cut < n)
		buf_adds(b, "\xE2\x80\xA6"); /* … */
}

void
log_text_redacted(struct buf *b, const char *s, size_t n, size_t max_chars, const char *const *secrets,
                  const size_t *lens, size_t nsecrets)
{
	struct buf t = BUF_INIT;
	for (size_t i = 0; i < n;) {
		size_t k = 0;
		while (k < nsecrets && !(lens[k] && lens[k] <= n - i && memcmp(s + i, secrets[k], lens[k]) == 0))
			k++;
		if (k < nsecrets) {
			buf_adds(&t, "[redacted]");
			i += lens[k];
		} else {
			buf_addc(&t, s[i++]);
		}
	}
	if (t.failed)
		buf_adds(b, "[redacted]"); /* out of memory: nothing rather than a secret */
	else
		log_text(b, t.data ? t.data : "", t.len, max_chars);
	buf_free(&t);
}
