/* Hidden harness: checks ringbuf against a simple model. Usage: harness TEST */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringbuf.h"

static int failures = 0;
#define CHECK(cond) do { if (!(cond)) { fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); if (++failures > 20) exit(1); } } while (0)

static uint64_t rng = 88172645463325252ULL;
static uint64_t next(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng; }

/* model: a plain array, oldest byte first */
struct model { unsigned char *d; size_t n, cap; };

static void model_drop(struct model *m, size_t k) { memmove(m->d, m->d + k, m->n - k); m->n -= k; }

static void test_basic(void)
{
    CHECK(rb_create(0) == NULL);
    rb_destroy(NULL);
    ringbuf *rb = rb_create(5);
    CHECK(rb && rb_capacity(rb) == 5 && rb_size(rb) == 0 && rb_space(rb) == 5);
    unsigned char out[32];
    CHECK(rb_read(rb, out, 10) == 0);
    CHECK(rb_peek(rb, 0, out, 10) == 0);
    CHECK(rb_discard(rb, 3) == 0);
    CHECK(rb_find(rb, 'a') == -1);
    CHECK(rb_write(rb, NULL, 0) == 0 && rb_read(rb, NULL, 0) == 0 && rb_peek(rb, 0, NULL, 0) == 0);
    CHECK(rb_write_overwrite(rb, NULL, 0) == 0);
    CHECK(rb_write(rb, "abcdefg", 7) == 5);
    CHECK(rb_size(rb) == 5 && rb_space(rb) == 0);
    CHECK(rb_write(rb, "x", 1) == 0);
    CHECK(rb_peek(rb, 5, out, 1) == 0);
    CHECK(rb_peek(rb, 3, out, 10) == 2 && memcmp(out, "de", 2) == 0);
    CHECK(rb_find(rb, 'e') == 4 && rb_find(rb, 'f') == -1);
    rb_clear(rb);
    CHECK(rb_size(rb) == 0 && rb_capacity(rb) == 5 && rb_find(rb, 'a') == -1);
    CHECK(rb_write(rb, "12", 2) == 2 && rb_read(rb, out, 5) == 2 && memcmp(out, "12", 2) == 0);
    rb_destroy(rb);
}

static void test_wraparound(void)
{
    ringbuf *rb = rb_create(7);
    unsigned char out[16];
    CHECK(rb_write(rb, "abcde", 5) == 5);
    CHECK(rb_read(rb, out, 4) == 4);             /* head moves near the end */
    CHECK(rb_write(rb, "fghijk", 6) == 6);       /* wraps */
    CHECK(rb_size(rb) == 7 && rb_space(rb) == 0);
    CHECK(rb_peek(rb, 0, out, 16) == 7 && memcmp(out, "efghijk", 7) == 0);
    CHECK(rb_peek(rb, 2, out, 3) == 3 && memcmp(out, "ghi", 3) == 0);
    CHECK(rb_peek(rb, 4, out, 16) == 3 && memcmp(out, "ijk", 3) == 0);
    CHECK(rb_find(rb, 'k') == 6 && rb_find(rb, 'e') == 0 && rb_find(rb, 'a') == -1);
    CHECK(rb_discard(rb, 2) == 2);
    CHECK(rb_find(rb, 'g') == 0);
    CHECK(rb_read(rb, out, 16) == 5 && memcmp(out, "ghijk", 5) == 0);
    CHECK(rb_size(rb) == 0);
    rb_destroy(rb);
}

static void test_overwrite(void)
{
    ringbuf *rb = rb_create(4);
    unsigned char out[16];
    CHECK(rb_write_overwrite(rb, "ab", 2) == 0);
    CHECK(rb_write_overwrite(rb, "cde", 3) == 1);
    CHECK(rb_peek(rb, 0, out, 16) == 4 && memcmp(out, "bcde", 4) == 0);
    CHECK(rb_write_overwrite(rb, "0123456789", 10) == 4);
    CHECK(rb_size(rb) == 4);
    CHECK(rb_read(rb, out, 16) == 4 && memcmp(out, "6789", 4) == 0);
    CHECK(rb_write(rb, "xy", 2) == 2);
    CHECK(rb_write_overwrite(rb, "ABCD", 4) == 2);
    CHECK(rb_read(rb, out, 16) == 4 && memcmp(out, "ABCD", 4) == 0);
    rb_destroy(rb);

    rb = rb_create(1);
    CHECK(rb_write_overwrite(rb, "a", 1) == 0);
    CHECK(rb_write_overwrite(rb, "bc", 2) == 1);
    CHECK(rb_read(rb, out, 4) == 1 && out[0] == 'c');
    rb_destroy(rb);
}

