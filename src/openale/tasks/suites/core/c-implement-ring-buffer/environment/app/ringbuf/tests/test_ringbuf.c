#include <stdio.h>
#include <string.h>

#include "ringbuf.h"

static int failures = 0;
#define CHECK(cond) do { if (!(cond)) { fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); failures++; } } while (0)

int main(void)
{
    ringbuf *rb = rb_create(8);
    CHECK(rb != NULL);
    if (!rb)
        return 1;
    CHECK(rb_capacity(rb) == 8 && rb_size(rb) == 0 && rb_space(rb) == 8);

    CHECK(rb_write(rb, "hello", 5) == 5);
    CHECK(rb_size(rb) == 5);
    char out[16] = {0};
    CHECK(rb_read(rb, out, 2) == 2 && memcmp(out, "he", 2) == 0);
    CHECK(rb_write(rb, "world!", 6) == 5); /* only 5 bytes of space */
    CHECK(rb_size(rb) == 8 && rb_space(rb) == 0);
    memset(out, 0, sizeof out);
    CHECK(rb_peek(rb, 0, out, 16) == 8 && memcmp(out, "lloworld", 8) == 0);
    CHECK(rb_find(rb, 'w') == 3);
    CHECK(rb_discard(rb, 3) == 3);
    CHECK(rb_read(rb, out, 16) == 5 && memcmp(out, "world", 5) == 0);
    CHECK(rb_size(rb) == 0);
    rb_destroy(rb);
    CHECK(rb_create(0) == NULL);

    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("all checks passed\n");
    return 0;
}
