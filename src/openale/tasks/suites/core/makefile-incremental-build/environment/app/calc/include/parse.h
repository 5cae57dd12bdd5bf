#ifndef PARSE_H
#define PARSE_H

#include "util.h"

/* Parses the whitespace-separated integers in `s` (at most `max` of them)
 * into `out`. Returns how many were read, or -1 on a malformed token. */
int parse_ints(const char *s, long long *out, int max);

#endif
