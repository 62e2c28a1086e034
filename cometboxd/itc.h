/* itc.h - resuming a connection from its own pool thread (itc.c). */
#ifndef CBX_ITC_H
#define CBX_ITC_H

#include <stdint.h>

#include <microhttpd.h>

/* MHD_resume_connection() for a connection that the calling thread serves,
 * called from inside one of that thread's libmicrohttpd callbacks: without
 * the eventfd write that would wake the thread, which is awake. */
void cbx_resume_here(struct MHD_Connection *c);

/* How many wake-up writes cbx_resume_here() saved since the start. */
uint64_t cbx_resume_wakeups_skipped(void);

#endif
