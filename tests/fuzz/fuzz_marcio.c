/*
 * libFuzzer target: marcio_normalize() (libyaz's ISO 2709 and MARCXML
 * readers, MARC-8 conversion, libxml2) on any bytes, as ISO 2709 when the
 * first byte is even and as MARCXML when it is odd. What it accepts goes on
 * to marc_parse(), as in the import. libyaz itself is not instrumented, so
 * ASan sees its reads only through intercepted calls.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "marc.h"
#include "marcio.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    marcio_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool xml = data[0] & 1;
    struct buf out = BUF_INIT;
    char warning[300], err[300];
    if (marcio_normalize(data + 1, size - 1, xml, &out, warning, sizeof(warning), err,
                         sizeof(err)) == 0) {
        arena_t a;
        arena_init(&a);
        marc_record_t r;
        if (marc_parse(&a, out.data, out.len, &r, err, sizeof(err)) == 0) {
            marc_summary_t s;
            marc_summarize(&a, &r, &s);
            struct buf x = BUF_INIT;
            (void)marcio_to_marcxml(out.data, out.len, &x);
            buf_free(&x);
        }
        arena_free(&a);
    }
    buf_free(&out);
    return 0;
}
