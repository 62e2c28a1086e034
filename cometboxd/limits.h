/* limits.h - connections per client address (max-connections-per-ip), the
 * slot counter behind max-connections, and refusals counted by reason.
 * Not for deciding what to refuse (browser.c, publish.c, hold.c decide). */
#ifndef CBXD_LIMITS_H
#define CBXD_LIMITS_H

#include <microhttpd.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "server.h"

/* The name of each enum cbx_refusal, as stats and /metrics show it. */
extern const char *const cbx_refusal_names[CBX_REFUSE_COUNT];

/* Counts a refusal in s->ctr.refused and logs it at debug level. */
void cbx_refuse(struct cbx_server *s, enum cbx_refusal why);

/* Adds one to *count unless it is max already; true when it did. */
bool cbx_take_slot(_Atomic uint64_t *count, uint64_t max);

/* The table of addresses. Connections are counted when they are admitted
 * (at their first request), not when accepted, so a burst of new
 * connections is judged in arrival order. Thread-safe: one mutex of its
 * own, never held with another lock. Owned; free with cbx_ips_destroy(). */
struct cbx_ip_table *cbx_ips_create(void);
void cbx_ips_destroy(struct cbx_ip_table *t);
/* Finds or makes the entry of c's address; returns a handle for release
 * (borrowed until then), or NULL when the address is unknown or memory ran out. */
void *cbx_ips_acquire(struct cbx_ip_table *t, struct MHD_Connection *c);
/* Counts one more admitted connection of handle's address unless max are. */
bool cbx_ips_admit(void *handle, uint64_t max);
/* Forgets a connection (admitted or not). */
void cbx_ips_release(struct cbx_ip_table *t, void *handle, bool admitted);

/* The 16 bytes that name sa's IP address (IPv4 as ::ffff:a.b.c.d); false,
 * and zeros, for NULL or another family. */
bool cbx_addr_key(const struct sockaddr *sa, uint8_t out[16]);

#endif
