#include "parse.h"

int parse_ints(const char *s, long long *out, int max)
{
    int n = 0;
    for (;;) {
        s = skip_space(s);
        if (*s == '\0')
            return n;
        int neg = 0;
        if (*s == '-') {
            neg = 1;
            s++;
        }
        if (!is_digit(*s))
            return -1;
        long long v = 0;
        while (is_digit(*s))
            v = v * 10 + (*s++ - '0');
        if (*s != '\0' && *s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
            return -1;
        if (n == max)
            return -1;
        out[n++] = neg ? -v : v;
    }
}
