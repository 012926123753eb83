/*
 * Unit tests for client/journal.c, the offline desk's journal: entries read
 * back as written, a torn last line ignored (and cut off before the next
 * append), done markers surviving a reopen so an upload resumes, the upload
 * order (seq, at_ms clamped non-decreasing), a failed fsync refusing the scan and leaving
 * nothing behind, the rename when every entry is done; and client/offline.c's
 * pure parts (the cache file with its offset, due dates past closed days,
 * uploaded journals removed after a week).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "journal.h"
#include "offline.h"
#include "util.h"

static char dir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/carrel-journal-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    /* A directory below it that does not exist yet: journal_open makes it. */
    strncat(dir, "/state/carrel", sizeof(dir) - strlen(dir) - 1);
    journal_sync = fsync;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    char *top = strstr(dir, "/state/carrel");
    if (top)
        *top = '\0';
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static journal_entry_t entry(const char *op, const char *card, const char *barcode, int64_t at)
{
    journal_entry_t e;
    memset(&e, 0, sizeof(e));
    assert_int_equal(util_uuid7(e.key), 0);
    util_strlcpy(e.op, op, sizeof(e.op));
    util_strlcpy(e.card, card, sizeof(e.card));
    util_strlcpy(e.barcode, barcode, sizeof(e.barcode));
    e.ws_ms = at - 250;
    e.offset_ms = 250;
    e.at_ms = at;
    util_strlcpy(e.due, strcmp(op, "checkin") ? "2026-12-28" : "", sizeof(e.due));
    util_strlcpy(e.clerk, "clara \"the\" clerk\\", sizeof(e.clerk));
    return e;
}

static void append_ok(journal_t *j, journal_entry_t *e)
{
    char err[300];
    assert_int_equal(journal_append(j, e, err, sizeof(err)), 0);
}

static void test_append_and_read_back(void **state)
{
    (void)state;
    journal_t j;
    char err[300];
    assert_int_equal(journal_open(&j, dir, "desk-dwn", err, sizeof(err)), 0);
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(stat(j.path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    journal_entry_t a = entry("checkout", "21234900000017", "31234900000015", 1000);
    journal_entry_t b = entry("checkin", "", "31234900000023", 2000);
    append_ok(&j, &a);
    append_ok(&j, &b);
    assert_int_equal(a.seq, 1);
    assert_int_equal(b.seq, 2);
    char path[300];
    util_strlcpy(path, j.path, sizeof(path));
    journal_close(&j);

    journal_t r;
    assert_int_equal(journal_read(&r, path, err, sizeof(err)), 0);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.torn, 0);
    assert_int_equal(r.bad, 0);
    assert_string_equal(r.entries[0].key, a.key);
    assert_string_equal(r.entries[0].op, "checkout");
    assert_string_equal(r.entries[0].card, "21234900000017");
    assert_string_equal(r.entries[0].barcode, "31234900000015");
    assert_int_equal(r.entries[0].ws_ms, 750);
    assert_int_equal(r.entries[0].offset_ms, 250);
    assert_int_equal(r.entries[0].at_ms, 1000);
    assert_string_equal(r.entries[0].due, "2026-12-28");
    assert_string_equal(r.entries[0].clerk, "clara \"the\" clerk\\");
    assert_string_equal(r.entries[1].op, "checkin");
    assert_string_equal(r.entries[1].due, "");
    assert_int_equal(journal_pending(&r), 2);
    journal_close(&r);
}

static void test_one_writer_at_a_time(void **state)
{
    (void)state;
    journal_t j, other;
    char err[300];
    assert_int_equal(journal_open(&j, dir, "desk-dwn", err, sizeof(err)), 0);
    assert_int_equal(journal_open(&other, dir, "desk-dwn", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "in use"));
    assert_int_equal(journal_open(&other, dir, "desk-prk", err, sizeof(err)), 0);
    journal_close(&other);
    journal_close(&j);
    assert_int_equal(journal_open(&other, dir, "desk-dwn", err, sizeof(err)), 0);
    journal_close(&other);
}

static void test_torn_last_line_is_ignored_and_cut(void **state)
{
    (void)state;
    journal_t j;
    char err[300];
    assert_int_equal(journal_open(&j, dir, "desk-dwn", err, sizeof(err)), 0);
    journal_entry_t a = entry("checkout", "21234900000017", "31234900000015", 1000);
    append_ok(&j, &a);
    char path[300];
    util_strlcpy(path, j.path, sizeof(path));
    journal_close(&j);
    /* The desk stopped in the middle of writing the next line. */
    FILE *f = fopen(path, "a");
    assert_non_null(f);
    fputs("{\"v\":1,\"seq\":2,\"key\":\"6f1c", f);
    fclose(f);

    journal_t r;
    assert_int_equal(journal_read(&r, path, err, sizeof(err)), 0);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.torn, 1);
    journal_close(&r);

    /* Reopened to append: the torn tail is cut off, the next line is whole. */
    assert_int_equal(journal_open(&j, dir, "desk-dwn", err, sizeof(err)), 0);
    assert_int_equal(j.torn, 1);
    journal_entry_t b = entry("checkin", "", "31234900000023", 2000);
    append_ok(&j, &b);
    assert_int_equal(b.seq, 2);
    journal_close(&j);
    assert_int_equal(journal_read(&r, path, err, sizeof(err)), 0);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.torn, 0);
    assert_int_equal(r.bad, 0);
    journal_close(&r);
}

