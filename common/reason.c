#include "reason.h"

#include <string.h>

#include "carrel.pb-c.h"
#include "status.h"

#define BY_STATUS REASON_EXIT_BY_STATUS

typedef struct reason_entry {
    const char *name;
    int status;
    int exit_code;
    unsigned flags;
    const char *sentence;
} reason_entry_t;

static const reason_entry_t reason_entries[REASON_COUNT] = {
    [REASON_NONE] = {NULL, CARREL__STATUS__STATUS_INTERNAL, BY_STATUS, 0, ""},
#define X(e, name, status, exit_code, flags, sentence)                                             \
    [REASON_##e] = {name, CARREL__STATUS__STATUS_##status, exit_code, flags, sentence},
    CARREL_REASON_TABLE(X)
#undef X
};

static const reason_entry_t *reason_entry(reason_t r)
{
    return (unsigned)r < REASON_COUNT ? &reason_entries[r] : &reason_entries[REASON_NONE];
}

const char *reason_name(reason_t r)
{
    return reason_entry(r)->name;
}

int reason_status(reason_t r)
{
    return reason_entry(r)->status;
}

const char *reason_sentence(reason_t r)
{
    return reason_entry(r)->sentence;
}

unsigned reason_flags(reason_t r)
{
    return reason_entry(r)->flags;
}

int reason_exit_code(reason_t r, int status)
{
    int code = reason_entry(r)->exit_code;
    return code == REASON_EXIT_BY_STATUS ? status_exit_code(status) : code;
}

/* A linear search: about 90 short names, and only failures look one up. */
reason_t reason_from_name(const char *name)
{
    if (name == NULL || name[0] == '\0')
        return REASON_NONE;
    const char *colon = strchr(name, ':');
    size_t len = colon ? (size_t)(colon - name) : strlen(name);
    for (int r = REASON_NONE + 1; r < REASON_COUNT; r++) {
        const reason_entry_t *e = &reason_entries[r];
        /* "field:<name>" matches only a parametric entry, and "field" alone
         * (as the table names it) matches it too. */
        if (strlen(e->name) != len || strncmp(e->name, name, len) != 0)
            continue;
        if (colon && !(e->flags & REASON_PARAM))
            return REASON_NONE;
        return (reason_t)r;
    }
    return REASON_NONE;
}
