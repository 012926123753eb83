/*
 * perm: who may do what, where. Pure functions over the session's role and
 * branch, so the rules are unit-tested without a server.
 *
 * Roles rank clerk < librarian < branch_manager < coordinator < admin.
 * Clerks, librarians and branch managers act for the branch of the
 * workstation they logged in at; coordinators and admins act system-wide.
 * A selfcheck account is a kiosk, outside the ranking: it has only
 * PERM_SELFCHECK, at its workstation's branch, and logs in only through the
 * SIP2 port.
 */
#ifndef CARREL_PERM_H
#define CARREL_PERM_H

#include <stdbool.h>
#include <stddef.h>

#include "arena.h"
#include "carrel.pb-c.h"

typedef Carrel__Role role_t;

#define ROLE_BIT(r)        (1u << (r))
#define ROLES_ALL          (ROLE_BIT(CARREL__ROLE__ROLE_CLERK) | ROLES_LIBRARIAN_UP)
#define ROLES_LIBRARIAN_UP (ROLE_BIT(CARREL__ROLE__ROLE_LIBRARIAN) | ROLES_MANAGER_UP)
#define ROLES_MANAGER_UP                                                                           \
    (ROLE_BIT(CARREL__ROLE__ROLE_BRANCH_MANAGER) | ROLE_BIT(CARREL__ROLE__ROLE_COORDINATOR) |      \
     ROLE_BIT(CARREL__ROLE__ROLE_ADMIN))
#define ROLES_MANAGER_ADMIN                                                                        \
    (ROLE_BIT(CARREL__ROLE__ROLE_BRANCH_MANAGER) | ROLE_BIT(CARREL__ROLE__ROLE_ADMIN))
#define ROLES_COORDINATOR_UP                                                                       \
    (ROLE_BIT(CARREL__ROLE__ROLE_COORDINATOR) | ROLE_BIT(CARREL__ROLE__ROLE_ADMIN))
#define ROLES_ADMIN ROLE_BIT(CARREL__ROLE__ROLE_ADMIN)

typedef enum { PERM_SCOPE_SYSTEM, PERM_SCOPE_BRANCH } perm_scope_t;

/*
 * X(action, roles allowed, scope, what the action is in a refusal sentence)
 * PERM_SCOPE_BRANCH: branch-bound roles may only act on their session branch.
 */
