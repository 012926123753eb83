/*
 * Unit tests for server/perm.c: every role against every action, the staff
 * management rules, role names and the refusal sentences.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "perm.h"

#define CLERK       CARREL__ROLE__ROLE_CLERK
#define LIBRARIAN   CARREL__ROLE__ROLE_LIBRARIAN
#define MANAGER     CARREL__ROLE__ROLE_BRANCH_MANAGER
#define COORDINATOR CARREL__ROLE__ROLE_COORDINATOR
#define ADMIN       CARREL__ROLE__ROLE_ADMIN
#define SELFCHECK   CARREL__ROLE__ROLE_SELFCHECK
#define UNSPECIFIED CARREL__ROLE__ROLE_UNSPECIFIED

#define OWN_BRANCH   3
#define OTHER_BRANCH 4

#define OK   PERM_OK
#define ROLE PERM_DENIED_ROLE
#define BR   PERM_DENIED_BRANCH

/* The matrix below has one column per action; a new action must be added to it. */
_Static_assert(PERM_COUNT == 55, "add the new action to the expectations in test_perm.c");

static const char *const action_names[PERM_COUNT] = {
#define X(action, roles, scope, text) [action] = #action,
    PERM_TABLE(X)
#undef X
};

static const char *const action_texts[PERM_COUNT] = {
#define X(action, roles, scope, text) [action] = text,
    PERM_TABLE(X)
#undef X
};

/*
 * What each role gets for each action, on its own branch and on another.
 * Columns: BRANCH_READ, STAFF_READ, STAFF_MANAGE, WORKSTATION_READ,
 * WORKSTATION_MANAGE, SERVER_ADMIN | CATALOG_READ, CATALOG_EDIT, CATALOG_IMPORT, ITEM_EDIT |
 * PATRON_READ, PATRON_EDIT_CONTACT, PATRON_EDIT_ACCOUNT, PATRON_BLOCK,
 * PATRON_MERGE, PATRON_HISTORY | CIRC, CIRC_OVERRIDE, LEDGER_ADJUST, POLICY_READ,
 * POLICY_EDIT, CALENDAR_EDIT | NOTICE_RUN | STATS_READ, STATS_REPORT, STATS_REBUILD |
 * ROOM_READ, ROOM_BOOK, ROOM_OVERRIDE, ROOM_MANAGE, ROOM_CATEGORY, PROGRAM_MANAGE,
 * PROGRAM_ATTENDANCE,
 * SCHEDULE_READ, SCHEDULE_SELF, SCHEDULE_MANAGE |
 * INQUIRY_RECORD, INQUIRY_MANAGE, SERVICE_CONFIG, SERVICE_LEVELS,
 * TICKET_WORK, TICKET_ALL, TICKET_QUEUES |
 * WEEDING_READ, WEEDING_DECIDE, CREW_RULES, WEEDING_SETTINGS, DISPLAY_READ,
 * DISPLAY_ITEMS, DISPLAY_MANAGE | SELFCHECK, SIP_LOGINS, PATRON_PIN, OFFLINE_CIRC,
 * OFFLINE_EXCEPTIONS.
 */
#define R ROLE
static const struct {
    role_t role;
    perm_result_t own[PERM_COUNT];
    perm_result_t other[PERM_COUNT];
} expected[] = {
    {CLERK,
     {OK, R, R, R, R, R, OK, R, R, R, OK, OK, R, R, R, R, OK, R, R, OK, R, R, R, OK, R, R, OK, OK, R, R, R, R, R, OK, OK, R, OK, R, R, R, OK, R, R, OK, R, R, R, OK, OK, R, R, R, OK, OK, R},
     {OK, R, R, R, R, R, OK, R, R, R, OK, OK, R, R, R, R, OK, R, R, OK, R, R, R, BR, R, R, OK, OK, R, R, R, R, R, OK, OK, R, BR, R, R, R, OK, R, R, OK, R, R, R, OK, BR, R, R, R, OK, BR, R}},
    {LIBRARIAN,
     {OK, R, R, R, R, R, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, R, R, R, OK, R, R, OK, OK, OK, R, R, R, OK, OK, OK, R, OK, R, R, OK, OK, R, R, OK, OK, R, R, OK, OK, OK, R, R, OK, OK, R},
     {OK, R, R, R, R, R, OK, OK, OK, BR, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, R, R, R, BR, R, R, OK, OK, OK, R, R, R, BR, OK, OK, R, BR, R, R, BR, OK, R, R, OK, BR, R, R, OK, BR, BR, R, R, OK, BR, R}},
    {MANAGER,
     {OK, OK, OK, OK, OK, R, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, R, OK, OK, OK, OK, R, OK, OK, OK, OK, R, OK, OK, OK, OK, OK, OK, OK, R, OK, OK, R, R, OK, OK, OK, R, OK, OK, OK, R, R, OK, OK, OK},
     {OK, BR, BR, BR, BR, R, OK, OK, OK, BR, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, R, BR, OK, BR, BR, R, OK, OK, OK, BR, R, BR, BR, OK, OK, BR, BR, BR, R, BR, OK, R, R, OK, BR, BR, R, OK, BR, BR, R, R, OK, BR, BR}},
    {COORDINATOR,
     {OK, OK, R, OK, R, R, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, R, R, OK, OK, OK, R, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, R, R, OK, OK, OK},
     {OK, OK, R, OK, R, R, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, R, R, OK, OK, OK, R, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, R, R, OK, OK, OK}},
    {ADMIN,
     {OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, R, OK, OK, OK, OK},
     {OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, R, OK, OK, OK, OK}},
    {SELFCHECK,
     {R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, OK, R, R, R, R},
     {R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, BR, R, R, R, R}},
    {UNSPECIFIED,
     {R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R},
     {R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R}},
    {(role_t)99,
     {R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R},
     {R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R}},
};
#undef R

