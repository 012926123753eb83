#include "json.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

/* The writer appends with buf_*; out-of-memory in a command-line tool ends it. */
static void json_raw(json_t *j, const char *s, size_t n)
{
    if (buf_append(&j->out, s, n) != 0) {
        fputs("carrel: out of memory\n", stderr);
        exit(1);
    }
}

static void json_rawz(json_t *j, const char *s)
{
    json_raw(j, s, strlen(s));
}

void json_init(json_t *j)
{
    memset(j, 0, sizeof(*j));
    j->first[0] = true;
}

void json_free(json_t *j)
{
    buf_free(&j->out);
}

/* Emit the separator a new value needs at the current position. */
static void json_value_prefix(json_t *j)
{
    if (j->after_key) {
        j->after_key = false;
        return;
    }
    if (!j->first[j->depth])
        json_rawz(j, ",");
    j->first[j->depth] = false;
}

static void json_open(json_t *j, const char *bracket)
{
    json_value_prefix(j);
    json_rawz(j, bracket);
    if (j->depth < 63)
        j->depth++;
    j->first[j->depth] = true;
}

static void json_close(json_t *j, const char *bracket)
{
    if (j->depth > 0)
        j->depth--;
    json_rawz(j, bracket);
}

void json_object_begin(json_t *j)
{
    json_open(j, "{");
}

void json_object_end(json_t *j)
{
    json_close(j, "}");
}

void json_array_begin(json_t *j)
{
    json_open(j, "[");
}

void json_array_end(json_t *j)
{
    json_close(j, "]");
}

/*
 * A JSON string. Besides what JSON requires (quote, backslash, U+0000-U+001F),
 * DEL and the C1 controls are escaped too, so that a terminal shown the
 * document raw never meets a control character; a byte that is not UTF-8
 * becomes U+FFFD, so the document stays valid JSON (which is UTF-8).
 */
static void json_quoted(json_t *j, const char *s)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t n = strlen(s);
    json_rawz(j, "\"");
    size_t i = 0;
    while (i < n) {
        uint32_t c = 0;
        size_t len = text_utf8_decode(p + i, n - i, &c);
        char esc[8];
        if (len == 0) {
            json_rawz(j, "\\ufffd");
            i++;
            continue;
        }
        if (c == '"')
            json_rawz(j, "\\\"");
        else if (c == '\\')
            json_rawz(j, "\\\\");
        else if (c == '\n')
            json_rawz(j, "\\n");
        else if (c == '\r')
            json_rawz(j, "\\r");
        else if (c == '\t')
            json_rawz(j, "\\t");
        else if (c < 0x20 || text_is_control(c)) {
            snprintf(esc, sizeof(esc), "\\u%04x", (unsigned)c);
            json_rawz(j, esc);
        } else {
            json_raw(j, (const char *)p + i, len);
        }
        i += len;
    }
    json_rawz(j, "\"");
}

void json_key(json_t *j, const char *key)
{
    json_value_prefix(j);
    json_quoted(j, key);
    json_rawz(j, ":");
    j->after_key = true;
}

void json_string(json_t *j, const char *s)
{
    json_value_prefix(j);
    if (s)
        json_quoted(j, s);
    else
        json_rawz(j, "null");
}

void json_int(json_t *j, int64_t v)
{
    char num[32];
    snprintf(num, sizeof(num), "%" PRId64, v);
    json_value_prefix(j);
    json_rawz(j, num);
}

void json_uint(json_t *j, uint64_t v)
{
    char num[32];
    snprintf(num, sizeof(num), "%" PRIu64, v);
    json_value_prefix(j);
    json_rawz(j, num);
}

void json_double(json_t *j, double v)
{
    char num[64];
    if (!isfinite(v))
        snprintf(num, sizeof(num), "null");
    else
        snprintf(num, sizeof(num), "%.17g", v);
    json_value_prefix(j);
    json_rawz(j, num);
}

