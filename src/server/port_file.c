/*
 * port_file.c — memcached's MEMCACHED_PORT_FILENAME: once the sockets are
 * bound, the port of each listener goes to that file, so a test harness or
 * supervisor that started the server with -p -1 / -U -1 learns which ports
 * the kernel chose. Main thread, start-up only.
 *
 * Format, as memcached 1.6.18 writes it: TCP listeners in -l order, then
 * UDP ones, one line each, "TCP INET: 41475" ("INET6" for IPv6). Written
 * to "<file>.lck" and renamed, so a reader never sees half a file.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "util/log.h"
#include "util/options.h"
#include "net/listener.h"
#include "server/port_file.h"
#include "server/worker.h"

static void line(FILE *f, const char *proto, int fd)
{
    int family = 0, port = listener_port(fd, &family);
    if (port >= 0)
        fprintf(f, "%s INET%s: %d\n", proto, family == AF_INET6 ? "6" : "", port);
}

void port_file_write(void)
{
    const char *path = getenv("MEMCACHED_PORT_FILENAME");
    if (!path || !*path || settings.unix_path)   /* memcached: none with -s */
        return;
    size_t n = strlen(path) + sizeof ".lck";
    char *tmp = malloc(n);
    if (!tmp)
        return;
    snprintf(tmp, n, "%s.lck", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        /* memcached says so and goes on serving */
        log_err("Failed to open \"%s\": %s", tmp, strerror(errno));
        free(tmp);
        return;
    }
    /* Every worker listens on the same ports: worker 0's sockets say which. */
    const struct loop *l = &workers[0].loop;
    for (int a = 0; a < l->nlisten; a++)
        line(f, "TCP", l->listen[a].fd);
    for (int a = 0; a < l->nudp; a++)
        line(f, "UDP", l->udp[a].fd);
    if (fclose(f) != 0 || rename(tmp, path) < 0)
        log_err("cannot write %s: %s", path, strerror(errno));
    free(tmp);
}
