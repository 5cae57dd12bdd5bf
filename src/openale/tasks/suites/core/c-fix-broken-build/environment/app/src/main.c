/* tool: summary statistics of the integers in a file (or stdin), one per line. */
#include <stdio.h>

#include "parse.h"
#include "report.h"
#include "stats.h"

int main(int argc, char **argv)
{
    FILE *in = stdin;
    if (argc > 2) {
        fprintf(stderr, "usage: %s [FILE]\n", argv[0]);
        return 1;
    }
    if (argc == 2) {
        in = fopen(argv[1], "r");
        if (!in) {
            perror(argv[1]);
            return 1;
        }
    }

    struct stats st;
    stats_init(&st);
    char line[4096];
    long lineno = 0;
    while (fgets(line, sizeof line, in)) {
        lineno++;
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        long value;
        int r = parse_line(line, &value);
        if (r < 0) {
            fprintf(stderr, "error: line %ld: invalid number '%s'\n", lineno, line);
            return 2;
        }
        if (r > 0)
            stats_add(&st, value);
    }
    if (in != stdin)
        fclose(in);
    report_print(&st, stdout);
    return 0;
}
