/*
 * wirecheck: refuse text that protobuf-c would accept and C would misread.
 *
 * protobuf-c's unpack copies a string field's bytes and adds a NUL, without
 * looking at them: "secret\0junk" becomes the C string "secret", and bytes
 * that are not UTF-8 pass through. wirecheck walks the serialized message
 * itself, field by field with its descriptors, and checks every string field
 * (in nested messages too) with text_check(). `bytes` fields are not text and
 * are skipped, as are unknown fields.
 *
 * Pure and allocation-free: the daemon runs it on every request frame.
 */
#ifndef CARREL_WIRECHECK_H
#define CARREL_WIRECHECK_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "check.h"
#include "text.h"

/* Deeper nesting than any Carrel message has is refused as malformed. */
#define WIRECHECK_MAX_DEPTH 16

typedef enum wirecheck_result {
    WIRECHECK_OK = 0,
    WIRECHECK_TEXT,      /* a string field is not acceptable text: see the error */
    WIRECHECK_MALFORMED, /* not a well-formed message (or nested too deeply) */
} wirecheck_result_t;

typedef struct wirecheck_error {
    const ProtobufCFieldDescriptor
        *field; /* the string field (its name is ours, not the client's) */
    int depth;  /* 0: a field of the outermost message */
    text_problem_t problem;
    uint32_t cp; /* the offending code point or byte */
} wirecheck_error_t;

/*
 * Check the serialized message `data` of type `desc`. On WIRECHECK_TEXT, *err
 * names the first offending field (err may be NULL).
 */
CARREL_MUST_USE wirecheck_result_t wirecheck_strings(const ProtobufCMessageDescriptor *desc,
                                                     const uint8_t *data, size_t len,
                                                     wirecheck_error_t *err);

#endif