#define PERM_TABLE(X)                                                                              \
    X(PERM_BRANCH_READ, ROLES_ALL, PERM_SCOPE_SYSTEM, "list branches")                             \
    X(PERM_STAFF_READ, ROLES_MANAGER_UP, PERM_SCOPE_BRANCH, "list staff accounts")                 \
    X(PERM_STAFF_MANAGE, ROLES_MANAGER_ADMIN, PERM_SCOPE_BRANCH, "manage staff accounts")          \
    X(PERM_WORKSTATION_READ, ROLES_MANAGER_UP, PERM_SCOPE_BRANCH, "list workstations")             \
    X(PERM_WORKSTATION_MANAGE, ROLES_MANAGER_ADMIN, PERM_SCOPE_BRANCH, "register workstations")    \
    X(PERM_SERVER_ADMIN, ROLES_ADMIN, PERM_SCOPE_SYSTEM, "reload the daemon and see its status")   \
    X(PERM_CATALOG_READ, ROLES_ALL, PERM_SCOPE_SYSTEM, "search the catalog")                       \
    X(PERM_CATALOG_EDIT, ROLES_LIBRARIAN_UP, PERM_SCOPE_SYSTEM, "edit bibliographic records")      \
    X(PERM_CATALOG_IMPORT, ROLES_LIBRARIAN_UP, PERM_SCOPE_SYSTEM, "import or export MARC records") \
    X(PERM_ITEM_EDIT, ROLES_LIBRARIAN_UP, PERM_SCOPE_BRANCH, "add or edit items")                  \
    X(PERM_PATRON_READ, ROLES_ALL, PERM_SCOPE_SYSTEM, "look up patrons")                           \
    X(PERM_PATRON_EDIT_CONTACT, ROLES_ALL, PERM_SCOPE_SYSTEM,                                      \
      "create patrons or edit their contact details")                                              \
    X(PERM_PATRON_EDIT_ACCOUNT, ROLES_LIBRARIAN_UP, PERM_SCOPE_SYSTEM,                             \
      "change a patron's category, expiry, notes or alert")                                        \
    X(PERM_PATRON_BLOCK, ROLES_LIBRARIAN_UP, PERM_SCOPE_SYSTEM, "block or unblock patrons")        \
    X(PERM_PATRON_MERGE, ROLES_LIBRARIAN_UP, PERM_SCOPE_SYSTEM, "merge patron records")            \
    X(PERM_PATRON_HISTORY, ROLES_LIBRARIAN_UP, PERM_SCOPE_SYSTEM,                                  \
      "read a patron's change history")                                                            \
    X(PERM_CIRC, ROLES_ALL, PERM_SCOPE_SYSTEM, "check items out and in")                           \
    X(PERM_CIRC_OVERRIDE, ROLES_LIBRARIAN_UP, PERM_SCOPE_SYSTEM, "override circulation refusals")  \
    X(PERM_LEDGER_ADJUST, ROLES_LIBRARIAN_UP, PERM_SCOPE_SYSTEM, "waive amounts or add charges")   \
    X(PERM_POLICY_READ, ROLES_ALL, PERM_SCOPE_SYSTEM, "read loan rules")                           \
    X(PERM_POLICY_EDIT, ROLES_ADMIN, PERM_SCOPE_SYSTEM, "change loan rules")                       \
    X(PERM_CALENDAR_EDIT, ROLES_MANAGER_ADMIN, PERM_SCOPE_BRANCH, "change branch calendars")       \
    X(PERM_NOTICE_RUN, ROLES_MANAGER_UP, PERM_SCOPE_SYSTEM, "run the notice jobs")                 \
    X(PERM_STATS_READ, ROLES_ALL, PERM_SCOPE_BRANCH, "read statistics")                            \
    X(PERM_STATS_REPORT, ROLES_MANAGER_UP, PERM_SCOPE_BRANCH,                                      \
      "run the annual report or the buy-more list")                                                \
    X(PERM_STATS_REBUILD, ROLES_ADMIN, PERM_SCOPE_SYSTEM, "rebuild the statistics")                \
    X(PERM_ROOM_READ, ROLES_ALL, PERM_SCOPE_SYSTEM, "list rooms, bookings and programs")           \
    X(PERM_ROOM_BOOK, ROLES_ALL, PERM_SCOPE_SYSTEM, "book rooms")                                  \
    X(PERM_ROOM_OVERRIDE, ROLES_LIBRARIAN_UP, PERM_SCOPE_SYSTEM,                                   \
      "book rooms beyond the rules or recurring")                                                  \
    X(PERM_ROOM_MANAGE, ROLES_MANAGER_UP, PERM_SCOPE_BRANCH, "manage rooms or approve bookings")   \
    X(PERM_ROOM_CATEGORY, ROLES_COORDINATOR_UP, PERM_SCOPE_SYSTEM, "change room categories")       \
    X(PERM_PROGRAM_MANAGE, ROLES_MANAGER_UP, PERM_SCOPE_BRANCH, "manage programs")                 \
    X(PERM_PROGRAM_ATTENDANCE, ROLES_LIBRARIAN_UP, PERM_SCOPE_BRANCH, "record program attendance") \
    X(PERM_SCHEDULE_READ, ROLES_ALL, PERM_SCOPE_SYSTEM, "see staff schedules")                     \
    X(PERM_SCHEDULE_SELF, ROLES_ALL, PERM_SCOPE_SYSTEM,                                            \
      "ask for time off or offer, claim and swap their own shifts")                                \
    X(PERM_SCHEDULE_MANAGE, ROLES_MANAGER_UP, PERM_SCOPE_BRANCH, "manage staff schedules")         \
    X(PERM_INQUIRY_RECORD, ROLES_ALL, PERM_SCOPE_BRANCH,                                           \
      "record inquiries, door counts and sweeps")                                                  \
    X(PERM_INQUIRY_MANAGE, ROLES_MANAGER_UP, PERM_SCOPE_BRANCH,                                    \
      "take back others' tallies or change floor areas")                                           \
    X(PERM_SERVICE_CONFIG, ROLES_COORDINATOR_UP, PERM_SCOPE_SYSTEM,                                \
      "change inquiry kinds and floor activities")                                                 \
    X(PERM_SERVICE_LEVELS, ROLES_LIBRARIAN_UP, PERM_SCOPE_BRANCH, "see service levels")            \
    X(PERM_TICKET_WORK, ROLES_ALL, PERM_SCOPE_SYSTEM, "open and work tickets")                     \
    X(PERM_TICKET_ALL, ROLES_COORDINATOR_UP, PERM_SCOPE_SYSTEM, "see every ticket queue")          \
    X(PERM_TICKET_QUEUES, ROLES_COORDINATOR_UP, PERM_SCOPE_SYSTEM, "change ticket queues")         \
    X(PERM_WEEDING_READ, ROLES_ALL, PERM_SCOPE_SYSTEM, "see weeding lists and collection health")  \
    X(PERM_WEEDING_DECIDE, ROLES_LIBRARIAN_UP, PERM_SCOPE_BRANCH, "record weeding decisions")      \
    X(PERM_CREW_RULES, ROLES_MANAGER_UP, PERM_SCOPE_BRANCH, "change CREW weeding rules")           \
    X(PERM_WEEDING_SETTINGS, ROLES_COORDINATOR_UP, PERM_SCOPE_SYSTEM, "change weeding settings")   \
    X(PERM_DISPLAY_READ, ROLES_ALL, PERM_SCOPE_SYSTEM, "see displays and their reports")           \
    X(PERM_DISPLAY_ITEMS, ROLES_ALL, PERM_SCOPE_BRANCH, "scan copies onto displays")               \
    X(PERM_DISPLAY_MANAGE, ROLES_LIBRARIAN_UP, PERM_SCOPE_BRANCH, "set up and end displays")       \
    X(PERM_SELFCHECK, ROLE_BIT(CARREL__ROLE__ROLE_SELFCHECK), PERM_SCOPE_BRANCH,                   \
      "use a self-check machine")                                                                  \
    X(PERM_SIP_LOGINS, ROLES_ADMIN, PERM_SCOPE_SYSTEM, "manage self-check logins")                 \
    X(PERM_PATRON_PIN, ROLES_ALL, PERM_SCOPE_SYSTEM, "set patron PINs")                            \
    X(PERM_OFFLINE_CIRC, ROLES_ALL, PERM_SCOPE_BRANCH, "circulate offline")                        \
    X(PERM_OFFLINE_EXCEPTIONS, ROLES_MANAGER_UP, PERM_SCOPE_BRANCH,                                \
      "see and resolve offline exceptions")