static void check_perm(role_t role, perm_action_t action, int target, perm_result_t want)
{
    perm_subject_t who = {.role = role, .branch_id = OWN_BRANCH};
    perm_result_t got = perm_check(&who, action, target);
    if (got != want)
        fail_msg("%s on %s, target branch %d: got %d, expected %d", role_name(role),
                 action_names[action], target, (int)got, (int)want);
}

static void test_matrix(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++)
        for (int a = 0; a < PERM_COUNT; a++) {
            check_perm(expected[i].role, (perm_action_t)a, OWN_BRANCH, expected[i].own[a]);
            check_perm(expected[i].role, (perm_action_t)a, OTHER_BRANCH, expected[i].other[a]);
        }
}

/* Target branch 0 means "nothing branch-specific": only the role counts. */
static void test_no_target_branch(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++)
        for (int a = 0; a < PERM_COUNT; a++)
            check_perm(expected[i].role, (perm_action_t)a, 0, expected[i].own[a]);
}

static void test_named_rules(void **state)
{
    (void)state;
    /* A clerk cannot list staff, even at their own branch. */
    check_perm(CLERK, PERM_STAFF_READ, OWN_BRANCH, PERM_DENIED_ROLE);
    /* A branch manager lists and manages staff of their own branch only. */
    check_perm(MANAGER, PERM_STAFF_READ, OWN_BRANCH, PERM_OK);
    check_perm(MANAGER, PERM_STAFF_MANAGE, OWN_BRANCH, PERM_OK);
    check_perm(MANAGER, PERM_STAFF_READ, OTHER_BRANCH, PERM_DENIED_BRANCH);
    check_perm(MANAGER, PERM_STAFF_MANAGE, OTHER_BRANCH, PERM_DENIED_BRANCH);
    /* A coordinator reads staff system-wide but cannot manage them. */
    check_perm(COORDINATOR, PERM_STAFF_READ, OTHER_BRANCH, PERM_OK);
    check_perm(COORDINATOR, PERM_STAFF_MANAGE, OWN_BRANCH, PERM_DENIED_ROLE);
    /* An admin can do everything, everywhere, except be a self-check machine. */
    for (int a = 0; a < PERM_COUNT; a++)
        check_perm(ADMIN, (perm_action_t)a, 999, a == PERM_SELFCHECK ? PERM_DENIED_ROLE : PERM_OK);
    /* A self-check machine may do that, and only that, at its own branch. */
    for (int a = 0; a < PERM_COUNT; a++)
        check_perm(SELFCHECK, (perm_action_t)a, OWN_BRANCH,
                   a == PERM_SELFCHECK ? PERM_OK : PERM_DENIED_ROLE);
}

static void test_invalid_action(void **state)
{
    (void)state;
    perm_subject_t admin = {.role = ADMIN, .branch_id = 1};
    assert_int_equal(perm_check(&admin, PERM_COUNT, 0), PERM_DENIED_ROLE);
    assert_int_equal(perm_check(&admin, (perm_action_t)-1, 0), PERM_DENIED_ROLE);
    assert_int_equal(perm_check(&admin, (perm_action_t)1000, 0), PERM_DENIED_ROLE);
}