static void test_binary_bytes(void)
{
    ringbuf *rb = rb_create(300);
    unsigned char in[256], out[256];
    for (int i = 0; i < 256; i++)
        in[i] = (unsigned char)(255 - i);
    CHECK(rb_write(rb, in, 256) == 256);
    CHECK(rb_find(rb, 0) == 255 && rb_find(rb, 255) == 0 && rb_find(rb, 128) == 127);
    CHECK(rb_read(rb, out, 256) == 256 && memcmp(in, out, 256) == 0);
    rb_destroy(rb);
}

static void fuzz_one(size_t cap, int steps)
{
    ringbuf *rb = rb_create(cap);
    CHECK(rb != NULL);
    struct model m = { malloc(cap), 0, cap };
    unsigned char in[512], out[512], want[512];
    for (int s = 0; s < steps && failures == 0; s++) {
        size_t len = next() % (cap * 2 + 3);
        if (len > sizeof in) len = sizeof in;
        for (size_t i = 0; i < len; i++) in[i] = (unsigned char)next();
        switch (next() % 8) {
        case 0: case 1: { /* write */
            size_t space = m.cap - m.n, k = len < space ? len : space;
            CHECK(rb_write(rb, in, len) == k);
            memcpy(m.d + m.n, in, k); m.n += k;
            break;
        }
        case 2: { /* overwrite */
            const unsigned char *src = in; size_t k = len, dropped = 0;
            if (k > m.cap) { src += k - m.cap; dropped = m.n; m.n = 0; k = m.cap; }
            else if (k > m.cap - m.n) { dropped = k - (m.cap - m.n); model_drop(&m, dropped); }
            memcpy(m.d + m.n, src, k); m.n += k;
            CHECK(rb_write_overwrite(rb, in, len) == dropped);
            break;
        }
        case 3: case 4: { /* read */
            size_t k = len < m.n ? len : m.n;
            memset(out, 0xAA, sizeof out);
            CHECK(rb_read(rb, out, len) == k);
            CHECK(memcmp(out, m.d, k) == 0);
            model_drop(&m, k);
            break;
        }
        case 5: { /* peek */
            size_t off = next() % (cap + 2);
            size_t k = off >= m.n ? 0 : (len < m.n - off ? len : m.n - off);
            CHECK(rb_peek(rb, off, out, len) == k);
            if (k) CHECK(memcmp(out, m.d + off, k) == 0);
            break;
        }
        case 6: { /* discard */
            size_t k = len < m.n ? len : m.n;
            CHECK(rb_discard(rb, len) == k);
            model_drop(&m, k);
            break;
        }
        case 7: { /* find, sometimes clear */
            unsigned char b = (unsigned char)next();
            void *hit = m.n ? memchr(m.d, b, m.n) : NULL;
            long want_off = hit ? (long)((unsigned char *)hit - m.d) : -1;
            CHECK(rb_find(rb, b) == want_off);
            if (m.n) { unsigned char b2 = m.d[next() % m.n]; CHECK(rb_find(rb, b2) == (long)((unsigned char *)memchr(m.d, b2, m.n) - m.d)); }
            if (next() % 16 == 0) { rb_clear(rb); m.n = 0; }
            break;
        }
        }
        CHECK(rb_size(rb) == m.n && rb_space(rb) == cap - m.n && rb_capacity(rb) == cap);
        if (s % 7 == 0) {
            CHECK(rb_peek(rb, 0, want, sizeof want) == (m.n < sizeof want ? m.n : sizeof want));
            CHECK(memcmp(want, m.d, m.n < sizeof want ? m.n : sizeof want) == 0);
        }
    }
    free(m.d);
    rb_destroy(rb);
}

static void test_fuzz(void)
{
    size_t caps[] = {1, 2, 3, 7, 8, 13, 64, 100, 255};
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++)
        fuzz_one(caps[i], 4000);
}

static void test_many_buffers(void)
{
    ringbuf *bufs[50];
    for (int i = 0; i < 50; i++) {
        bufs[i] = rb_create((size_t)i + 1);
        CHECK(bufs[i] != NULL);
        unsigned char c = (unsigned char)i;
        for (int j = 0; j <= i; j++) rb_write(bufs[i], &c, 1);
    }
    for (int i = 0; i < 50; i++) {
        CHECK(rb_size(bufs[i]) == (size_t)i + 1 && rb_find(bufs[i], (unsigned char)i) == 0);
        rb_destroy(bufs[i]);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) return 2;
    const char *t = argv[1];
    if (!strcmp(t, "basic")) test_basic();
    else if (!strcmp(t, "wraparound")) test_wraparound();
    else if (!strcmp(t, "overwrite")) test_overwrite();
    else if (!strcmp(t, "binary")) test_binary_bytes();
    else if (!strcmp(t, "fuzz")) test_fuzz();
    else if (!strcmp(t, "many")) test_many_buffers();
    else return 2;
    if (failures) { fprintf(stderr, "%d check(s) failed\n", failures); return 1; }
    printf("ok %s\n", t);
    return 0;
}
