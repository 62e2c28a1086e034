/* log.c - leveled log lines on stderr. One fprintf per line so lines from
 * several threads never interleave (stdio locks the stream per call). */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

static _Atomic int log_level = CBX_LOG_INFO;

void cbx_log_set_level(enum cbx_log_level level) { log_level = (int)level; }

int cbx_log_enabled(enum cbx_log_level level) { return (int)level <= log_level; }

void cbx_log(enum cbx_log_level level, const char *fmt, ...)
{
    static const char *names[] = { "error", "warn", "info", "debug" };
    char msg[1024], stamp[32];
    struct timespec ts;
    struct tm tm;
    va_list ap;

    if (!cbx_log_enabled(level))
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s.%03ldZ %s %s\n", stamp, ts.tv_nsec / 1000000L, names[level], msg);
}
