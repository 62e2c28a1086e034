/* admin_proto.h - the admin socket's line protocol (docs/ADMIN.md), shared by
 * cometboxd and cometboxctl: one JSON object per line each way, the default
 * socket path and the protocol version. Not for running commands (the
 * daemon's admin.c) or for printing results (cometboxctl). */
#ifndef CBX_ADMIN_PROTO_H
#define CBX_ADMIN_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "buf.h"
#include "err.h"

#define CBX_ADMIN_PROTOCOL 1                          /* the "version" member of a request */
#define CBX_ADMIN_SOCKET_DEFAULT "/run/cometboxd.sock" /* the default of admin-socket */
#define CBX_ADMIN_SOCKET_ENV "COMETBOX_SOCKET"         /* cometboxctl's override of the default */
#define CBX_ADMIN_LINE_MAX 65536                      /* bytes of one request line, newline excluded */
#define CBX_ADMIN_ID_MAX 64                           /* bytes of a string id */

/* A parsed request line: {"version":1,"id":7,"cmd":"kick","queue":"alice"}. */
struct cbx_admin_request {
    cJSON *root;      /* owned; free with cbx_admin_request_free() */
    char id[CBX_ADMIN_ID_MAX * 6 + 8]; /* the id as JSON text to echo ("null" when absent or unreadable) */
    const char *cmd;  /* borrowed from root; NULL when the line had none */
};

/* Parses one request line (without its newline). Checks: one JSON object,
 * "id" a number, a string of at most CBX_ADMIN_ID_MAX bytes or null,
 * "version" absent or CBX_ADMIN_PROTOCOL, "cmd" a string. On error returns
 * CBX_ERR_INVALID with a message in err; req->id still holds the id when it
 * could be read, so the error line can echo it. Call cbx_admin_request_free()
 * either way. Arguments are the other members; see cbx_admin_args_check(). */
enum cbx_err cbx_admin_request_parse(const char *line, size_t len, struct cbx_admin_request *req, char *err,
                                     size_t errlen);
void cbx_admin_request_free(struct cbx_admin_request *req);

/* Checks that every member of the request besides id, version and cmd is
 * named in allowed (a NULL-terminated list); CBX_ERR_INVALID and
 * `CMD: unknown argument "x"` in err otherwise. */
enum cbx_err cbx_admin_args_check(const struct cbx_admin_request *req, const char *const *allowed, char *err,
                                  size_t errlen);
/* The argument called name, or NULL. Borrowed from the request. */
const cJSON *cbx_admin_arg(const struct cbx_admin_request *req, const char *name);

/* Appends one answer line (ending in \n) to out.
 * ok:    {"id":ID,"ok":true,"result":RESULT}   (result printed compact; NULL gives {})
 * error: {"id":ID,"ok":false,"error":"TEXT"}
 * id_json is the request's id as JSON text (struct cbx_admin_request.id). */
void cbx_admin_reply_ok(struct cbx_buf *out, const char *id_json, const cJSON *result);
void cbx_admin_reply_error(struct cbx_buf *out, const char *id_json, const char *text);
/* A tail's lines: {"id":ID,"message":MSG} with MSG the message's own JSON
 * bytes, and the last one {"id":ID,"end":"REASON"} (REASON: "stopping",
 * "overflow"). */
void cbx_admin_reply_message(struct cbx_buf *out, const char *id_json, const char *msg_json, size_t len);
void cbx_admin_reply_end(struct cbx_buf *out, const char *id_json, const char *reason);

/* Appends v as compact JSON. Unlike cJSON_PrintUnformatted(), integers
 * (ids, microsecond times, byte counts) print as every digit, never in
 * exponent form; other numbers with 17 significant digits. */
void cbx_admin_json_write(struct cbx_buf *out, const cJSON *v);

/* Makes a request line (ending in \n) for the CLI: {"version":1,"id":ID,"cmd":CMD,...args}.
 * args (may be NULL) is an object whose members are copied in. Owned; free(). */
char *cbx_admin_request_encode(uint64_t id, const char *cmd, const cJSON *args, size_t *len);

/* A parsed answer line, for the CLI. */
enum cbx_admin_kind { CBX_ADMIN_OK, CBX_ADMIN_ERROR, CBX_ADMIN_MESSAGE, CBX_ADMIN_END };
struct cbx_admin_response {
    cJSON *root;            /* owned; free with cbx_admin_response_free() */
    enum cbx_admin_kind kind;
    double id;              /* the echoed id (the CLI sends numbers); -1 when null */
    const cJSON *result;    /* CBX_ADMIN_OK: borrowed from root */
    const char *error;      /* CBX_ADMIN_ERROR: borrowed */
    const cJSON *message;   /* CBX_ADMIN_MESSAGE: the message object, borrowed */
    const char *end;        /* CBX_ADMIN_END: the reason, borrowed */
};
/* CBX_ERR_INVALID (reason in err) when the line is not an answer of this protocol. */
enum cbx_err cbx_admin_response_parse(const char *line, size_t len, struct cbx_admin_response *resp, char *err,
                                      size_t errlen);
void cbx_admin_response_free(struct cbx_admin_response *resp);

#endif
