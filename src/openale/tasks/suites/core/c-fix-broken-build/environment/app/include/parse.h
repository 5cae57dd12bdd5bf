#ifndef PARSE_H
#define PARSE_H

/* Parses one input line.
 * Returns 1 and stores the number in *value for a line holding an integer
 * (surrounding whitespace allowed), 0 for a blank line or a comment line
 * (first non-blank character '#'), and -1 for anything else. */
int parse_line(const char *line, long *value);

#endif
