/*
 * json: a small streaming JSON writer, and a reflective converter from any
 * protobuf-c message to JSON (field names as in the .proto files, enums as
 * lower-case names without their type prefix). Every `--json` output of the
 * client goes through here, so scripts see one consistent shape; the daemon
 * uses the writer to hand structured batches to SQL functions.
 */
#ifndef CARREL_JSON_H
#define CARREL_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <protobuf-c/protobuf-c.h>

#include "buf.h"

typedef struct json {
    struct buf out;
    int depth;
    bool first[64]; /* per nesting level: no comma needed yet */
    bool after_key;
} json_t;

void json_init(json_t *j);
void json_free(json_t *j);
void json_object_begin(json_t *j);
void json_object_end(json_t *j);
void json_array_begin(json_t *j);
void json_array_end(json_t *j);
void json_key(json_t *j, const char *key);
void json_string(json_t *j, const char *s);
void json_int(json_t *j, int64_t v);
void json_uint(json_t *j, uint64_t v);
void json_double(json_t *j, double v);
void json_bool(json_t *j, bool v);
void json_null(json_t *j);
/* Write a message as a JSON object. */
void json_message(json_t *j, const ProtobufCMessage *msg);
/*
 * Write a message's fields as keys of the object the caller has open, so
 * that the caller can add keys of its own before or after them (a batch
 * element's "ok"): json_object_begin, json_key "ok", json_message_fields,
 * json_object_end.
 */
void json_message_fields(json_t *j, const ProtobufCMessage *msg);
/* Print the document and a newline to `out`. */
void json_print(json_t *j, FILE *out);
/* "ROLE_BRANCH_MANAGER" of enum Role -> "branch_manager" (static buffer). */
const char *json_enum_name(const ProtobufCEnumDescriptor *desc, int value);

#endif
