#ifndef RINGBUF_H
#define RINGBUF_H

#include <stddef.h>

/*
 * A fixed-capacity FIFO byte buffer (ring buffer).
 *
 * Bytes are read back in the order they were written. "Oldest" is the byte
 * that was written longest ago and not yet read or discarded; offsets count
 * from it (offset 0 is the oldest byte). All functions accept any state the
 * buffer can reach, including wrapped-around contents. A `len` of 0 is always
 * allowed (and then `data`/`out` may be NULL).
 */
typedef struct ringbuf ringbuf;

/* A new, empty buffer holding up to `capacity` bytes; NULL if capacity is 0
 * or memory runs out. */
ringbuf *rb_create(size_t capacity);

/* Frees the buffer and everything it owns. rb_destroy(NULL) does nothing. */
void rb_destroy(ringbuf *rb);

size_t rb_capacity(const ringbuf *rb); /* as given to rb_create */
size_t rb_size(const ringbuf *rb);     /* bytes currently stored */
size_t rb_space(const ringbuf *rb);    /* capacity - size */

/* Appends min(len, rb_space(rb)) bytes from `data`; returns that count.
 * Bytes that do not fit are not written. */
size_t rb_write(ringbuf *rb, const void *data, size_t len);

/* Appends all `len` bytes, discarding the oldest stored bytes as needed to
 * make room. If len > capacity, only the last `capacity` bytes of `data`
 * end up stored. Returns how many previously stored bytes were discarded. */
size_t rb_write_overwrite(ringbuf *rb, const void *data, size_t len);

/* Removes the min(len, rb_size(rb)) oldest bytes and copies them to `out`;
 * returns that count. */
size_t rb_read(ringbuf *rb, void *out, size_t len);

/* Copies up to `len` bytes starting `offset` bytes after the oldest one,
 * without removing anything; returns the number copied (0 when
 * offset >= rb_size(rb)). */
size_t rb_peek(const ringbuf *rb, size_t offset, void *out, size_t len);

/* Drops the min(len, rb_size(rb)) oldest bytes; returns that count. */
size_t rb_discard(ringbuf *rb, size_t len);

/* Empties the buffer (capacity unchanged). */
void rb_clear(ringbuf *rb);

/* Offset of the first (oldest) stored byte equal to `byte`, or -1. */
long rb_find(const ringbuf *rb, unsigned char byte);

#endif
