#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

#include "parse.h"

int parse_line(const char *line, long *value)
{
    while (isspace((unsigned char)*line))
        line++;
    if (*line == '\0' || *line == '#')
        return 0;
    errno = 0;
    char *end;
    long v = strtol(line, &end, 10);
    if (end == line || errno == ERANGE)
        return -1;
    while (isspace((unsigned char)*end))
        end++;
    if (*end != '\0')
        return -1;
    *value = v;
    return 1;
}
