#!/bin/bash
set -euo pipefail
cd /app/ringbuf
cat > src/ringbuf.c <<'C'
#include <stdlib.h>
#include <string.h>

#include "ringbuf.h"

struct ringbuf {
    unsigned char *buf;
    size_t cap;
    size_t head; /* index of the oldest byte */
    size_t size;
};

ringbuf *rb_create(size_t capacity)
{
    if (capacity == 0)
        return NULL;
    ringbuf *rb = malloc(sizeof *rb);
    if (!rb)
        return NULL;
    rb->buf = malloc(capacity);
    if (!rb->buf) {
        free(rb);
        return NULL;
    }
    rb->cap = capacity;
    rb->head = 0;
    rb->size = 0;
    return rb;
}

void rb_destroy(ringbuf *rb)
{
    if (!rb)
        return;
    free(rb->buf);
    free(rb);
}

size_t rb_capacity(const ringbuf *rb) { return rb->cap; }
size_t rb_size(const ringbuf *rb) { return rb->size; }
size_t rb_space(const ringbuf *rb) { return rb->cap - rb->size; }

/* copy n bytes from the ring starting at logical offset `off` */
static void copy_out(const ringbuf *rb, size_t off, unsigned char *out, size_t n)
{
    size_t start = (rb->head + off) % rb->cap;
    size_t first = rb->cap - start < n ? rb->cap - start : n;
    memcpy(out, rb->buf + start, first);
    if (n > first)
        memcpy(out + first, rb->buf, n - first);
}

static void copy_in(ringbuf *rb, const unsigned char *data, size_t n)
{
    size_t tail = (rb->head + rb->size) % rb->cap;
    size_t first = rb->cap - tail < n ? rb->cap - tail : n;
    memcpy(rb->buf + tail, data, first);
    if (n > first)
        memcpy(rb->buf, data + first, n - first);
    rb->size += n;
}

size_t rb_write(ringbuf *rb, const void *data, size_t len)
{
    size_t n = len < rb_space(rb) ? len : rb_space(rb);
    if (n)
        copy_in(rb, data, n);
    return n;
}

size_t rb_discard(ringbuf *rb, size_t len)
{
    size_t n = len < rb->size ? len : rb->size;
    rb->head = (rb->head + n) % rb->cap;
    rb->size -= n;
    if (rb->size == 0)
        rb->head = 0;
    return n;
}

size_t rb_write_overwrite(ringbuf *rb, const void *data, size_t len)
{
    const unsigned char *p = data;
    size_t dropped = 0;
    if (len == 0)
        return 0;
    if (len >= rb->cap) {
        dropped = rb->size;
        rb->head = 0;
        rb->size = 0;
        copy_in(rb, p + (len - rb->cap), rb->cap);
        return dropped;
    }
    if (len > rb_space(rb))
        dropped = rb_discard(rb, len - rb_space(rb));
    copy_in(rb, p, len);
    return dropped;
}

size_t rb_peek(const ringbuf *rb, size_t offset, void *out, size_t len)
{
    if (offset >= rb->size)
        return 0;
    size_t avail = rb->size - offset;
    size_t n = len < avail ? len : avail;
    if (n)
        copy_out(rb, offset, out, n);
    return n;
}

size_t rb_read(ringbuf *rb, void *out, size_t len)
{
    size_t n = rb_peek(rb, 0, out, len);
    rb_discard(rb, n);
    return n;
}

void rb_clear(ringbuf *rb)
{
    rb->head = 0;
    rb->size = 0;
}

long rb_find(const ringbuf *rb, unsigned char byte)
{
    for (size_t i = 0; i < rb->size; i++)
        if (rb->buf[(rb->head + i) % rb->cap] == byte)
            return (long)i;
    return -1;
}
C
make clean
make test