static void test_done_markers_and_resume(void **state)
{
    (void)state;
    journal_t j;
    char err[300];
    assert_int_equal(journal_open(&j, dir, "desk-dwn", err, sizeof(err)), 0);
    journal_entry_t e[3] = {entry("checkout", "21234900000017", "31234900000015", 1000),
                            entry("checkout", "21234900000017", "31234900000023", 1100),
                            entry("checkin", "", "31234900000031", 1200)};
    for (int i = 0; i < 3; i++)
        append_ok(&j, &e[i]);
    assert_int_equal(journal_mark_done(&j, e[0].key, "applied", NULL, err, sizeof(err)), 0);
    assert_int_equal(journal_mark_done(&j, e[1].key, "skipped", "changed_after", err, sizeof(err)),
                     0);
    assert_int_equal(journal_pending(&j), 1);
    /* A key the journal does not hold is refused. */
    char other[37];
    assert_int_equal(util_uuid7(other), 0);
    assert_int_equal(journal_mark_done(&j, other, "applied", NULL, err, sizeof(err)), -1);
    journal_close(&j);

    /* The upload stopped here: reopened, only the third is left to send. */
    assert_int_equal(journal_open(&j, dir, "desk-dwn", err, sizeof(err)), 0);
    assert_int_equal(j.n, 3);
    assert_int_equal(j.ndone, 2);
    assert_true(j.entries[0].done);
    assert_string_equal(j.entries[1].outcome, "skipped");
    size_t n = 0;
    size_t *order = journal_upload_order(&j, &n);
    assert_int_equal(n, 1);
    assert_string_equal(j.entries[order[0]].key, e[2].key);
    free(order);
    /* The next scan continues the numbering. */
    journal_entry_t d = entry("renew", "21234900000017", "31234900000015", 1300);
    append_ok(&j, &d);
    assert_int_equal(d.seq, 4);

    /* Not all done: no rename. Then all done: renamed, and a new file next. */
    assert_int_equal(journal_finish(&j, "20261207T120000", err, sizeof(err)), 0);
    assert_int_equal(journal_mark_done(&j, e[2].key, "warning", "hold", err, sizeof(err)), 0);
    assert_int_equal(journal_mark_done(&j, d.key, "applied", NULL, err, sizeof(err)), 0);
    char path[300], done[340];
    util_strlcpy(path, j.path, sizeof(path));
    assert_int_equal(journal_finish(&j, "20261207T120000", err, sizeof(err)), 1);
    snprintf(done, sizeof(done), "%s.20261207T120000.done", path);
    assert_int_equal(access(done, F_OK), 0);
    assert_int_equal(access(path, F_OK), -1);
    journal_entry_t later = entry("checkin", "", "31234900000049", 5000);
    append_ok(&j, &later);
    assert_int_equal(later.seq, 1);
    assert_int_equal(access(path, F_OK), 0);
    journal_close(&j);
}

