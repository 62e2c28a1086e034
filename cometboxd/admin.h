/* admin.h - the admin UNIX socket server (docs/ADMIN.md). */
#ifndef CBXD_ADMIN_H
#define CBXD_ADMIN_H

#include <stddef.h>

struct cbx_server;

/* Creates the socket and starts serving it; -1 with a reason in err. */
int cbx_admin_start(struct cbx_server *s, char *err, size_t errlen);
/* Stops serving and removes the socket. */
void cbx_admin_stop(struct cbx_server *s);

#endif
