/* serve.h - the two HTTP listeners in the configured threads mode. */
#ifndef CBXD_SERVE_H
#define CBXD_SERVE_H

#include <microhttpd.h>
#include <stddef.h>

struct cbx_server;

/* Serves s->browser_fd with browser and s->publish_fd with publish:
 * threads = pool: pool-size threads of ours (pool.c), each driving one
 * daemon of each port on the shared listening sockets; threads =
 * per-connection: libmicrohttpd's thread per connection. Takes the
 * listening sockets (s->browser_fd, s->publish_fd become -1). 0, or -1
 * with a reason in err (what started is stopped by cbx_serve_stop). */
int cbx_serve_start(struct cbx_server *s, MHD_AccessHandlerCallback browser, MHD_AccessHandlerCallback publish,
                    char *err, size_t errlen);
/* Stops serving; closes every connection left. Call once no held request
 * is parked (docs/THREADS.md, "Shutdown"). */
void cbx_serve_stop(struct cbx_server *s);

#endif
