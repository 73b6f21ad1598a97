/*
 * udp.c — placeholder for the UDP protocol: refuses -U at start-up until
 * UDP support lands. Main thread only.
 */
#include "core/log.h"
#include "net/udp.h"

int udp_setup(void)
{
    log_err("UDP (-U) is not supported yet; run with -U 0");
    return -1;
}

void udp_read(struct worker *w, struct evsrc *src) { (void)w; (void)src; }
void udp_reply_arrived(struct worker *w, struct msg *m) { (void)w; (void)m; }
const char *udp_steering_name(void) { return "off"; }
