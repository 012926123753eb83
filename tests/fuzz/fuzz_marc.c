/*
 * libFuzzer target: marc_parse() on any bytes must return a record or an
 * error, never misbehave (ASan, UBSan). A record it accepts must survive
 * marc_summarize(), marc_to_text() and a marc_write() round trip: what the
 * writer produces parses again to the same fields.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "marc.h"

static void same_record(const marc_record_t *x, const marc_record_t *y)
{
    if (x->nfields != y->nfields)
        abort();
    for (size_t i = 0; i < x->nfields; i++) {
        const marc_field_t *f = &x->fields[i], *g = &y->fields[i];
        if (strcmp(f->tag, g->tag) != 0)
            abort();
        if (marc_is_control_tag(f->tag)) {
            if (strcmp(f->data, g->data) != 0)
                abort();
            continue;
        }
        if (f->ind1 != g->ind1 || f->ind2 != g->ind2 || f->nsubfields != g->nsubfields)
            abort();
        for (size_t k = 0; k < f->nsubfields; k++)
            if (f->subfields[k].code != g->subfields[k].code ||
                strcmp(f->subfields[k].value, g->subfields[k].value) != 0)
                abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    arena_t a;
    arena_init(&a);
    marc_record_t r;
    char err[200];
    if (marc_parse(&a, data, size, &r, err, sizeof(err)) == 0) {
        marc_summary_t s;
        marc_summarize(&a, &r, &s);
        (void)marc_to_text(&a, &r);
        size_t n;
        (void)marc_holdings(&a, &r, "852", &n);
        struct buf out = BUF_INIT;
        if (marc_write(&r, &out, err, sizeof(err)) == 0) {
            marc_record_t back;
            if (marc_parse(&a, out.data, out.len, &back, err, sizeof(err)) != 0)
                abort(); /* the writer produced what the reader refuses */
            same_record(&r, &back);
            /* An edit that changes everything, then written again. */
            marc_summary_t edit = s;
            edit.title = "Fuzzed : title";
            edit.year = "1999";
            edit.language = "eng";
            marc_apply_summary(&a, &back, &edit);
            marc_set_system_id(&a, &back, "CARREL-0000abcd", 42);
            struct buf again = BUF_INIT;
            if (marc_write(&back, &again, err, sizeof(err)) == 0 &&
                marc_parse(&a, again.data, again.len, &r, err, sizeof(err)) != 0)
                abort();
            buf_free(&again);
        }
        buf_free(&out);
    }
    arena_free(&a);
    return 0;
}
