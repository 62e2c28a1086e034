/* admin_tail.h - the admin `tail` command: an observer of the queue map
 * (qmap.h) whose messages become lines on its client's connection. Not for
 * the connection itself (admin.c) nor the other commands (admin_cmd.c). */
#ifndef CBXD_ADMIN_TAIL_H
#define CBXD_ADMIN_TAIL_H

#include <stddef.h>

#include "../common/admin_proto.h"
#include "../common/err.h"
#include "admin_int.h"

/* The `tail` command (the signature of admin_cmd.c's table): subscribes a
 * new tail of client c as an observer of the queues in r, owned by c. */
enum cbx_err cbx_admin_tail_cmd(struct cbx_admin *a, struct cbx_admin_client *c, const struct cbx_admin_request *r,
                                cJSON *res, char *err, size_t errlen);

/* Ends t: an end line {"id":..,"end":reason} when reason is not NULL, then
 * out of the map, off c's list and freed. */
void cbx_admin_tail_end(struct cbx_admin_client *c, struct cbx_admin_tail *t, const char *reason);

/* Moves t's messages into c's output while c keeps up (at most
 * CBX_ADMIN_OUT_SOFT_MAX unsent); ends t on overflow. Called when the
 * tails' eventfd rang and when c caught up. */
void cbx_admin_tail_drain(struct cbx_admin_client *c, struct cbx_admin_tail *t);

#endif
