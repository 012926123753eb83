/*
 * arena: a bump allocator for everything one request needs (the unpacked
 * request, the response being built, strings copied out of query results).
 * Nothing is freed individually; arena_free() releases it all at once.
 */
#ifndef CARREL_ARENA_H
#define CARREL_ARENA_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

typedef struct arena_chunk arena_chunk_t;

typedef struct arena {
    arena_chunk_t *head;
    ProtobufCAllocator pb; /* hands protobuf-c allocations to this arena */
} arena_t;

void arena_init(arena_t *a);
/*
 * Zeroed memory, 16-byte aligned (size 0 gives 16 bytes of its own); aborts
 * when out of memory (requests are small) or for a size no allocation can
 * have. A size over a chunk (8 KiB) gets a chunk of its own.
 */
void *arena_alloc(arena_t *a, size_t size);
char *arena_strdup(arena_t *a, const char *s);
char *arena_strndup(arena_t *a, const char *s, size_t n);
char *arena_printf(arena_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void arena_free(arena_t *a);

/* Allocate a zeroed array of n elements of type T. */
#define arena_new(a, T, n) ((T *)arena_alloc((a), sizeof(T) * (size_t)(n)))

#endif
