/* report.c - printing results: a human table, JSON (one object per run) and CSV
 * rows for sweeps. Called from main() after a run; no state of its own. */
#include "bench.h"

static const char *proto_name(enum proto_kind k)
{
    return k == PROTO_META ? "meta" : k == PROTO_UDP ? "udp" : "text";
}

static double us(uint64_t ns) { return (double)ns / 1000.0; }

static const double pcts[] = { 50, 90, 99, 99.9, 99.99 };
static const char *pct_names[] = { "p50", "p90", "p99", "p99.9", "p99.99" };
static const char *pct_keys[] = { "p50", "p90", "p99", "p999", "p9999" };

static double hit_ratio(const struct result *r)
{
    uint64_t n = r->hits + r->misses;
    return n ? (double)r->hits / (double)n : 0.0;
}

void report_human(FILE *f, const struct config *c, const struct result *r)
{
    fprintf(f, "percore-bench: %s loop%s, %s (%s:%d), proto %s, %d thread(s) x %d conn(s)",
            r->mode, r->interrupted ? " (INTERRUPTED: partial results)" : "", c->name, c->host, c->port,
            proto_name(c->proto), c->threads, c->conns);
    if (c->closed)
        fprintf(f, ", depth %d\n", c->depth);
    else
        fprintf(f, ", Poisson arrivals\n");
    if (c->warmup)
        fprintf(f, "  warmup:    %llu sets in %.2f s\n", (unsigned long long)r->warmup_sets, r->warmup_s);
    if (c->closed)
        fprintf(f, "  offered:   closed loop (max throughput)\n");
    else
        fprintf(f, "  offered:   %.0f req/s (%llu scheduled)\n", r->offered_rps, (unsigned long long)r->scheduled);
    fprintf(f, "  achieved:  %.0f req/s over %.2f s\n", r->achieved_rps, r->window_s);
    fprintf(f, "  requests:  %llu sent, %llu completed (%llu get, %llu set", (unsigned long long)r->sent,
            (unsigned long long)r->completed, (unsigned long long)r->gets, (unsigned long long)r->sets);
    if (c->miss_set)
        fprintf(f, ", +%llu miss fills", (unsigned long long)r->fills);
    fprintf(f, ")\n");
    fprintf(f, "  keys:      %llu hits, %llu misses, hit ratio %.4f\n", (unsigned long long)r->hits,
            (unsigned long long)r->misses, hit_ratio(r));
    fprintf(f, "  errors:    %llu   timeouts: %llu (of which never sent: %llu)   not stored: %llu\n",
            (unsigned long long)r->errors, (unsigned long long)r->timeouts, (unsigned long long)r->unsent,
            (unsigned long long)r->notstored);
    if (c->proto == PROTO_UDP)
        fprintf(f, "  udp:       %llu stray datagrams (replies after their request timed out, duplicates)\n",
                (unsigned long long)r->udp_stray);
    fprintf(f, "  latency (us)%s:\n", c->closed ? " from send" : " from scheduled send");
    fprintf(f, "    %-5s %10s %10s %10s %10s %10s %10s %10s %10s\n", "op", "count", "mean", "p50", "p90",
            "p99", "p99.9", "p99.99", "max");
    const struct hist *hs[] = { &r->all, &r->get, &r->set };
    const char *hn[] = { "all", "get", "set" };
    for (int i = 0; i < 3; i++) {
        const struct hist *h = hs[i];
        if (i && !h->count)
            continue;
        fprintf(f, "    %-5s %10llu %10.1f", hn[i], (unsigned long long)h->count, hist_mean(h) / 1000.0);
        for (int j = 0; j < 5; j++)
            fprintf(f, " %10.1f", us(hist_percentile(h, pcts[j])));
        fprintf(f, " %10.1f\n", us(h->max));
    }
    if (!c->closed && r->late.count) {
        const struct hist *h = &r->late;
        fprintf(f, "    %-5s %10llu %10.1f", "lag", (unsigned long long)h->count, hist_mean(h) / 1000.0);
        for (int j = 0; j < 5; j++)
            fprintf(f, " %10.1f", us(hist_percentile(h, pcts[j])));
        fprintf(f, " %10.1f   (generator's own send lag, included above)\n", us(h->max));
    }
    (void)pct_names;
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        if ((unsigned char)*s < 0x20)
            fprintf(f, "\\u%04x", *s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

static void json_hist(FILE *f, const struct hist *h)
{
    fprintf(f, "{\"count\": %llu, \"mean\": %.3f, \"min\": %.3f", (unsigned long long)h->count,
            hist_mean(h) / 1000.0, h->count ? us(h->min) : 0.0);
    for (int j = 0; j < 5; j++)
        fprintf(f, ", \"%s\": %.3f", pct_keys[j], us(hist_percentile(h, pcts[j])));
    fprintf(f, ", \"max\": %.3f}", us(h->max));
}

void report_json(FILE *f, const struct config *c, const struct result *r)
{
    fprintf(f, "{\"server\": ");
    json_str(f, c->name);
    fprintf(f, ", \"host\": ");
    json_str(f, c->host);
    fprintf(f, ", \"port\": %d, \"mode\": \"%s\", \"proto\": \"%s\", \"threads\": %d, \"conns\": %d",
            c->port, r->mode, proto_name(c->proto), c->threads, c->conns);
    if (c->closed)
        fprintf(f, ", \"depth\": %d, \"offered_rps\": null", c->depth);
    else
        fprintf(f, ", \"offered_rps\": %.1f", r->offered_rps);
    fprintf(f, ", \"achieved_rps\": %.1f, \"window_s\": %.4f, \"interrupted\": %s", r->achieved_rps,
            r->window_s, r->interrupted ? "true" : "false");
    fprintf(f, ", \"scheduled\": %llu, \"sent\": %llu, \"completed\": %llu, \"gets\": %llu, \"sets\": %llu, "
               "\"fills\": %llu, \"hits\": %llu, \"misses\": %llu, \"hit_ratio\": %.6f, \"not_stored\": %llu, "
               "\"errors\": %llu, \"timeouts\": %llu, \"unsent\": %llu, \"warmup_sets\": %llu, "
               "\"udp_stray\": %llu",
            (unsigned long long)r->scheduled, (unsigned long long)r->sent, (unsigned long long)r->completed,
            (unsigned long long)r->gets, (unsigned long long)r->sets, (unsigned long long)r->fills,
            (unsigned long long)r->hits, (unsigned long long)r->misses, hit_ratio(r),
            (unsigned long long)r->notstored, (unsigned long long)r->errors, (unsigned long long)r->timeouts,
            (unsigned long long)r->unsent, (unsigned long long)r->warmup_sets,
            (unsigned long long)r->udp_stray);
    fprintf(f, ", \"latency_us\": ");
    json_hist(f, &r->all);
    fprintf(f, ", \"get_latency_us\": ");
    json_hist(f, &r->get);
    fprintf(f, ", \"set_latency_us\": ");
    json_hist(f, &r->set);
    fprintf(f, ", \"send_lag_us\": ");
    json_hist(f, &r->late);
    fprintf(f, "}\n");
}

void report_csv_header(FILE *f)
{
    fprintf(f, "server,offered,achieved,p50,p90,p99,p999,p9999,max,errors,timeouts\n");
}

void report_csv_row(FILE *f, const struct config *c, const struct result *r)
{
    fprintf(f, "%s,%.0f,%.0f", c->name, r->offered_rps, r->achieved_rps);
    for (int j = 0; j < 5; j++)
        fprintf(f, ",%.1f", us(hist_percentile(&r->all, pcts[j])));
    fprintf(f, ",%.1f,%llu,%llu\n", us(r->all.max), (unsigned long long)r->errors,
            (unsigned long long)r->timeouts);
}
