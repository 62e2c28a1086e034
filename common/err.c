/* err.c - messages for enum cbx_err. */
#include "err.h"

const char *cbx_strerror(enum cbx_err err)
{
    switch (err) {
    case CBX_OK: return "success";
    case CBX_ERR_NOMEM: return "out of memory";
    case CBX_ERR_INVALID: return "invalid input";
    case CBX_ERR_TOO_LARGE: return "too large";
    case CBX_ERR_FULL: return "limit reached";
    case CBX_ERR_NOT_FOUND: return "not found";
    case CBX_ERR_IO: return "input/output error";
    case CBX_ERR_STOPPING: return "shutting down";
    case CBX_ERR_BUSY: return "too many requests held on this queue";
    case CBX_ERR_BUDGET: return "the memory budget for messages is full";
    case CBX_ERR_UNAVAILABLE: return "the broker (Redis) is unreachable";
    case CBX_ERR_AGAIN: return "the queue is not loaded from the broker yet";
    }
    return "unknown error";
}
