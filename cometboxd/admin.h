/* admin.h - the admin UNIX socket server (docs/ADMIN.md): starting and
 * stopping it. Not for the line format (common/admin_proto.h), the
 * commands (admin_cmd.h) nor the stats snapshot (stats.h). */
#ifndef CBXD_ADMIN_H
#define CBXD_ADMIN_H

#include <stddef.h>

struct cbx_server;

/* Creates the socket and starts serving it; -1 with a reason in err.
 * Refuses a path where another daemon answers, and a path that exists and
 * is not a socket; removes a stale socket. An empty admin-socket disables it. */
int cbx_admin_start(struct cbx_server *s, char *err, size_t errlen);
/* Stops serving, ends every admin client (tails get their end line) and
 * removes the socket when it is still the one this daemon made. Safe to call
 * when cbx_admin_start() failed or never ran. */
void cbx_admin_stop(struct cbx_server *s);

#endif
