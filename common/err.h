/* err.h - the one error enum of cometbox and its messages.
 * Every function that can fail returns enum cbx_err (or NULL plus one). */
#ifndef CBX_ERR_H
#define CBX_ERR_H

enum cbx_err {
    CBX_OK = 0,
    CBX_ERR_NOMEM,      /* an allocation failed */
    CBX_ERR_INVALID,    /* malformed input (publish body, query, config value) */
    CBX_ERR_TOO_LARGE,  /* input over a size limit */
    CBX_ERR_FULL,       /* a resource limit is full; try again later */
    CBX_ERR_NOT_FOUND,  /* no such queue, client or key */
    CBX_ERR_IO,         /* a system call failed; errno says why */
    CBX_ERR_STOPPING,   /* the daemon is shutting down */
    CBX_ERR_BUSY,       /* too many requests held on one queue (max-waiters-per-queue) */
    CBX_ERR_BUDGET,     /* the memory budget for messages is full (max-total-bytes) */
    CBX_ERR_UNAVAILABLE, /* broker = redis: Redis is unreachable or refused the command */
    CBX_ERR_AGAIN,      /* broker = redis: a queue is not mirrored here (any more): load it, then try again */
};

/* Returns a static, human-readable description of err. */
const char *cbx_strerror(enum cbx_err err);

#endif
