/* app: sums the integers on stdin and prints the total with thousands separators. */
#include <stdio.h>

#include "config.h"
#include "format.h"
#include "parse.h"

int main(void)
{
    char line[4096];
    long long nums[MAX_PER_LINE], total = 0;
    long count = 0, lineno = 0;
    while (fgets(line, sizeof line, stdin)) {
        lineno++;
        int k = parse_ints(line, nums, MAX_PER_LINE);
        if (k < 0) {
            fprintf(stderr, "error: bad input on line %ld\n", lineno);
            return 1;
        }
        for (int i = 0; i < k; i++)
            total += nums[i];
        count += k;
    }
    char buf[64];
    format_grouped(total, buf, sizeof buf);
    printf("count: %ld\n%s: %s\n", count, TOTAL_LABEL, buf);
    return 0;
}
