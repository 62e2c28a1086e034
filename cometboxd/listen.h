/* listen.h - listening TCP sockets made from config addresses, by us rather
 * than by libmicrohttpd, so that port 0 works and the chosen port is known.
 * Not for what is served on them (browser.c, publish.c). */
#ifndef CBXD_LISTEN_H
#define CBXD_LISTEN_H

#include <stddef.h>

/* Makes a listening socket for "HOST:PORT", "*:PORT" or "[V6]:PORT" and
 * writes http://ADDR:PORT into url. Returns the descriptor (owned by the
 * caller), or -1 with a message in err. */
int cbx_listen_tcp(const char *spec, char *url, size_t url_len, char *err, size_t errlen);

#endif
