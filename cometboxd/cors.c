/* cors.c - matching a request's Origin against cors-origins, and telling
 * the operator, once per origin, which pages were refused: a browser shows
 * the page's author only "status 0", so the daemon's log is where the
 * reason can be read. Not for the CORS headers themselves (http.c). */
#include "cors.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"

#define SEEN_MAX 64

static pthread_mutex_t seen_mu = PTHREAD_MUTEX_INITIALIZER; /* guards seen, n_seen, full_said */
static char *seen[SEEN_MAX];                                /* owned copies, for the process's life */
static size_t n_seen;
static bool full_said;

const char *cbx_cors_allowed(const char *list, const char *origin)
{
    size_t olen;

    if (origin == NULL || list[0] == '\0')
        return NULL;
    if (strcmp(list, "*") == 0)
        return "*";
    olen = strlen(origin);
    for (const char *p = list; *p;) {
        size_t len;
        while (*p == ' ' || *p == ',')
            p++;
        len = strcspn(p, " ,");
        if (len == olen && len > 0 && memcmp(p, origin, len) == 0)
            return origin;
        p += len;
    }
    return NULL;
}

/* True when origin is the daemon's own address as the browser named it. */
static bool same_site(const char *origin, const char *host)
{
    const char *rest;

    if (host == NULL)
        return false;
    if (strncmp(origin, "http://", 7) == 0)
        rest = origin + 7;
    else if (strncmp(origin, "https://", 8) == 0)
        rest = origin + 8;
    else
        return false;
    return strcmp(rest, host) == 0;
}

bool cbx_cors_refused(const char *origin, const char *host)
{
    bool first = true, say_full = false;

    if (origin == NULL || same_site(origin, host))
        return false;
    for (const char *p = origin; *p; p++) {
        if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f) {
            origin = "(an origin with unprintable bytes)"; /* a log line stays one line */
            break;
        }
    }
    pthread_mutex_lock(&seen_mu);
    for (size_t i = 0; i < n_seen && first; i++)
        if (strcmp(seen[i], origin) == 0)
            first = false;
    if (first) {
        if (n_seen < SEEN_MAX && (seen[n_seen] = strdup(origin)) != NULL) {
            n_seen++;
        } else {
            first = false;
            say_full = !full_said;
            full_said = true;
        }
    }
    pthread_mutex_unlock(&seen_mu);
    if (first)
        cbx_log(CBX_LOG_WARN,
                "CORS: origin %.200s is not in cors-origins: its pages' requests are refused "
                "(add it to cors-origins to allow it; logged once per origin)",
                origin);
    else if (say_full)
        cbx_log(CBX_LOG_WARN, "CORS: more than %d origins refused; further ones are not logged", SEEN_MAX);
    return true;
}
