/*
 * dispatch: the route table. One line per request type: its handler, whether
 * it may run before login, whether it changes data, and the permission
 * checked before the handler runs (handlers check branch-specific targets
 * themselves).
 */
#include "events.h"
#include "handlers.h"
#include "metrics.h"
#include "sip.h"

#define R(body, name, fn, flags, perm)                                                             \
    {                                                                                              \
        CARREL__REQUEST__BODY_##body, name, fn, flags, perm                                        \
    }

static const route_t routes[] = {
    R(HELLO, "hello", handle_hello, ROUTE_BEFORE_LOGIN, -1),
    R(LOGIN, "login", handle_login, ROUTE_BEFORE_LOGIN, -1),
    R(LOGOUT, "logout", handle_logout, ROUTE_BEFORE_LOGIN, -1),
    R(PING, "ping", handle_ping, ROUTE_BEFORE_LOGIN, -1),
    R(WHOAMI, "whoami", handle_whoami, 0, -1),
    R(BRANCH_LIST, "branch_list", handle_branch_list, 0, PERM_BRANCH_READ),
    R(STAFF_ADD, "staff_add", handle_staff_add, ROUTE_MUTATING, PERM_STAFF_MANAGE),
    R(STAFF_LIST, "staff_list", handle_staff_list, 0, PERM_STAFF_READ),
    R(STAFF_SET_PASSWORD, "staff_set_password", handle_staff_set_password, ROUTE_MUTATING, -1),
    R(STAFF_SET_DISABLED, "staff_set_disabled", handle_staff_set_disabled, ROUTE_MUTATING,
      PERM_STAFF_MANAGE),
    R(WORKSTATION_ADD, "workstation_add", handle_workstation_add, ROUTE_MUTATING,
      PERM_WORKSTATION_MANAGE),
    R(WORKSTATION_LIST, "workstation_list", handle_workstation_list, 0, PERM_WORKSTATION_READ),
    R(SERVER_STATUS, "server_status", handle_server_status, 0, PERM_SERVER_ADMIN),
    R(WORKSTATION_REVOKE, "workstation_revoke", handle_workstation_revoke, ROUTE_MUTATING,
      PERM_WORKSTATION_MANAGE),
    /* The daemon itself: admin only; the reload is audited (reload.c). */
    R(RELOAD, "reload", handle_reload, ROUTE_MUTATING, PERM_SERVER_ADMIN),

    R(CATALOG_SEARCH, "catalog_search", handle_catalog_search, 0, PERM_CATALOG_READ),
    R(BIB_GET, "bib_get", handle_bib_get, 0, PERM_CATALOG_READ),
    R(BIB_SAVE, "bib_save", handle_bib_save, ROUTE_MUTATING, PERM_CATALOG_EDIT),
    R(ITEM_GET, "item_get", handle_item_get, 0, PERM_CATALOG_READ),
    R(ITEM_SAVE, "item_save", handle_item_save, ROUTE_MUTATING, PERM_ITEM_EDIT),
    R(MARC_IMPORT_BATCH, "marc_import_batch", handle_marc_import_batch, ROUTE_MUTATING,
      PERM_CATALOG_IMPORT),
    R(MARC_EXPORT, "marc_export", handle_marc_export, 0, PERM_CATALOG_IMPORT),
    R(ITEM_IMPORT_BATCH, "item_import_batch", handle_item_import_batch, ROUTE_MUTATING,
      PERM_CATALOG_IMPORT),
    /* Displays: anyone sees them; librarians set them up and anyone at the branch scans
     * copies on and off (keyed); the branch is checked in SQL by the scope displays.c passes. */
    R(DISPLAY_SAVE, "display_save", handle_display_save, ROUTE_MUTATING, PERM_DISPLAY_MANAGE),
    R(DISPLAY_LIST, "display_list", handle_display_list, 0, PERM_DISPLAY_READ),
    R(DISPLAY_ITEM_ADD, "display_item_add", handle_display_item_add, ROUTE_KEYED,
      PERM_DISPLAY_ITEMS),
    R(DISPLAY_SHOW, "display_show", handle_display_show, 0, PERM_DISPLAY_READ),
    R(DISPLAY_REPORT, "display_report", handle_display_report, 0, PERM_DISPLAY_READ),

    /* Patrons: every route needs login (patron data is for staff only). Which
     * fields a save may change is decided in patron_save by the account
     * permission; PatronBlock covers unblocking too. */
    R(PATRON_SAVE, "patron_save", handle_patron_save, ROUTE_MUTATING, PERM_PATRON_EDIT_CONTACT),
    R(PATRON_GET, "patron_get", handle_patron_get, 0, PERM_PATRON_READ),
    R(PATRON_FIND, "patron_find", handle_patron_find, 0, PERM_PATRON_READ),
    R(PATRON_MERGE, "patron_merge", handle_patron_merge, ROUTE_MUTATING, PERM_PATRON_MERGE),
    R(PATRON_BLOCK, "patron_block", handle_patron_block, ROUTE_MUTATING, PERM_PATRON_BLOCK),
    R(PATRON_HISTORY, "patron_history", handle_patron_history, 0, PERM_PATRON_HISTORY),
    R(PATRON_CATEGORY_LIST, "patron_category_list", handle_patron_category_list, 0,
      PERM_PATRON_READ),
    R(PATRON_PIN_SET, "patron_pin_set", handle_patron_pin_set, ROUTE_MUTATING, PERM_PATRON_PIN),

    /* Circulation: changes need a request key, so that retries never apply twice.
     * Overrides, waivers and charges are checked in SQL against the caller's role. */
    R(CHECKOUT, "checkout", handle_checkout, ROUTE_KEYED, PERM_CIRC),
    R(CHECKIN, "checkin", handle_checkin, ROUTE_KEYED, PERM_CIRC),
    R(RENEW, "renew", handle_renew, ROUTE_KEYED, PERM_CIRC),
    R(ITEM_MARK, "item_mark", handle_item_mark, ROUTE_KEYED, PERM_CIRC),
    R(IN_HOUSE_USE, "in_house_use", handle_in_house_use, ROUTE_KEYED, PERM_CIRC),
    R(ACCOUNT_GET, "account_get", handle_account_get, 0, PERM_PATRON_READ),
    R(LEDGER_POST, "ledger_post", handle_ledger_post, ROUTE_KEYED, PERM_CIRC),
    R(POLICY_LIST, "policy_list", handle_policy_list, 0, PERM_POLICY_READ),
    R(POLICY_SAVE, "policy_save", handle_policy_save, ROUTE_MUTATING, PERM_POLICY_EDIT),
    R(CALENDAR_GET, "calendar_get", handle_calendar_get, 0, PERM_POLICY_READ),
    R(CALENDAR_SAVE, "calendar_save", handle_calendar_save, ROUTE_MUTATING, PERM_CALENDAR_EDIT),
    /* Offline circulation: a desk replays its journal at its own branch (keyed: the journal
     * entry's key); the exceptions report is the branch manager's (scope checked in SQL). */
    R(OFFLINE_CACHE_GET, "offline_cache_get", handle_offline_cache_get, 0, PERM_OFFLINE_CIRC),
    R(OFFLINE_REPLAY, "offline_replay", handle_offline_replay, ROUTE_KEYED, PERM_OFFLINE_CIRC),
    R(OFFLINE_EXCEPTION_LIST, "offline_exception_list", handle_offline_exception_list, 0,
      PERM_OFFLINE_EXCEPTIONS),
    R(OFFLINE_EXCEPTION_RESOLVE, "offline_exception_resolve", handle_offline_exception_resolve,
      ROUTE_MUTATING, PERM_OFFLINE_EXCEPTIONS),

    R(HOLD_PLACE, "hold_place", handle_hold_place, ROUTE_KEYED, PERM_CIRC),
    R(HOLD_LIST, "hold_list", handle_hold_list, 0, PERM_PATRON_READ),
    R(HOLD_CHANGE, "hold_change", handle_hold_change, ROUTE_KEYED, PERM_CIRC),
    R(HOLD_QUEUE, "hold_queue", handle_hold_queue, 0, PERM_CIRC),
    R(PULL_LIST, "pull_list", handle_pull_list, 0, PERM_CIRC),
    R(ITEM_NOT_FOUND, "item_not_found", handle_item_not_found, ROUTE_KEYED, PERM_CIRC),
    R(HOLD_SHELF, "hold_shelf", handle_hold_shelf, 0, PERM_CIRC),
    R(TRANSIT_LIST, "transit_list", handle_transit_list, 0, PERM_CIRC),
    R(TRANSIT_CHANGE, "transit_change", handle_transit_change, ROUTE_KEYED, PERM_CIRC),
    R(SUBSCRIBE, "subscribe", handle_subscribe, 0, -1),
    /* Notices: listing is for every desk. An export lists, writes, then marks
     * what it wrote (keyed), so a lost answer never loses a notice. */
    R(NOTICE_LIST, "notice_list", handle_notice_list, 0, PERM_CIRC),
    R(NOTICE_MARK_EXPORTED, "notice_mark_exported", handle_notice_mark_exported, ROUTE_KEYED,
      PERM_CIRC),
    R(NOTICE_RUN, "notice_run", handle_notice_run, ROUTE_MUTATING, PERM_NOTICE_RUN),
    /* Statistics: branch and date scope are checked in stats.c. */
    R(STATS_QUERY, "stats_query", handle_stats_query, 0, PERM_STATS_READ),
    R(STATS_MEASURES, "stats_measures", handle_stats_measures, 0, PERM_STATS_READ),
    R(STATS_LIVE, "stats_live", handle_stats_live, 0, PERM_STATS_READ),
    R(PLS_REPORT, "pls_report", handle_pls_report, 0, PERM_STATS_REPORT),
    R(STATS_BUY_MORE, "stats_buy_more", handle_stats_buy_more, 0, PERM_STATS_REPORT),
    R(STATS_REBUILD, "stats_rebuild", handle_stats_rebuild, ROUTE_MUTATING, PERM_STATS_REBUILD),
    /* Rooms and programs: branch scope is passed to SQL (rooms.c); bookings are keyed. */
    R(ROOM_LIST, "room_list", handle_room_list, 0, PERM_ROOM_READ),
    R(ROOM_SAVE, "room_save", handle_room_save, ROUTE_MUTATING, PERM_ROOM_MANAGE),
    R(ROOM_CATEGORY_LIST, "room_category_list", handle_room_category_list, 0, PERM_ROOM_READ),
    R(ROOM_CATEGORY_SAVE, "room_category_save", handle_room_category_save, ROUTE_MUTATING,
      PERM_ROOM_CATEGORY),
    R(ROOM_FREE, "room_free", handle_room_free, 0, PERM_ROOM_READ),
    R(ROOM_BOOK, "room_book", handle_room_book, ROUTE_KEYED, PERM_ROOM_BOOK),
    R(ROOM_CHANGE, "room_change", handle_room_change, ROUTE_KEYED, PERM_ROOM_BOOK),
    R(ROOM_BOOKINGS, "room_bookings", handle_room_bookings, 0, PERM_ROOM_READ),
    R(PROGRAM_SAVE, "program_save", handle_program_save, ROUTE_MUTATING, PERM_PROGRAM_MANAGE),
    R(PROGRAM_SESSION_SAVE, "program_session_save", handle_program_session_save, ROUTE_KEYED,
      PERM_PROGRAM_MANAGE),
    R(PROGRAM_ATTENDANCE, "program_attendance", handle_program_attendance, ROUTE_MUTATING,
      PERM_PROGRAM_ATTENDANCE),
    R(PROGRAM_LIST, "program_list", handle_program_list, 0, PERM_ROOM_READ),
    /* Staff schedules: everyone sees them and acts on their own shifts and time
     * off; managers change them (the target branch is checked in SQL against the
     * scope schedule.c passes). A sick call and shift changes are keyed. */
    R(DESK_LIST, "desk_list", handle_desk_list, 0, PERM_SCHEDULE_READ),
    R(DESK_SAVE, "desk_save", handle_desk_save, ROUTE_MUTATING, PERM_SCHEDULE_MANAGE),
    R(SHIFT_SAVE, "shift_save", handle_shift_save, ROUTE_MUTATING, PERM_SCHEDULE_MANAGE),
    R(SHIFT_LIST, "shift_list", handle_shift_list, 0, PERM_SCHEDULE_READ),
    R(SCHEDULE_WEEK, "schedule_week", handle_schedule_week, 0, PERM_SCHEDULE_READ),
    R(SCHEDULE_GAPS, "schedule_gaps", handle_schedule_gaps, 0, PERM_SCHEDULE_READ),
    R(TIME_OFF_SAVE, "time_off_save", handle_time_off_save, ROUTE_MUTATING, PERM_SCHEDULE_SELF),
    R(TIME_OFF_LIST, "time_off_list", handle_time_off_list, 0, PERM_SCHEDULE_READ),
    R(SCHEDULE_ABSENT, "schedule_absent", handle_schedule_absent, ROUTE_KEYED,
      PERM_SCHEDULE_MANAGE),
    R(SHIFT_CHANGE, "shift_change", handle_shift_change, ROUTE_KEYED, PERM_SCHEDULE_SELF),
    R(SWAP_LIST, "swap_list", handle_swap_list, 0, PERM_SCHEDULE_READ),
    R(STAFF_SCHEDULE_SET, "staff_schedule_set", handle_staff_schedule_set, ROUTE_MUTATING,
      PERM_SCHEDULE_MANAGE),
    /* Public service: branch-bound roles record for their session branch (SQL checks the
     * scope service.c passes); tallies and sweeps are keyed. */
    R(SERVICE_CODE_LIST, "service_code_list", handle_service_code_list, 0, PERM_INQUIRY_RECORD),
    R(SERVICE_CODE_SAVE, "service_code_save", handle_service_code_save, ROUTE_MUTATING,
      PERM_INQUIRY_MANAGE),
    R(INQUIRY_ADD, "inquiry_add", handle_inquiry_add, ROUTE_KEYED, PERM_INQUIRY_RECORD),
    R(INQUIRY_REMOVE, "inquiry_remove", handle_inquiry_remove, ROUTE_MUTATING, PERM_INQUIRY_RECORD),
    R(INQUIRY_LIST, "inquiry_list", handle_inquiry_list, 0, PERM_INQUIRY_RECORD),
    R(GATE_COUNT_ADD, "gate_count_add", handle_gate_count_add, ROUTE_MUTATING, PERM_INQUIRY_RECORD),
    R(COUNT_IMPORT, "count_import", handle_count_import, ROUTE_MUTATING, PERM_INQUIRY_RECORD),
    R(COMPUTER_SESSIONS_SET, "computer_sessions_set", handle_computer_sessions_set, ROUTE_MUTATING,
      PERM_INQUIRY_RECORD),
    R(SWEEP_SAVE, "sweep_save", handle_sweep_save, ROUTE_KEYED, PERM_INQUIRY_RECORD),
    R(SWEEP_LIST, "sweep_list", handle_sweep_list, 0, PERM_INQUIRY_RECORD),
    R(SERVICE_LEVELS, "service_levels", handle_service_levels, 0, PERM_SERVICE_LEVELS),
    /* Tickets: anyone opens one; SQL lets only a queue's staff work it (p_all for the
     * coordinator and admins, tickets.c); opening, changes and posts are keyed. */
    R(TICKET_QUEUE_LIST, "ticket_queue_list", handle_ticket_queue_list, 0, PERM_TICKET_WORK),
    R(TICKET_QUEUE_SAVE, "ticket_queue_save", handle_ticket_queue_save, ROUTE_MUTATING,
      PERM_TICKET_QUEUES),
    R(TICKET_OPEN, "ticket_open", handle_ticket_open, ROUTE_KEYED, PERM_TICKET_WORK),
    R(TICKET_LIST, "ticket_list", handle_ticket_list, 0, PERM_TICKET_WORK),
    R(TICKET_SHOW, "ticket_show", handle_ticket_show, 0, PERM_TICKET_WORK),
    R(TICKET_CHANGE, "ticket_change", handle_ticket_change, ROUTE_KEYED, PERM_TICKET_WORK),
    R(TICKET_POST, "ticket_post", handle_ticket_post, ROUTE_KEYED, PERM_TICKET_WORK),
    /* Weeding: anyone reads lists and rules of any branch; decisions are keyed and scoped
     * to the caller's branch in SQL (weeding.c passes the scope); the system CREW table is
     * the coordinator's (p_system_ok). */
    R(CREW_RULE_LIST, "crew_rule_list", handle_crew_rule_list, 0, PERM_WEEDING_READ),
    R(CREW_RULE_SAVE, "crew_rule_save", handle_crew_rule_save, ROUTE_MUTATING, PERM_CREW_RULES),
    R(WEEDING_SETTINGS_GET, "weeding_settings_get", handle_weeding_settings_get, 0,
      PERM_WEEDING_READ),
    R(WEEDING_SETTINGS_SAVE, "weeding_settings_save", handle_weeding_settings_save, ROUTE_MUTATING,
      PERM_WEEDING_SETTINGS),
    R(WEEDING_LIST, "weeding_list", handle_weeding_list, 0, PERM_WEEDING_READ),
    R(WEEDING_SUMMARY, "weeding_summary", handle_weeding_summary, 0, PERM_WEEDING_READ),
    R(WEEDING_DECIDE, "weeding_decide", handle_weeding_decide, ROUTE_KEYED, PERM_WEEDING_DECIDE),
    R(WEEDING_DECISION_LIST, "weeding_decision_list", handle_weeding_decision_list, 0,
      PERM_WEEDING_READ),
    /* SIP2 logins: the administrator's (sip_admin.c). */
    R(SIP_LOGIN_SAVE, "sip_login_save", handle_sip_login_save, ROUTE_MUTATING, PERM_SIP_LOGINS),
    R(SIP_LOGIN_LIST, "sip_login_list", handle_sip_login_list, 0, PERM_SIP_LOGINS),
    R(SIP_LOGIN_REMOVE, "sip_login_remove", handle_sip_login_remove, ROUTE_MUTATING,
      PERM_SIP_LOGINS),
};

const route_t *dispatch_find(Carrel__Request__BodyCase body)
{
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        if (routes[i].body == body)
            return &routes[i];
    return NULL;
}

size_t dispatch_route_count(void)
{
    return sizeof(routes) / sizeof(routes[0]);
}

const route_t *dispatch_route_at(size_t i)
{
    return i < dispatch_route_count() ? &routes[i] : NULL;
}

size_t dispatch_route_index(const route_t *route)
{
    return (size_t)(route - routes);
}

void dispatch_register_statements(void)
{
    auth_register_statements();
    admin_register_statements();
    reload_register_statements();
    sip_register_statements();
    sip_msgs_register_statements();
    sip_admin_register_statements();
    catalog_register_statements();
    marcimport_register_statements();
    displays_register_statements();

    patrons_register_statements();
    circ_register_statements();
    offline_register_statements();
    holds_register_statements();
    notices_register_statements();
    stats_register_statements();
    rooms_register_statements();
    schedule_register_statements();
    service_register_statements();
    tickets_register_statements();
    weeding_register_statements();
    events_register_statements();
}
