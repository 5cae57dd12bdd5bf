#include <math.h>

#include "stats.h"

void stats_init(struct stats *st)
{
    st->count = 0;
    st->sum = 0;
    st->min = 0;
    st->max = 0;
    st->sumsq = 0.0;
}

void stats_add(struct stats *st, long value)
{
    if (value < st->min)
        st->min = value;
    if (value > st->max)
        st->max = value;
    st->count++;
    st->sum += value;
    st->sumsq += (double)value * (double)value;
}

double stats_mean(const struct stats *st)
{
    return st->count ? (double)st->sum / (double)st->count : 0.0;
}

double stats_stddev(const struct stats *st)
{
    if (st->count == 0)
        return 0.0;
    double mean = stats_mean(st);
    double var = st->sumsq / (double)st->count - mean * mean;
    return var > 0.0 ? sqrt(var) : 0.0;
}
