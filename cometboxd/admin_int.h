/* admin_int.h - the admin server's insides, shared by admin.c (the socket
 * loop and its clients), admin_cmd.c (the commands) and admin_tail.c
 * (tails). No other file includes it: the API is admin.h. Everything here
 * belongs to the admin thread, except what is _Atomic. */
#ifndef CBXD_ADMIN_INT_H
#define CBXD_ADMIN_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/un.h>

#include "../common/admin_proto.h"
#include "../common/buf.h"
#include "../common/qmap.h"

struct cbx_server;

#define CBX_ADMIN_OUT_SOFT_MAX (1u << 20) /* unsent bytes above which a client's requests and tails wait */
#define CBX_ADMIN_RATE_SAMPLES 61         /* one a second: a minute of history for the rates */

struct cbx_admin;
struct cbx_admin_client;

/* A tail: an observer of the queue map (qmap.h) whose messages become
 * lines on its client's connection. */
struct cbx_admin_tail {
    struct cbx_waiter w;       /* first member: wake() gets &w; an observer of the map while subscribed */
    struct cbx_admin *a;       /* borrowed */
    struct cbx_admin_client *c; /* borrowed: the client that asked; the tail ends before it goes */
    char id[sizeof ((struct cbx_admin_request *)0)->id]; /* the request's id, echoed on every line */
    struct cbx_admin_tail *next;
};

/* One admin connection. */
struct cbx_admin_client {
    int fd;
    uint64_t no;               /* numbers clients in the log */
    long pid, uid;             /* SO_PEERCRED, -1 when unknown */
    struct cbx_buf in;         /* received bytes not yet handled (at most one line and a chunk) */
    struct cbx_buf out;        /* answer bytes; out_off of them are sent */
    size_t out_off;
    bool eof;                  /* the client shut its sending side */
    bool closing;              /* close once out is sent */
    bool more;                 /* complete request lines wait in in: handled on a later turn */
    uint32_t events;           /* the epoll mask in force */
    int64_t last_request_us;   /* monotonic */
    int64_t stalled_since_us;  /* monotonic: since when unsent output made no progress; 0 when none */
    struct cbx_admin_tail *tails; /* owned */
    size_t ntails;
    struct cbx_admin_client *next;
};

/* Counter values at one moment, for rates over the last minute (admin_cmd.c). */
struct cbx_admin_sample {
    int64_t t; /* monotonic µs */
    uint64_t published, delivered, acked, expired, dropped, flushed, publish_requests, publish_errors, rejected;
};

/* The admin server: one per daemon. */
struct cbx_admin {
    struct cbx_server *s;      /* borrowed */
    char path[sizeof ((struct sockaddr_un *)0)->sun_path];
    bool made;                 /* path is a socket we created: remove it at stop */
    dev_t dev;
    ino_t ino;
    int listen_fd, ep, evfd;
    bool listening;            /* listen_fd is in the epoll set (off while out of descriptors) */
    pthread_t thread;
    bool thread_started;
    _Atomic bool stop;
    _Atomic bool rung;         /* evfd was written and the thread has not looked yet */
    struct cbx_admin_client *clients; /* owned */
    size_t nclients;
    uint64_t next_no;
    struct cbx_admin_sample ring[CBX_ADMIN_RATE_SAMPLES];
    size_t ring_n, ring_next;
    int64_t next_tick_us;
};

#endif
