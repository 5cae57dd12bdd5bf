#include <stdlib.h>
#include <string.h>

#include "ringbuf.h"

/* TODO: implement the ring buffer described in include/ringbuf.h. */

struct ringbuf {
    int unused;
};

ringbuf *rb_create(size_t capacity)
{
    (void)capacity;
    return NULL;
}

void rb_destroy(ringbuf *rb)
{
    (void)rb;
}

size_t rb_capacity(const ringbuf *rb)
{
    (void)rb;
    return 0;
}

size_t rb_size(const ringbuf *rb)
{
    (void)rb;
    return 0;
}

size_t rb_space(const ringbuf *rb)
{
    (void)rb;
    return 0;
}

size_t rb_write(ringbuf *rb, const void *data, size_t len)
{
    (void)rb; (void)data; (void)len;
    return 0;
}

size_t rb_write_overwrite(ringbuf *rb, const void *data, size_t len)
{
    (void)rb; (void)data; (void)len;
    return 0;
}

size_t rb_read(ringbuf *rb, void *out, size_t len)
{
    (void)rb; (void)out; (void)len;
    return 0;
}

size_t rb_peek(const ringbuf *rb, size_t offset, void *out, size_t len)
{
    (void)rb; (void)offset; (void)out; (void)len;
    return 0;
}

size_t rb_discard(ringbuf *rb, size_t len)
{
    (void)rb; (void)len;
    return 0;
}

void rb_clear(ringbuf *rb)
{
    (void)rb;
}

long rb_find(const ringbuf *rb, unsigned char byte)
{
    (void)rb; (void)byte;
    return -1;
}
