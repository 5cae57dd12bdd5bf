#ifndef FORMAT_H
#define FORMAT_H

#include <stddef.h>

/* Writes `v` with thousands separators into buf (size n). */
void format_grouped(long long v, char *buf, size_t n);

#endif
