/*
 * Unit tests for server/reply.c's row side: the column check that stands
 * between a statement and the code that reads its rows, and the text helpers
 * (NULL stays NULL only where asked). Results are built with libpq's own
 * PQmakeEmptyPGresult/PQsetResultAttrs/PQsetvalue, no database needed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "reply.h"

enum { T_ID, T_TITLE, T_NOTE, T_NCOLS };
static const reply_stmt_t stmt_t = {{"t", "SELECT id, title, note FROM t"}, T_NCOLS};

/* A one-row result of `ncols` text columns: "7", "Dune", then SQL NULLs. */
static PGresult *result_of(int ncols)
{
    PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    assert_non_null(res);
    PGresAttDesc attrs[8];
    static char *const names[] = {"id", "title", "note", "a", "b", "c", "d", "e"};
    assert_true(ncols <= 8);
    for (int i = 0; i < ncols; i++)
        attrs[i] = (PGresAttDesc){.name = names[i], .typid = 25, .typlen = -1, .atttypmod = -1};
    assert_int_equal(PQsetResultAttrs(res, ncols, attrs), 1);
    if (ncols > 0)
        assert_int_equal(PQsetvalue(res, 0, 0, "7", 1), 1);
    if (ncols > 1)
        assert_int_equal(PQsetvalue(res, 0, 1, "Dune", 4), 1);
    for (int i = 2; i < ncols; i++)
        assert_int_equal(PQsetvalue(res, 0, i, NULL, -1), 1);
    return res;
}

static void test_fits_only_the_declared_width(void **state)
{
    (void)state;
    PGresult *exact = result_of(T_NCOLS), *fewer = result_of(T_NCOLS - 1),
             *more = result_of(T_NCOLS + 1);
    assert_true(reply_fits(&stmt_t, exact));
    /* A SELECT list that lost or gained a column is refused, not read askew. */
    assert_false(reply_fits(&stmt_t, fewer));
    assert_false(reply_fits(&stmt_t, more));
    PQclear(exact);
    PQclear(fewer);
    PQclear(more);
}

static void test_text_helpers(void **state)
{
    (void)state;
    request_t req;
    memset(&req, 0, sizeof(req));
    arena_init(&req.arena);
    PGresult *res = result_of(T_NCOLS);
    assert_string_equal(COL(res, 0, T_TITLE), "Dune");
    assert_string_equal(COL(res, 0, T_NOTE), "");
    assert_int_equal(db_int64(res, 0, T_ID), 7);
    char *title = reply_text_opt(&req, res, 0, T_TITLE);
    assert_string_equal(title, "Dune");
    assert_ptr_not_equal(title, PQgetvalue(res, 0, T_TITLE));  /* a copy: outlives res */
    assert_null(reply_text_opt(&req, res, 0, T_NOTE));         /* absent from the reply */
    assert_string_equal(reply_text(&req, res, 0, T_NOTE), ""); /* or empty, when asked */
    PQclear(res);
    assert_string_equal(title, "Dune");
    arena_free(&req.arena);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fits_only_the_declared_width),
        cmocka_unit_test(test_text_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
