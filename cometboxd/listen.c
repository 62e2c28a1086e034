/* listen.c - listening sockets from config specs, made by us (not by
 * libmicrohttpd) so `port 0` works and the chosen port can be reported.
 * Not for serving them (libmicrohttpd, through http.c). */
#include "listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/config.h"

int cbx_listen_tcp(const char *spec, char *url, size_t url_len, char *err, size_t errlen)
{
    char port[8], shown[INET6_ADDRSTRLEN], why[256];
    const char *host;
    struct cbx_listen_addr addr;
    struct addrinfo hints, *res = NULL;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int fd = -1, one = 1, rc;

    /* the config checked spec already; checked again so no caller can bind a wrapped port */
    if (cbx_config_addr_parse(spec, &addr, why, sizeof why) != CBX_OK) {
        snprintf(err, errlen, "bad address \"%s\": %s", spec, why);
        return -1;
    }
    host = addr.host[0] != '\0' ? addr.host : "*";
    snprintf(port, sizeof port, "%u", addr.port);
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    /* numeric only (no DNS at start-up), but for localhost */
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV | (strcmp(host, "localhost") != 0 ? AI_NUMERICHOST : 0);
    rc = getaddrinfo(strcmp(host, "*") == 0 ? NULL : host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve \"%s\": %s", spec, gai_strerror(rc));
        return -1;
    }
    /* for "*" prefer the IPv6 wildcard, which also takes IPv4 */
    struct addrinfo *ai = res;
    for (struct addrinfo *p = res; p != NULL; p = p->ai_next)
        if (strcmp(host, "*") == 0 && p->ai_family == AF_INET6)
            ai = p;
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
        snprintf(err, errlen, "socket for \"%s\": %s", spec, strerror(errno));
        goto fail;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ai->ai_family == AF_INET6) {
        int v6only = strcmp(host, "*") == 0 ? 0 : 1;
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
    }
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", spec, strerror(errno));
        goto fail;
    }
    if (listen(fd, 4096) != 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", spec, strerror(errno));
        goto fail;
    }
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        if (strcmp(host, "*") == 0)
            strcpy(shown, "[::1]");
        else {
            shown[0] = '[';
            inet_ntop(AF_INET6, &a->sin6_addr, shown + 1, sizeof shown - 2);
            strcat(shown, "]");
        }
        snprintf(url, url_len, "http://%s:%u", strcmp(host, "*") == 0 ? "127.0.0.1" : shown,
                 ntohs(a->sin6_port));
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, shown, sizeof shown);
        snprintf(url, url_len, "http://%s:%u", strcmp(shown, "0.0.0.0") == 0 ? "127.0.0.1" : shown,
                 ntohs(a->sin_port));
    }
    freeaddrinfo(res);
    return fd;
fail:
    if (fd >= 0)
        close(fd);
    freeaddrinfo(res);
    return -1;
}