typedef enum {
#define X(action, roles, scope, text) action,
    PERM_TABLE(X)
#undef X
        PERM_COUNT
} perm_action_t;

typedef enum {
    PERM_OK = 0,
    PERM_DENIED_ROLE,
    PERM_DENIED_BRANCH,
} perm_result_t;

typedef struct perm_subject {
    role_t role;
    int branch_id; /* the session's (workstation's) branch */
} perm_subject_t;

/* May `who` perform `action` on something belonging to target_branch (0 = none)? */
perm_result_t perm_check(const perm_subject_t *who, perm_action_t action, int target_branch);
/* Write the refusal sentence for a failed check. */
void perm_explain(perm_result_t r, perm_action_t action, role_t role, char *out, size_t outlen);
/* True for roles whose authority is limited to their session branch. */
bool perm_role_is_branch_bound(role_t role);
/* The p_scope parameter of SQL functions that check a target's branch:
 * NULL (every branch) for system-wide roles, else who's branch id as text in
 * the arena. One copy, so the rule lives next to perm_role_is_branch_bound. */
const char *perm_scope_param(arena_t *a, const perm_subject_t *who);
/*
 * Staff management: may `who` create or change an account with target_role
 * assigned to the given branches? Branch managers manage clerks and
 * librarians of their own branch only; admins manage anyone.
 */
perm_result_t perm_check_staff_target(const perm_subject_t *who, role_t target_role,
                                      const int *target_branches, size_t n);

const char *role_name(role_t role);      /* "clerk" ... as stored in the database */
const char *role_label(role_t role);     /* "branch manager" ... for people */
role_t role_from_name(const char *name); /* 0 (unspecified) if unknown */

#endif
