#include "report.h"

void report_print(const struct stats *st, FILE *out)
{
    fprintf(out, "count: %ld\n", st->count);
    if (st->count == 0)
        return;
    fprintf(out, "sum: %lld\n", st->sum);
    fprintf(out, "min: %ld\n", st->min);
    fprintf(out, "max: %ld\n", st->max);
    fprintf(out, "mean: %.2f\n", stats_mean(st));
    fprintf(out, "stddev: %.2f\n", stats_stddev(st));
}
