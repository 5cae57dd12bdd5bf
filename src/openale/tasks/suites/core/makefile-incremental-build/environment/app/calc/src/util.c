#include "util.h"

const char *skip_space(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    return s;
}

int is_digit(char c)
{
    return c >= '0' && c <= '9';
}
