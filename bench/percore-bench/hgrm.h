/* hgrm.h - HdrHistogram's percentile distribution text (.hgrm, as its
 * outputPercentileDistribution writes it), from a percore-bench histogram, so the
 * HdrHistogram plotter and tools that read wrk2's output can use our results.
 * Called by main() after a run; no state. */
#ifndef PB_HGRM_H
#define PB_HGRM_H
#include <stdio.h>
#include "hist.h"

/* Values are written in milliseconds (the histogram holds nanoseconds), with
 * 5 reporting ticks per half distance to 100%, as HdrHistogram's default. */
void hgrm_write(FILE *f, const struct hist *h);
#endif
