/*
 * main.c — cachesim: replays one request trace (generated, or an
 * oracleGeneral file) against several replacement policies at several
 * cache sizes and prints the miss ratios side by side. Everything runs on
 * the one main thread, one policy instance at a time.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cachesim.h"

static const struct cs_policy *const all[] = {
    &cs_percore, &cs_lru_mc, &cs_lru, &cs_fifo, &cs_s3fifo, &cs_sieve, &cs_opt, &cs_topk,
};
#define NPOL (sizeof(all) / sizeof(all[0]))
#define MAXSIZES 16

static void usage(FILE *f)
{
    fprintf(f,
"usage: cachesim [workload] [--sizes LIST] [--policies LIST] [--warmup N] [--tsv]\n"
"workload, generated (1M keys, 10M requests, 120-byte objects by default):\n"
"  --gen zipf|scan|shift|ttl   zipf: Zipf(--alpha) over --keys; scan: that plus\n"
"                        --scan-frac of requests walking --scan-keys other keys\n"
"                        once round (one-hit wonders); shift: the hot keys move\n"
"                        by a tenth of the key space every --shift-every requests;\n"
"                        ttl: per-key TTLs, 30%% 10 s, 30%% 60 s, 20%% 300 s, 20%% none\n"
"  --alpha A (0.99)  --keys N (1000000)  --requests N (10000000)  --size B (120)\n"
"  --rate R (100000 requests per simulated second)  --scan-frac F (0.15)\n"
"  --scan-keys N (5000000)  --shift-every N (requests/5)  --seed S (1)\n"
"  --prefill         first request every key once, in id order (as\n"
"                    percore-bench --warmup); count it in --warmup\n"
"  --hot-first       key id = popularity rank (percore-bench's mapping: with\n"
"                    --prefill the hottest keys are written first)\n"
"or a trace file:\n"
"  --trace FILE|-      oracleGeneral binary (24-byte records; '-' = stdin, for\n"
"                      zstd -dc t.oracleGeneral.zst | cachesim --trace -)\n"
"  --fixed-size B      override every object's size\n"
"  --max-requests N    read at most N requests (default 50000000)\n"
"runs:\n"
"  --sizes LIST        cache sizes: bytes with K/M/G suffix (64M), or a\n"
"                      fraction of the trace's footprint (0.1); default\n"
"                      0.01,0.03,0.1,0.3\n"
"  --policies LIST     of percore,lru-mc,lru,fifo,s3fifo,sieve,opt,topk (default all)\n"
"  --warmup N          requests not counted (default 0)\n"
"  --count-below N     count only requests for object ids below N (generated\n"
"                      scan: N = --keys counts the Zipf stream alone)\n"
"  --mem-max MiB       refuse runs estimated above this (default 4096)\n"
"  --tsv               tab-separated output: size_bytes policy miss_ratio\n");
}

static bool parse_size(const char *s, double *frac, uint64_t *bytes)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v <= 0)
        return false;
    uint64_t mul = 0;
    switch (*end) {
    case 'K': case 'k': mul = 1024; end++; break;
    case 'M': case 'm': mul = 1024 * 1024; end++; break;
    case 'G': case 'g': mul = 1024ull * 1024 * 1024; end++; break;
    case 0: break;
    default: return false;
    }
    if (*end)
        return false;
    if (mul || v > 1) {
        *frac = 0;
        *bytes = (uint64_t)(v * (mul ? mul : 1));
    } else {
        *frac = v;
        *bytes = 0;
    }
    return true;
}

static int die(const char *msg)
{
    fprintf(stderr, "cachesim: %s\n", msg);
    return 2;
}

static void fmt_bytes(char *b, size_t n, uint64_t v)
{
    if (v >= (1ull << 30) && v % (1ull << 20) == 0)
        snprintf(b, n, "%.2fG", v / 1073741824.0);
    else if (v >= (1ull << 20))
        snprintf(b, n, "%.1fM", v / 1048576.0);
    else
        snprintf(b, n, "%.0fK", v / 1024.0);
}

int main(int argc, char **argv)
{
    struct cs_gen g = { .kind = "zipf", .alpha = 0.99, .keys = 1000000, .requests = 10000000,
                        .size = 120, .rate = 100000, .scan_frac = 0.15, .scan_keys = 5000000,
                        .seed = 1 };
    const char *trace = NULL, *sizes = "0.01,0.03,0.1,0.3", *pols = NULL;
    uint32_t fixed = 0, maxreq = 50000000, warm = 0, below = UINT32_MAX;
    uint64_t memmax = 4096;
    bool tsv = false, shift_set = false;
    char err[256];

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool has = true;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--tsv")) { tsv = true; has = false; }
        else if (!strcmp(a, "--prefill")) { g.prefill = true; has = false; }
        else if (!strcmp(a, "--hot-first")) { g.hot_first = true; has = false; }
        else if (!v) { usage(stderr); return 2; }
        else if (!strcmp(a, "--gen")) g.kind = v;
        else if (!strcmp(a, "--alpha")) g.alpha = atof(v);
        else if (!strcmp(a, "--keys")) g.keys = (uint32_t)strtoul(v, NULL, 0);
        else if (!strcmp(a, "--requests")) g.requests = (uint32_t)strtoul(v, NULL, 0);
        else if (!strcmp(a, "--size")) g.size = (uint32_t)strtoul(v, NULL, 0);
        else if (!strcmp(a, "--rate")) g.rate = (uint32_t)strtoul(v, NULL, 0);
        else if (!strcmp(a, "--scan-frac")) g.scan_frac = atof(v);
        else if (!strcmp(a, "--scan-keys")) g.scan_keys = (uint32_t)strtoul(v, NULL, 0);
        else if (!strcmp(a, "--shift-every")) { g.shift_every = (uint32_t)strtoul(v, NULL, 0); shift_set = true; }
        else if (!strcmp(a, "--seed")) g.seed = strtoull(v, NULL, 0);
        else if (!strcmp(a, "--trace")) trace = v;
        else if (!strcmp(a, "--fixed-size")) fixed = (uint32_t)strtoul(v, NULL, 0);
        else if (!strcmp(a, "--max-requests")) maxreq = (uint32_t)strtoul(v, NULL, 0);
        else if (!strcmp(a, "--sizes")) sizes = v;
        else if (!strcmp(a, "--policies")) pols = v;
        else if (!strcmp(a, "--warmup")) warm = (uint32_t)strtoul(v, NULL, 0);
        else if (!strcmp(a, "--count-below")) below = (uint32_t)strtoul(v, NULL, 0);
        else if (!strcmp(a, "--mem-max")) memmax = strtoull(v, NULL, 0);
        else { fprintf(stderr, "cachesim: unknown option %s\n", a); usage(stderr); return 2; }
        if (has)
            i++;
    }
    if (!shift_set)
        g.shift_every = g.requests / 5 ? g.requests / 5 : 1;
    if (g.scan_keys == 0 || g.scan_frac < 0 || g.scan_frac > 1)
        return die("--scan-keys must be > 0 and --scan-frac in [0, 1]");
    if (g.size == 0 || g.size > (1u << 20))
        return die("--size must be 1 .. 1048576");
    if (!trace && (uint64_t)g.keys + g.scan_keys > UINT32_MAX - 1)
        return die("too many keys");

    /* which policies */
    bool use[NPOL];
    unsigned npol = 0;
    for (unsigned p = 0; p < NPOL; p++) {
        use[p] = pols == NULL;
        if (pols) {
            size_t n = strlen(all[p]->name);
            for (const char *c = pols; (c = strstr(c, all[p]->name)); c += n)
                if ((c == pols || c[-1] == ',') && (c[n] == ',' || c[n] == 0))
                    use[p] = true;
        }
        npol += use[p];
    }
    if (!npol)
        return die("no known policy in --policies");

    /* sizes */
    double frac[MAXSIZES];
    uint64_t cap[MAXSIZES];
    unsigned nsz = 0;
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", sizes);
    for (char *sv, *t = strtok_r(buf, ",", &sv); t; t = strtok_r(NULL, ",", &sv)) {
        if (nsz == MAXSIZES || !parse_size(t, &frac[nsz], &cap[nsz]))
            return die("bad --sizes (at most 16: 64M, 1G, or a fraction like 0.1)");
        nsz++;
    }

    /* the bound on memory, before anything large is allocated */
    uint64_t nreq = trace ? maxreq : (uint64_t)g.requests + (g.prefill ? g.keys : 0);
    uint64_t est = nreq * sizeof(struct cs_req) + nreq * 12;   /* trace + per-object tables */
    for (unsigned k = 0; k < nsz; k++)
        if (cap[k] > est / 4)
            est = est - est / 4 + cap[k];
    if (est > memmax << 20) {
        snprintf(err, sizeof(err), "this run needs about %llu MiB, above --mem-max %llu",
                 (unsigned long long)(est >> 20), (unsigned long long)memmax);
        return die(err);
    }

    struct cs_trace tr = {0};
    bool ok = trace ? cs_read_oracle(trace, maxreq, fixed, &tr, err, sizeof(err))
                    : cs_generate(&g, &tr, err, sizeof(err));
    if (!ok)
        return die(err);
    if (warm >= tr.n)
        return die("--warmup is not below the trace's length");
    for (unsigned k = 0; k < nsz; k++) {
        if (frac[k] > 0)
            cap[k] = (uint64_t)(frac[k] * (double)tr.footprint);
        if (cap[k] < 64 * 1024)
            cap[k] = 64 * 1024;    /* the store's smallest useful size */
        if (cap[k] > memmax << 20)
            return die("a cache size is above --mem-max");
    }

    if (!tsv) {
        printf("trace %s: %u requests, %u objects, footprint %.1f MiB; counted after %u requests%s\n",
               tr.name, tr.n, tr.nobj, tr.footprint / 1048576.0, warm,
               below != UINT32_MAX ? ", for ids below --count-below" : "");
        printf("miss ratio\n| cache size |");
        for (unsigned p = 0; p < NPOL; p++)
            if (use[p])
                printf(" %s |", all[p]->name);
        printf("\n|---|");
        for (unsigned p = 0; p < npol; p++)
            printf("---:|");
        printf("\n");
    }
    for (unsigned k = 0; k < nsz; k++) {
        char cb[32];
        fmt_bytes(cb, sizeof(cb), cap[k]);
        if (!tsv)
            printf("| %s (%.3f) |", cb, (double)cap[k] / (double)tr.footprint);
        for (unsigned p = 0; p < NPOL; p++) {
            if (!use[p])
                continue;
            void *inst = all[p]->create(cap[k], &tr);
            if (!inst) {
                /* too small for the store's fixed part, or out of memory */
                fprintf(stderr, "cachesim: %s cannot be created at %llu bytes\n", all[p]->name,
                        (unsigned long long)cap[k]);
                if (tsv)
                    printf("%s\t%llu\t%s\tNA\n", tr.name, (unsigned long long)cap[k], all[p]->name);
                else
                    printf(" - |");
                continue;
            }
            uint64_t miss = 0, counted = 0;
            for (uint32_t i = 0; i < tr.n; i++) {
                bool hit = all[p]->access(inst, &tr, i);
                if (i >= warm && tr.r[i].id < below) {
                    counted++;
                    miss += !hit;
                }
            }
            all[p]->destroy(inst);
            double mr = counted ? (double)miss / (double)counted : 0;
            if (tsv)
                printf("%s\t%llu\t%s\t%.6f\n", tr.name, (unsigned long long)cap[k], all[p]->name, mr);
            else
                printf(" %.4f |", mr);
            fflush(stdout);
        }
        if (!tsv)
            printf("\n");
    }
    cs_trace_free(&tr);
    return 0;
}
