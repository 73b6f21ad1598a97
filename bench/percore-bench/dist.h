/* dist.h - random numbers and distributions for percore-bench: a fast PRNG,
 * exponential inter-arrival times, a Zipf sampler (rejection-inversion, O(1) per
 * sample, no table), and the size distributions (fixed, uniform range, Facebook
 * ETC-like heavy tail). Every struct here is owned by one thread; the size
 * functions are pure (a key's size is a deterministic function of its id). */
#ifndef PB_DIST_H
#define PB_DIST_H
#include <stdint.h>

struct rng { uint64_t s[4]; };

void rng_seed(struct rng *r, uint64_t seed);
uint64_t rng_next(struct rng *r);
double rng_double(struct rng *r);          /* uniform in [0, 1) */
uint64_t rng_below(struct rng *r, uint64_t n); /* uniform in [0, n) */
double rng_exp(struct rng *r, double mean);     /* exponential with that mean */
uint64_t mix64(uint64_t x);                     /* splitmix64 finaliser */

/* Zipf over ranks 1..n with P(k) proportional to 1/k^s, s > 0 (s == 0: uniform). */
struct zipf {
    uint64_t n;
    double s;
    double hx1, hn, sthr;
};
void zipf_init(struct zipf *z, uint64_t n, double s);
uint64_t zipf_sample(const struct zipf *z, struct rng *r); /* 1..n */
/* Exact probability of rank k (for tests), uses a harmonic sum over n terms. */
double zipf_pmf_exact(uint64_t n, double s, uint64_t k);

/* Key popularity: uniform or zipf over key ids 0..n-1. */
enum keydist { KD_UNIFORM, KD_ZIPF };
struct keygen {
    enum keydist kind;
    uint64_t n;
    struct zipf z;
};
void keygen_init(struct keygen *g, enum keydist kind, uint64_t n, double skew);
uint64_t keygen_next(const struct keygen *g, struct rng *r); /* 0..n-1 */

/* Sizes: "N" fixed, "A-B" uniform, "etc" heavy tailed. */
enum sizekind { SZ_FIXED, SZ_UNIFORM, SZ_ETC };
struct sizespec {
    enum sizekind kind;
    uint32_t a, b;   /* fixed: a; uniform: [a, b]; etc: clamp range [a, b] */
    int key;         /* etc: 1 = key sizes (GEV), 0 = value sizes (GPD) */
};
/* Parse; `etc_lo`/`etc_hi` give the clamp range for "etc". 0 on success. */
int sizespec_parse(struct sizespec *sp, const char *s, uint32_t etc_lo, uint32_t etc_hi);
/* Size for a key id, deterministic in (id, salt). */
uint32_t sizespec_for(const struct sizespec *sp, uint64_t id, uint64_t salt);
/* Mean of the spec (numerically for etc), for reporting. */
double sizespec_mean(const struct sizespec *sp);

/* ETC model parameters (Atikoglu et al., SIGMETRICS 2012). */
#define ETC_VAL_SCALE 214.476
#define ETC_VAL_SHAPE 0.348238
#define ETC_KEY_MU 30.7984
#define ETC_KEY_SIGMA 8.20449
#define ETC_KEY_SHAPE 0.078688
double gpd_quantile(double u, double loc, double scale, double shape);
double gev_quantile(double u, double mu, double sigma, double shape);
#endif