static void test_branch_bound_roles(void **state)
{
    (void)state;
    assert_true(perm_role_is_branch_bound(CLERK));
    assert_true(perm_role_is_branch_bound(LIBRARIAN));
    assert_true(perm_role_is_branch_bound(MANAGER));
    assert_false(perm_role_is_branch_bound(COORDINATOR));
    assert_false(perm_role_is_branch_bound(ADMIN));
    assert_false(perm_role_is_branch_bound(UNSPECIFIED));
    /* A kiosk acts for its workstation's branch only. */
    assert_true(perm_role_is_branch_bound(SELFCHECK));
}

/* p_scope: NULL for system-wide roles, else the session branch as text. */
static void test_scope_param(void **state)
{
    (void)state;
    arena_t a;
    arena_init(&a);
    perm_subject_t clerk = {.role = CLERK, .branch_id = OWN_BRANCH};
    perm_subject_t manager = {.role = MANAGER, .branch_id = 12};
    perm_subject_t coordinator = {.role = COORDINATOR, .branch_id = OWN_BRANCH};
    perm_subject_t admin = {.role = ADMIN, .branch_id = OWN_BRANCH};
    char own[16];
    snprintf(own, sizeof(own), "%d", OWN_BRANCH);
    assert_string_equal(perm_scope_param(&a, &clerk), own);
    assert_string_equal(perm_scope_param(&a, &manager), "12");
    assert_null(perm_scope_param(&a, &coordinator));
    assert_null(perm_scope_param(&a, &admin));
    arena_free(&a);
}

static perm_result_t staff_target(role_t who_role, role_t target, const int *branches, size_t n)
{
    perm_subject_t who = {.role = who_role, .branch_id = OWN_BRANCH};
    return perm_check_staff_target(&who, target, branches, n);
}

static void test_staff_target_manager(void **state)
{
    (void)state;
    const int own[] = {OWN_BRANCH};
    const int own_twice[] = {OWN_BRANCH, OWN_BRANCH};
    const int other[] = {OTHER_BRANCH};
    const int mixed[] = {OWN_BRANCH, OTHER_BRANCH};
    const int unknown[] = {-1};

    assert_int_equal(staff_target(MANAGER, CLERK, own, 1), PERM_OK);
    assert_int_equal(staff_target(MANAGER, LIBRARIAN, own, 1), PERM_OK);
    assert_int_equal(staff_target(MANAGER, LIBRARIAN, own_twice, 2), PERM_OK);

    assert_int_equal(staff_target(MANAGER, CLERK, other, 1), PERM_DENIED_BRANCH);
    assert_int_equal(staff_target(MANAGER, LIBRARIAN, mixed, 2), PERM_DENIED_BRANCH);
    assert_int_equal(staff_target(MANAGER, CLERK, unknown, 1), PERM_DENIED_BRANCH);

    assert_int_equal(staff_target(MANAGER, MANAGER, own, 1), PERM_DENIED_ROLE);
    assert_int_equal(staff_target(MANAGER, COORDINATOR, own, 1), PERM_DENIED_ROLE);
    assert_int_equal(staff_target(MANAGER, ADMIN, own, 1), PERM_DENIED_ROLE);
    assert_int_equal(staff_target(MANAGER, UNSPECIFIED, own, 1), PERM_DENIED_ROLE);
    assert_int_equal(staff_target(MANAGER, (role_t)42, own, 1), PERM_DENIED_ROLE);
    /* The role is refused before the branches are looked at. */
    assert_int_equal(staff_target(MANAGER, ADMIN, other, 1), PERM_DENIED_ROLE);
}

static void test_staff_target_admin(void **state)
{
    (void)state;
    const int branches[] = {OWN_BRANCH, OTHER_BRANCH, 77};
    static const role_t roles[] = {CLERK, LIBRARIAN, MANAGER, COORDINATOR, ADMIN};
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(staff_target(ADMIN, roles[i], branches, 3), PERM_OK);
        assert_int_equal(staff_target(ADMIN, roles[i], branches + 1, 1), PERM_OK);
    }
}

static void test_staff_target_others_refused(void **state)
{
    (void)state;
    const int own[] = {OWN_BRANCH};
    static const role_t who[] = {CLERK, LIBRARIAN, COORDINATOR, UNSPECIFIED};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(staff_target(who[i], CLERK, own, 1), PERM_DENIED_ROLE);
        assert_int_equal(staff_target(who[i], LIBRARIAN, own, 1), PERM_DENIED_ROLE);
    }
}

