/* admin.c - the admin socket server. Not written yet: the cometboxctl issue
 * brings it. Until then the daemon serves no admin socket. */
#include "admin.h"
#include "server.h"

int cbx_admin_start(struct cbx_server *s, char *err, size_t errlen)
{
    (void)s, (void)err, (void)errlen;
    return 0;
}

void cbx_admin_stop(struct cbx_server *s) { (void)s; }
