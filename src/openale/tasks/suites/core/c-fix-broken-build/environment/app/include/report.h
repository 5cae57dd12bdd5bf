#ifndef REPORT_H
#define REPORT_H

#include <stdio.h>

#include "stats.h"

void report_print(const struct stats *st, FILE *out);

#endif
