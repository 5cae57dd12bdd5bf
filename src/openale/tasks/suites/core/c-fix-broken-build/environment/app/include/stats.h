/* Running statistics over a stream of integers. */

struct stats {
    long count;
    long long sum;
    long min;
    long max;
    double sumsq;
};

void stats_init(struct stats *st);
void stats_add(struct stats *st, long value);
double stats_mean(const struct stats *st);
double stats_stddev(const struct stats *st);
