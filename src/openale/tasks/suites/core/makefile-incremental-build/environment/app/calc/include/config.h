#ifndef CONFIG_H
#define CONFIG_H

#define THOUSANDS_SEP ','
#define TOTAL_LABEL "total"
#define MAX_PER_LINE 64

#endif
