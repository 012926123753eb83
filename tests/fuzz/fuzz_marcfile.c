/*
 * libFuzzer target: the client's ISO 2709 splitter on any bytes. Every
 * record it hands out lies inside the input, and the splitter terminates.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "marcfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A copy of exactly `size` bytes, so a read past the end is caught. */
    uint8_t *copy = malloc(size ? size : 1);
    if (copy == NULL)
        return 0;
    if (size)
        memcpy(copy, data, size);
    marcfile_t mf;
    memset(&mf, 0, sizeof(mf));
    marcfile_split_iso2709(&mf, copy, size);
    size_t total = 0;
    for (size_t i = 0; i < mf.nrecords; i++) {
        const marcfile_record_t *r = &mf.records[i];
        if (r->data < copy || r->len > size || r->data + r->len > copy + size)
            abort();
        total += r->len;
    }
    if (total > size)
        abort();
    marcfile_free(&mf);
    free(copy);
    return 0;
}
