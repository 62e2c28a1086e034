/* reaper.h - the thread for time and closed peers (reaper.c). */
#ifndef CBXD_REAPER_H
#define CBXD_REAPER_H

struct cbx_server;

/* Starts the reaper: hold deadlines and heartbeats, header clocks, closed
 * peers, the sweep of expired messages. 0, or -1 with errno. */
int cbx_reaper_start(struct cbx_server *s);
/* Stops and joins it; safe when it never started. */
void cbx_reaper_stop(struct cbx_server *s);

#endif