static void test_role_names_round_trip(void **state)
{
    (void)state;
    static const struct {
        role_t role;
        const char *name, *label;
    } roles[] = {
        {CLERK, "clerk", "clerk"},
        {LIBRARIAN, "librarian", "librarian"},
        {MANAGER, "branch_manager", "branch manager"},
        {COORDINATOR, "coordinator", "coordinator"},
        {ADMIN, "admin", "administrator"},
    };
    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(role_name(roles[i].role), roles[i].name);
        assert_string_equal(role_label(roles[i].role), roles[i].label);
        assert_int_equal(role_from_name(roles[i].name), roles[i].role);
        assert_int_equal(role_from_name(role_name(roles[i].role)), roles[i].role);
    }
}

static void test_role_unknown_names(void **state)
{
    (void)state;
    assert_int_equal(role_from_name(NULL), UNSPECIFIED);
    assert_int_equal(role_from_name(""), UNSPECIFIED);
    assert_int_equal(role_from_name("unknown"), UNSPECIFIED);
    assert_int_equal(role_from_name("Clerk"), UNSPECIFIED);
    assert_int_equal(role_from_name("branch manager"), UNSPECIFIED);
    assert_int_equal(role_from_name("admin "), UNSPECIFIED);
    assert_int_equal(role_from_name("administrator"), UNSPECIFIED);
    assert_string_equal(role_name(UNSPECIFIED), "unknown");
    assert_string_equal(role_name(SELFCHECK), "selfcheck");
    assert_string_equal(role_name((role_t)7), "unknown");
    assert_string_equal(role_name((role_t)-1), "unknown");
    assert_string_equal(role_label(UNSPECIFIED), "unknown role");
    assert_string_equal(role_label((role_t)1000), "unknown role");
}

/* A refusal is one sentence: capital letter, the action's words, a full stop. */
static void check_sentence(const char *s, const char *what, const char *label)
{
    size_t n = strlen(s);
    assert_true(n > 10);
    assert_true(isupper((unsigned char)s[0]));
    assert_int_equal(s[n - 1], '.');
    if (strstr(s, what) == NULL)
        fail_msg("'%s' does not say '%s'", s, what);
    if (strstr(s, label) == NULL)
        fail_msg("'%s' does not name the role '%s'", s, label);
}

static void test_explain(void **state)
{
    (void)state;
    static const role_t roles[] = {CLERK, LIBRARIAN, MANAGER, COORDINATOR, ADMIN};
    for (size_t i = 0; i < 5; i++)
        for (int a = 0; a < PERM_COUNT; a++) {
            char out[200];
            memset(out, 0, sizeof(out));
            perm_explain(PERM_DENIED_ROLE, (perm_action_t)a, roles[i], out, sizeof(out));
            check_sentence(out, action_texts[a], role_label(roles[i]));
            assert_non_null(strstr(out, "may not"));

            memset(out, 0, sizeof(out));
            perm_explain(PERM_DENIED_BRANCH, (perm_action_t)a, roles[i], out, sizeof(out));
            check_sentence(out, action_texts[a], role_label(roles[i]));
            assert_non_null(strstr(out, "branch of this workstation"));
        }
}

static void test_explain_exact_wording(void **state)
{
    (void)state;
    char out[200];
    perm_explain(PERM_DENIED_ROLE, PERM_STAFF_READ, CLERK, out, sizeof(out));
    assert_string_equal(out, "A clerk may not list staff accounts.");
    perm_explain(PERM_DENIED_BRANCH, PERM_STAFF_MANAGE, MANAGER, out, sizeof(out));
    assert_string_equal(out,
                        "A branch manager may manage staff accounts only for the branch of this "
                        "workstation.");
}

static void test_explain_bad_action_and_small_buffer(void **state)
{
    (void)state;
    char out[200];
    perm_explain(PERM_DENIED_ROLE, PERM_COUNT, CLERK, out, sizeof(out));
    assert_string_equal(out, "A clerk may not do that.");
    char tiny[8];
    memset(tiny, 'x', sizeof(tiny));
    perm_explain(PERM_DENIED_ROLE, PERM_STAFF_READ, CLERK, tiny, sizeof(tiny));
    assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
    assert_memory_equal(tiny, "A clerk", 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matrix),
        cmocka_unit_test(test_no_target_branch),
        cmocka_unit_test(test_named_rules),
        cmocka_unit_test(test_invalid_action),
        cmocka_unit_test(test_branch_bound_roles),
        cmocka_unit_test(test_scope_param),
        cmocka_unit_test(test_staff_target_manager),
        cmocka_unit_test(test_staff_target_admin),
        cmocka_unit_test(test_staff_target_others_refused),
        cmocka_unit_test(test_role_names_round_trip),
        cmocka_unit_test(test_role_unknown_names),
        cmocka_unit_test(test_explain),
        cmocka_unit_test(test_explain_exact_wording),
        cmocka_unit_test(test_explain_bad_action_and_small_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