static void test_upload_order_is_seq_with_time_clamped(void **state)
{
    (void)state;
    journal_t j;
    char err[300];
    assert_int_equal(journal_open(&j, dir, "desk-dwn", err, sizeof(err)), 0);
    /* A checkout at 3000, then the clock stepped back (NTP) before the checkin
     * of the same copy at "1000", another scan at "2000", and one at 4000. */
    const char *op[] = {"checkout", "checkin", "checkin", "checkout"};
    int64_t at[] = {3000, 1000, 2000, 4000};
    journal_entry_t e[4];
    for (int i = 0; i < 4; i++) {
        e[i] = entry(op[i], i == 1 || i == 2 ? "" : "21234900000017", "31234900000015", at[i]);
        append_ok(&j, &e[i]);
    }
    size_t n = 0;
    size_t *order = journal_upload_order(&j, &n);
    assert_int_equal(n, 4);
    /* As scanned: the checkin after its checkout, dated no earlier than it. */
    int64_t sent[] = {3000, 3000, 3000, 4000};
    for (size_t k = 0; k < 4; k++) {
        assert_int_equal(j.entries[order[k]].seq, (int64_t)k + 1);
        assert_int_equal(j.entries[order[k]].upload_at_ms, sent[k]);
        assert_int_equal(j.entries[order[k]].at_ms, at[k]); /* the journal keeps what it read */
    }
    free(order);
    /* A resumed upload (the checkout done) clamps the rest as the first did. */
    assert_int_equal(journal_mark_done(&j, e[0].key, "applied", NULL, err, sizeof(err)), 0);
    journal_close(&j);
    assert_int_equal(journal_open(&j, dir, "desk-dwn", err, sizeof(err)), 0);
    order = journal_upload_order(&j, &n);
    assert_int_equal(n, 3);
    assert_int_equal(j.entries[order[0]].seq, 2);
    assert_int_equal(j.entries[order[0]].upload_at_ms, 3000);
    assert_int_equal(j.entries[order[2]].upload_at_ms, 4000);
    free(order);
    journal_close(&j);
}

static int failing_sync(int fd)
{
    (void)fd;
    errno = EIO;
    return -1;
}

static void test_fsync_error_refuses_the_scan(void **state)
{
    (void)state;
    journal_t j;
    char err[300];
    assert_int_equal(journal_open(&j, dir, "desk-dwn", err, sizeof(err)), 0);
    journal_entry_t a = entry("checkout", "21234900000017", "31234900000015", 1000);
    append_ok(&j, &a);
    journal_sync = failing_sync;
    journal_entry_t b = entry("checkout", "21234900000017", "31234900000023", 2000);
    assert_int_equal(journal_append(&j, &b, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "cannot sync"));
    assert_non_null(strstr(err, strerror(EIO)));
    assert_int_equal(journal_mark_done(&j, a.key, "applied", NULL, err, sizeof(err)), -1);
    journal_sync = fsync;
    assert_int_equal(j.n, 1);
    assert_false(j.entries[0].done);
    char path[300];
    util_strlcpy(path, j.path, sizeof(path));
    journal_close(&j);
    /* Nothing of the refused lines stayed in the file. */
    journal_t r;
    assert_int_equal(journal_read(&r, path, err, sizeof(err)), 0);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.ndone, 0);
    assert_int_equal(r.torn, 0);
    assert_int_equal(r.bad, 0);
    journal_close(&r);
}

static void test_lines_not_ours_are_skipped(void **state)
{
    (void)state;
    journal_entry_t e;
    const char *bad[] = {
        "",
        "{}",
        "not json",
        "{\"v\":2,\"seq\":1,\"key\":\"0b6bd1a4-52a1-4ff4-9b0e-4c5e1f0e3c61\",\"op\":\"checkin\"}",
        "{\"v\":1,\"seq\":1,\"key\":\"nope\",\"op\":\"checkin\"}",
        "{\"v\":1,\"seq\":1,\"key\":\"0b6bd1a4-52a1-4ff4-9b0e-4c5e1f0e3c61\",\"op\":\"steal\"}",
        "{\"v\":1,\"seq\":1,\"key\":\"0b6bd1a4-52a1-4ff4-9b0e-4c5e1f0e3c61\",\"op\":\"checkin\"} x",
        "{\"v\":1,\"done\":\"0b6bd1a4-52a1-4ff4-9b0e-4c5e1f0e3c61\"}",
        "{\"v\":1,\"seq\":1,\"key\":\"0b6bd1a4-52a1-4ff4-9b0e-4c5e1f0e3c61\",\"op\":{\"a\":1}}",
        NULL};
    for (int i = 0; bad[i]; i++)
        assert_int_equal(journal_parse_line(bad[i], strlen(bad[i]), &e), 0);
    const char *good = "{\"v\":1,\"seq\":7,\"key\":\"0b6bd1a4-52a1-4ff4-9b0e-4c5e1f0e3c61\","
                       "\"op\":\"checkin\",\"barcode\":\"31\\u00e9\",\"at_ms\":-5,\"new\":\"x\"}";
    assert_int_equal(journal_parse_line(good, strlen(good), &e), 1);
    assert_int_equal(e.seq, 7);
    assert_int_equal(e.at_ms, -5);
    assert_string_equal(e.barcode, "31\xc3\xa9");
    const char *done = "{\"v\":1,\"done\":\"0b6bd1a4-52a1-4ff4-9b0e-4c5e1f0e3c61\","
                       "\"outcome\":\"applied\"}";
    assert_int_equal(journal_parse_line(done, strlen(done), &e), 2);
}

