#include "wirecheck.h"

/* Read a varint of at most 10 bytes; false when cut short or too long. */
static bool wire_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < 10; i++) {
        if (*pos >= len)
            return false;
        uint8_t b = p[(*pos)++];
        v |= (uint64_t)(b & 0x7F) << (7 * i);
        if (!(b & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

static wirecheck_result_t wirecheck_message(const ProtobufCMessageDescriptor *desc,
                                            const uint8_t *p, size_t len, int depth,
                                            wirecheck_error_t *err);

/* One length-delimited field's bytes: check text, descend into messages. */
static wirecheck_result_t wirecheck_delimited(const ProtobufCFieldDescriptor *f, const uint8_t *p,
                                              size_t len, int depth, wirecheck_error_t *err)
{
    if (f == NULL)
        return WIRECHECK_OK; /* unknown field: protobuf-c keeps it aside, nobody reads it */
    if (f->type == PROTOBUF_C_TYPE_MESSAGE)
        return wirecheck_message(f->descriptor, p, len, depth + 1, err);
    if (f->type != PROTOBUF_C_TYPE_STRING)
        return WIRECHECK_OK; /* bytes, or a packed repeated number */
    uint32_t cp = 0;
    text_problem_t problem = text_check(p, len, NULL, &cp);
    if (problem == TEXT_OK)
        return WIRECHECK_OK;
    if (err) {
        err->field = f;
        err->depth = depth;
        err->problem = problem;
        err->cp = cp;
    }
    return WIRECHECK_TEXT;
}

static wirecheck_result_t wirecheck_message(const ProtobufCMessageDescriptor *desc,
                                            const uint8_t *p, size_t len, int depth,
                                            wirecheck_error_t *err)
{
    if (depth > WIRECHECK_MAX_DEPTH)
        return WIRECHECK_MALFORMED;
    size_t pos = 0;
    while (pos < len) {
        uint64_t key, n;
        if (!wire_varint(p, len, &pos, &key))
            return WIRECHECK_MALFORMED;
        uint64_t number = key >> 3;
        switch (key & 7) {
        case 0: /* varint */
            if (!wire_varint(p, len, &pos, &n))
                return WIRECHECK_MALFORMED;
            break;
        case 1: /* 64-bit */
            if (len - pos < 8)
                return WIRECHECK_MALFORMED;
            pos += 8;
            break;
        case 5: /* 32-bit */
            if (len - pos < 4)
                return WIRECHECK_MALFORMED;
            pos += 4;
            break;
        case 2: { /* length-delimited: string, bytes, message, packed */
            if (!wire_varint(p, len, &pos, &n) || n > len - pos)
                return WIRECHECK_MALFORMED;
            const ProtobufCFieldDescriptor *f =
                number == 0 || number > UINT32_MAX
                    ? NULL
                    : protobuf_c_message_descriptor_get_field(desc, (unsigned)number);
            wirecheck_result_t r = wirecheck_delimited(f, p + pos, (size_t)n, depth, err);
            if (r != WIRECHECK_OK)
                return r;
            pos += (size_t)n;
            break;
        }
        default: /* groups (3, 4; protobuf-c refuses them too) and 6, 7 */
            return WIRECHECK_MALFORMED;
        }
    }
    return WIRECHECK_OK;
}

wirecheck_result_t wirecheck_strings(const ProtobufCMessageDescriptor *desc, const uint8_t *data,
                                     size_t len, wirecheck_error_t *err)
{
    return wirecheck_message(desc, data, len, 0, err);
}
