#include "perm.h"

#include <stdio.h>
#include <string.h>

#include "pgtext.h"

static const struct {
    unsigned roles;
    perm_scope_t scope;
    const char *what;
} perm_rules[PERM_COUNT] = {
#define X(action, roles, scope, text) [action] = {roles, scope, text},
    PERM_TABLE(X)
#undef X
};

static const char *const role_names[] = {
    [CARREL__ROLE__ROLE_CLERK] = "clerk",
    [CARREL__ROLE__ROLE_LIBRARIAN] = "librarian",
    [CARREL__ROLE__ROLE_BRANCH_MANAGER] = "branch_manager",
    [CARREL__ROLE__ROLE_COORDINATOR] = "coordinator",
    [CARREL__ROLE__ROLE_ADMIN] = "admin",
    [CARREL__ROLE__ROLE_SELFCHECK] = "selfcheck",
};

static const char *const role_labels[] = {
    [CARREL__ROLE__ROLE_CLERK] = "clerk",
    [CARREL__ROLE__ROLE_LIBRARIAN] = "librarian",
    [CARREL__ROLE__ROLE_BRANCH_MANAGER] = "branch manager",
    [CARREL__ROLE__ROLE_COORDINATOR] = "coordinator",
    [CARREL__ROLE__ROLE_ADMIN] = "administrator",
    [CARREL__ROLE__ROLE_SELFCHECK] = "self-check machine",
};

static bool role_valid(role_t role)
{
    return role >= CARREL__ROLE__ROLE_CLERK && role <= CARREL__ROLE__ROLE_SELFCHECK;
}

const char *role_name(role_t role)
{
    return role_valid(role) ? role_names[role] : "unknown";
}

const char *role_label(role_t role)
{
    return role_valid(role) ? role_labels[role] : "unknown role";
}

role_t role_from_name(const char *name)
{
    for (int r = CARREL__ROLE__ROLE_CLERK; r <= CARREL__ROLE__ROLE_SELFCHECK; r++)
        if (name && strcmp(name, role_names[r]) == 0)
            return (role_t)r;
    return CARREL__ROLE__ROLE_UNSPECIFIED;
}

bool perm_role_is_branch_bound(role_t role)
{
    return role == CARREL__ROLE__ROLE_CLERK || role == CARREL__ROLE__ROLE_LIBRARIAN ||
           role == CARREL__ROLE__ROLE_BRANCH_MANAGER || role == CARREL__ROLE__ROLE_SELFCHECK;
}

const char *perm_scope_param(arena_t *a, const perm_subject_t *who)
{
    return perm_role_is_branch_bound(who->role) ? pgtext_int(a, who->branch_id) : NULL;
}

perm_result_t perm_check(const perm_subject_t *who, perm_action_t action, int target_branch)
{
    if ((int)action < 0 || action >= PERM_COUNT || !role_valid(who->role))
        return PERM_DENIED_ROLE;
    if (!(perm_rules[action].roles & ROLE_BIT(who->role)))
        return PERM_DENIED_ROLE;
    if (perm_rules[action].scope == PERM_SCOPE_BRANCH && perm_role_is_branch_bound(who->role) &&
        target_branch != 0 && target_branch != who->branch_id)
        return PERM_DENIED_BRANCH;
    return PERM_OK;
}

void perm_explain(perm_result_t r, perm_action_t action, role_t role, char *out, size_t outlen)
{
    const char *what =
        (int)action >= 0 && action < PERM_COUNT ? perm_rules[action].what : "do that";
    const char *label = role_label(role);
    const char *article = strchr("aeiou", label[0]) ? "An" : "A";
    if (r == PERM_DENIED_BRANCH)
        snprintf(out, outlen, "%s %s may %s only for the branch of this workstation.", article,
                 label, what);
    else
        snprintf(out, outlen, "%s %s may not %s.", article, label, what);
}

perm_result_t perm_check_staff_target(const perm_subject_t *who, role_t target_role,
                                      const int *target_branches, size_t n)
{
    perm_result_t r = perm_check(who, PERM_STAFF_MANAGE, 0);
    if (r != PERM_OK)
        return r;
    if (who->role == CARREL__ROLE__ROLE_ADMIN)
        return PERM_OK;
    /* A branch manager: only roles below their own, only their own branch. */
    if (!role_valid(target_role) || target_role >= CARREL__ROLE__ROLE_BRANCH_MANAGER)
        return PERM_DENIED_ROLE;
    if (n == 0)
        return PERM_DENIED_BRANCH; /* an account of no branch is no manager's to change */
    for (size_t i = 0; i < n; i++)
        if (target_branches[i] != who->branch_id)
            return PERM_DENIED_BRANCH;
    return PERM_OK;
}