void json_bool(json_t *j, bool v)
{
    json_value_prefix(j);
    json_rawz(j, v ? "true" : "false");
}

void json_null(json_t *j)
{
    json_value_prefix(j);
    json_rawz(j, "null");
}

const char *json_enum_name(const ProtobufCEnumDescriptor *desc, int value)
{
    static char out[128];
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(desc, value);
    if (v == NULL) {
        snprintf(out, sizeof(out), "%d", value);
        return out;
    }
    /* CamelCase type name -> UPPER_SNAKE_ prefix, stripped from the value's name. */
    char prefix[128];
    size_t n = 0;
    for (const char *p = desc->short_name; *p && n + 2 < sizeof(prefix); p++) {
        if (p != desc->short_name && isupper((unsigned char)*p))
            prefix[n++] = '_';
        prefix[n++] = (char)toupper((unsigned char)*p);
    }
    prefix[n++] = '_';
    prefix[n] = '\0';
    const char *name = v->name;
    if (strncmp(name, prefix, n) == 0)
        name += n;
    size_t i = 0;
    for (; name[i] && i + 1 < sizeof(out); i++)
        out[i] = (char)tolower((unsigned char)name[i]);
    out[i] = '\0';
    return out;
}

static void json_base64(json_t *j, const uint8_t *data, size_t len)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    json_value_prefix(j);
    json_rawz(j, "\"");
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)data[i + 1] << 8;
        if (i + 2 < len)
            v |= data[i + 2];
        char q[4] = {tab[(v >> 18) & 63], tab[(v >> 12) & 63],
                     i + 1 < len ? tab[(v >> 6) & 63] : '=', i + 2 < len ? tab[v & 63] : '='};
        json_raw(j, q, 4);
    }
    json_rawz(j, "\"");
}

/* One element of a field: `p` points at the value (not at a has_/n_ flag). */
static void json_field_value(json_t *j, const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        json_int(j, *(const int32_t *)p);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        json_uint(j, *(const uint32_t *)p);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        json_int(j, *(const int64_t *)p);
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        json_uint(j, *(const uint64_t *)p);
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        json_double(j, *(const float *)p);
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        json_double(j, *(const double *)p);
        break;
    case PROTOBUF_C_TYPE_BOOL:
        json_bool(j, *(const protobuf_c_boolean *)p);
        break;
    case PROTOBUF_C_TYPE_ENUM:
        json_string(j, json_enum_name(f->descriptor, *(const int *)p));
        break;
    case PROTOBUF_C_TYPE_STRING:
        json_string(j, *(char *const *)p);
        break;
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        json_base64(j, b->data, b->len);
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *m = *(ProtobufCMessage *const *)p;
        if (m)
            json_message(j, m);
        else
            json_null(j);
        break;
    }
    }
}

static size_t json_type_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    }
    return 0;
}

void json_message(json_t *j, const ProtobufCMessage *msg)
{
    json_object_begin(j);
    json_message_fields(j, msg);
    json_object_end(j);
}

void json_message_fields(json_t *j, const ProtobufCMessage *msg)
{
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    const char *base = (const char *)msg;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const void *value = base + f->offset;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            const char *arr = *(char *const *)value;
            json_key(j, f->name);
            json_array_begin(j);
            for (size_t k = 0; k < n; k++)
                json_field_value(j, f, arr + k * json_type_size(f->type));
            json_array_end(j);
            continue;
        }
        bool present;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
            present = *(const uint32_t *)(base + f->quantifier_offset) == f->id;
        else if (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE)
            present = *(void *const *)value != NULL;
        else if (f->label == PROTOBUF_C_LABEL_OPTIONAL)
            present = *(const protobuf_c_boolean *)(base + f->quantifier_offset);
        else
            present = true;
        if (!present)
            continue;
        json_key(j, f->name);
        json_field_value(j, f, value);
    }
}

void json_print(json_t *j, FILE *out)
{
    fwrite(j->out.data, 1, j->out.len, out);
    fputc('\n', out);
}