static void test_cache_file_keeps_the_offset(void **state)
{
    (void)state;
    char err[300];
    assert_int_equal(journal_dir_make(dir, err, sizeof(err)), 0);
    Carrel__OfflineCache c = CARREL__OFFLINE_CACHE__INIT;
    Carrel__OfflineBlockedCard b = CARREL__OFFLINE_BLOCKED_CARD__INIT;
    Carrel__OfflineBlockedCard *blocked[] = {&b};
    char *closed[] = {"2026-12-21", "2026-12-22"};
    b.card = "21234900000017";
    b.reason = "fines";
    c.n_blocked = 1;
    c.blocked = blocked;
    c.has_default_loan_days = 1;
    c.default_loan_days = 14;
    c.n_closed_days = 2;
    c.closed_days = closed;
    c.branch_code = "DWN";
    char *path = offline_cache_path(dir, "desk-dwn");
    int64_t offsets[] = {-1234567, 0, 987654321};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(offline_cache_save(path, &c, offsets[i], err, sizeof(err)), 0);
        int64_t off = 42;
        Carrel__OfflineCache *r = offline_cache_load(path, &off, err, sizeof(err));
        assert_non_null(r);
        assert_int_equal(off, offsets[i]);
        assert_string_equal(r->branch_code, "DWN");
        assert_string_equal(offline_blocked(r, "21234900000017"), "fines");
        assert_null(offline_blocked(r, "21234900000025"));
        carrel__offline_cache__free_unpacked(r, NULL);
    }
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    free(path);
    /* A scan on 2026-12-07 at noon local time: 14 days is the 21st, closed, and the 22nd. */
    struct tm tm = {.tm_year = 126, .tm_mon = 11, .tm_mday = 7, .tm_hour = 12, .tm_isdst = -1};
    int64_t at = (int64_t)mktime(&tm) * 1000;
    char due[11];
    assert_true(offline_due_date(&c, at, due));
    assert_string_equal(due, "2026-12-23");
    c.has_default_loan_days = 0;
    assert_false(offline_due_date(&c, at, due));
    assert_int_equal(offline_offset(10500, 1000, 2000), 9000);
}

static void touch(const char *name, time_t age_s)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    struct timeval tv[2] = {{.tv_sec = time(NULL) - age_s}, {.tv_sec = time(NULL) - age_s}};
    assert_int_equal(utimes(path, tv), 0);
}

static bool exists(const char *name)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

static void test_old_uploaded_journals_are_removed(void **state)
{
    (void)state;
    char err[300];
    assert_int_equal(journal_dir_make(dir, err, sizeof(err)), 0);
    time_t old = (OFFLINE_DONE_KEEP_DAYS + 1) * 86400;
    touch("desk-dwn.journal.20261101T100000.done", old);
    touch("desk-dwn.journal.20261206T100000.done", 3600);
    touch("desk-prk.journal.20261101T100000.done", old); /* another workstation's */
    touch("desk-dwn.journal", old);                      /* not uploaded yet */
    assert_int_equal(offline_prune_done(dir, "desk-dwn"), 1);
    assert_false(exists("desk-dwn.journal.20261101T100000.done"));
    assert_true(exists("desk-dwn.journal.20261206T100000.done"));
    assert_true(exists("desk-prk.journal.20261101T100000.done"));
    assert_true(exists("desk-dwn.journal"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_and_read_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_writer_at_a_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_last_line_is_ignored_and_cut, setup, teardown),
        cmocka_unit_test_setup_teardown(test_done_markers_and_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upload_order_is_seq_with_time_clamped, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fsync_error_refuses_the_scan, setup, teardown),
        cmocka_unit_test(test_lines_not_ours_are_skipped),
        cmocka_unit_test_setup_teardown(test_cache_file_keeps_the_offset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_old_uploaded_journals_are_removed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
