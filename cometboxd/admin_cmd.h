/* admin_cmd.h - running the admin socket's commands: one request line in,
 * one answer line out; and the counter samples behind the rates of
 * `stats`. Not for reading or writing the socket (admin.c). */
#ifndef CBXD_ADMIN_CMD_H
#define CBXD_ADMIN_CMD_H

#include <stddef.h>

#include "admin_int.h"

/* Answers one request line (without its newline) into c->out: an error
 * line, or the command's result (a tail also starts its message lines). */
void cbx_admin_cmd_line(struct cbx_admin *a, struct cbx_admin_client *c, const char *line, size_t len);

/* Stores a sample of the counters in a's ring for the rates of `stats`:
 * at start, then once a second. */
void cbx_admin_rates_sample(struct cbx_admin *a);

#endif
