/* dist.c - PRNG and distributions, see dist.h. Stateless apart from the struct rng
 * and struct zipf instances, each owned by a single thread. */
#include "dist.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

void rng_seed(struct rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) {
        seed += 0x9e3779b97f4a7c15ull;
        r->s[i] = mix64(seed);
    }
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t rng_next(struct rng *r)
{
    uint64_t *s = r->s;
    uint64_t res = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return res;
}

double rng_double(struct rng *r)
{
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

uint64_t rng_below(struct rng *r, uint64_t n)
{
    if (n <= 1)
        return 0;
    return (uint64_t)(((unsigned __int128)rng_next(r) * n) >> 64);
}

double rng_exp(struct rng *r, double mean)
{
    return -mean * log1p(-rng_double(r)); /* 1-u in (0, 1] */
}

/* --- Zipf: rejection-inversion (Hormann & Derflinger 1996) --- */
static double helper1(double x) { return fabs(x) > 1e-8 ? log1p(x) / x : 1 - x * (0.5 - x * (1.0 / 3 - 0.25 * x)); }
static double helper2(double x) { return fabs(x) > 1e-8 ? expm1(x) / x : 1 + x * 0.5 * (1 + x / 3 * (1 + 0.25 * x)); }
static double zh(double s, double x) { return exp(-s * log(x)); }
static double zH(double s, double x)
{
    double lx = log(x);
    return helper2((1 - s) * lx) * lx;
}
static double zHinv(double s, double x)
{
    double t = x * (1 - s);
    if (t < -1)
        t = -1;
    return exp(helper1(t) * x);
}

void zipf_init(struct zipf *z, uint64_t n, double s)
{
    z->n = n ? n : 1;
    z->s = s;
    if (s <= 0)
        return;
    z->hx1 = zH(s, 1.5) - 1;
    z->hn = zH(s, (double)z->n + 0.5);
    z->sthr = 2 - zHinv(s, zH(s, 2.5) - zh(s, 2));
}

uint64_t zipf_sample(const struct zipf *z, struct rng *r)
{
    if (z->s <= 0)
        return 1 + rng_below(r, z->n);
    for (;;) {
        double u = z->hn + rng_double(r) * (z->hx1 - z->hn);
        double x = zHinv(z->s, u);
        double kd = floor(x + 0.5);
        if (kd < 1)
            kd = 1;
        else if (kd > (double)z->n)
            kd = (double)z->n;
        if (kd - x <= z->sthr || u >= zH(z->s, kd + 0.5) - zh(z->s, kd))
            return (uint64_t)kd;
    }
}

double zipf_pmf_exact(uint64_t n, double s, uint64_t k)
{
    double hsum = 0;
    for (uint64_t i = n; i >= 1; i--)
        hsum += pow((double)i, -s);
    return pow((double)k, -s) / hsum;
}

void keygen_init(struct keygen *g, enum keydist kind, uint64_t n, double skew)
{
    g->kind = kind;
    g->n = n ? n : 1;
    zipf_init(&g->z, g->n, kind == KD_ZIPF ? skew : 0);
}

uint64_t keygen_next(const struct keygen *g, struct rng *r)
{
    if (g->kind == KD_UNIFORM)
        return rng_below(r, g->n);
    return zipf_sample(&g->z, r) - 1;
}

/* --- sizes --- */
double gpd_quantile(double u, double loc, double scale, double shape)
{
    if (fabs(shape) < 1e-12)
        return loc - scale * log1p(-u);
    return loc + scale / shape * (pow(1 - u, -shape) - 1);
}

double gev_quantile(double u, double mu, double sigma, double shape)
{
    double y = -log(u);
    if (fabs(shape) < 1e-12)
        return mu - sigma * log(y);
    return mu + sigma / shape * (pow(y, -shape) - 1);
}

int sizespec_parse(struct sizespec *sp, const char *s, uint32_t etc_lo, uint32_t etc_hi)
{
    char *end;
    if (!strcmp(s, "etc")) {
        sp->kind = SZ_ETC;
        sp->key = 0;
        sp->a = etc_lo;
        sp->b = etc_hi;
        return 0;
    }
    unsigned long a = strtoul(s, &end, 10);
    if (end == s)
        return -1;
    if (*end == 0) {
        sp->kind = SZ_FIXED;
        sp->key = 0;
        sp->a = sp->b = (uint32_t)a;
        return 0;
    }
    if (*end != '-')
        return -1;
    const char *p = end + 1;
    unsigned long b = strtoul(p, &end, 10);
    if (end == p || *end || b < a)
        return -1;
    sp->kind = SZ_UNIFORM;
    sp->key = 0;
    sp->a = (uint32_t)a;
    sp->b = (uint32_t)b;
    return 0;
}

uint32_t sizespec_for(const struct sizespec *sp, uint64_t id, uint64_t salt)
{
    if (sp->kind == SZ_FIXED)
        return sp->a;
    uint64_t h = mix64(id * 0x9e3779b97f4a7c15ull ^ salt);
    if (sp->kind == SZ_UNIFORM)
        return sp->a + (uint32_t)(h % ((uint64_t)sp->b - sp->a + 1));
    double u = ((double)(h >> 11) + 0.5) * 0x1.0p-53; /* (0, 1) */
    double v = sp->key ? gev_quantile(u, ETC_KEY_MU, ETC_KEY_SIGMA, ETC_KEY_SHAPE)
                       : gpd_quantile(u, 0, ETC_VAL_SCALE, ETC_VAL_SHAPE);
    if (v < sp->a)
        v = sp->a;
    if (v > sp->b)
        v = sp->b;
    return (uint32_t)v;
}

double sizespec_mean(const struct sizespec *sp)
{
    if (sp->kind == SZ_FIXED)
        return sp->a;
    if (sp->kind == SZ_UNIFORM)
        return ((double)sp->a + sp->b) / 2;
    double sum = 0;
    const int n = 100000;
    for (int i = 0; i < n; i++)
        sum += sizespec_for(sp, (uint64_t)i, 1);
    return sum / n;
}
