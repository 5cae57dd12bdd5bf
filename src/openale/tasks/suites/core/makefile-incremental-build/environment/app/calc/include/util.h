#ifndef UTIL_H
#define UTIL_H

const char *skip_space(const char *s);
int is_digit(char c);

#endif
