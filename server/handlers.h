/*
 * handlers: every request handler and each module's statement registration.
 * The route table in dispatch.c ties them to request types.
 */
#ifndef CARREL_HANDLERS_H
#define CARREL_HANDLERS_H

#include "request.h"

/* auth.c: connection setup and identity */
void auth_register_statements(void);
void handle_hello(request_t *req);
void handle_login(request_t *req);
void handle_logout(request_t *req);
void handle_ping(request_t *req);
void handle_whoami(request_t *req);
/* Login housekeeping timer: throttled-attempt summaries, login_event retention. */
void auth_jobs_start(server_t *srv);
void auth_jobs_stop(server_t *srv);
void auth_jobs_reload(server_t *srv);
/* A connection closed: a login of it waiting for admission is answered (and dropped). */
void auth_conn_gone(server_t *srv, conn_t *c);
/* The revoked certificates were read for the first time: the logins that waited go on. */
void auth_certs_loaded(server_t *srv);
/* Logins waiting for admission now (for the metrics). */
int auth_logins_waiting(const server_t *srv);

/* reload.c: re-read the configuration file (as SIGHUP does) */
void reload_register_statements(void);
void handle_reload(request_t *req);

/* admin.c: branches, staff accounts, workstations */
void admin_register_statements(void);
void handle_branch_list(request_t *req);
void handle_staff_add(request_t *req);
void handle_staff_list(request_t *req);
void handle_staff_set_password(request_t *req);
void handle_staff_set_disabled(request_t *req);
void handle_workstation_add(request_t *req);
void handle_workstation_list(request_t *req);
void handle_workstation_revoke(request_t *req);
/* Hash a new secret (a password, a patron PIN) on the password queue, at most
 * two at once per connection; done(ok, hash, req) runs on the loop. A full
 * queue or a failure to queue ends the request. */
void admin_hash_password(request_t *req, const char *password, password_cb done);

/* catalog.c: search, bibs, items */
void catalog_register_statements(void);
void handle_catalog_search(request_t *req);
void handle_bib_get(request_t *req);
void handle_bib_save(request_t *req);
void handle_item_get(request_t *req);
void handle_item_save(request_t *req);

/* marcimport.c: MARC import and export */
void marcimport_register_statements(void);
void handle_marc_import_batch(request_t *req);
void handle_marc_export(request_t *req);
void handle_item_import_batch(request_t *req);
/* displays.c: displays (copies on a theme for a while) and their reports */
void displays_register_statements(void);
void handle_display_save(request_t *req);
void handle_display_list(request_t *req);
void handle_display_item_add(request_t *req);
void handle_display_show(request_t *req);
void handle_display_report(request_t *req);

/* patrons.c: patron records, search, blocks, merge, history, categories */
void patrons_register_statements(void);
void handle_patron_save(request_t *req);
void handle_patron_get(request_t *req);
void handle_patron_find(request_t *req);
void handle_patron_merge(request_t *req);
void handle_patron_block(request_t *req);
void handle_patron_history(request_t *req);
void handle_patron_category_list(request_t *req);
void handle_patron_pin_set(request_t *req);

/* circ.c: circulation */
void circ_register_statements(void);
void handle_checkout(request_t *req);
void handle_checkin(request_t *req);
void handle_renew(request_t *req);
void handle_item_mark(request_t *req);
void handle_in_house_use(request_t *req);
void handle_account_get(request_t *req);
void handle_ledger_post(request_t *req);
void handle_policy_list(request_t *req);
void handle_policy_save(request_t *req);
void handle_calendar_get(request_t *req);
void handle_calendar_save(request_t *req);
/* offline.c: offline circulation: the desk's cache, the journal's replay, the exceptions report */
void offline_register_statements(void);
void handle_offline_cache_get(request_t *req);
void handle_offline_replay(request_t *req);
void handle_offline_exception_list(request_t *req);
void handle_offline_exception_resolve(request_t *req);

/* holds.c: holds, pull lists, hold shelves, transits */
void holds_register_statements(void);
void handle_hold_place(request_t *req);
void handle_hold_list(request_t *req);
void handle_hold_change(request_t *req);
void handle_hold_queue(request_t *req);
void handle_pull_list(request_t *req);
void handle_item_not_found(request_t *req);
void handle_hold_shelf(request_t *req);
void handle_transit_list(request_t *req);
void handle_transit_change(request_t *req);
/* The columns of a hold (a hold_row: type in sql/migrations/007_holds.sql, hold_out in
 * sql/rules/holds.sql) as holds_from_row reads them. */
#define HOLD_COLUMNS                                                                               \
    "id, card, patron_name, bib_id, title, item_barcode, pickup_branch, placed_at,"                \
    " not_needed_after, suspended_until, status, queue_position, captured_barcode,"                \
    " shelf_expires_on, target_barcode, target_branch, cancel_reason"
enum {
    HOLD_ID,
    HOLD_CARD,
    HOLD_PATRON_NAME,
    HOLD_BIB_ID,
    HOLD_TITLE,
    HOLD_ITEM_BARCODE,
    HOLD_PICKUP_BRANCH,
    HOLD_PLACED_AT,
    HOLD_NOT_NEEDED_AFTER,
    HOLD_SUSPENDED_UNTIL,
    HOLD_STATUS,
    HOLD_QUEUE_POSITION,
    HOLD_CAPTURED_BARCODE,
    HOLD_SHELF_EXPIRES_ON,
    HOLD_TARGET_BARCODE,
    HOLD_TARGET_BRANCH,
    HOLD_CANCEL_REASON,
    HOLD_NCOLS
};
/* A Hold from row i of a result whose first columns are HOLD_COLUMNS. */
Carrel__Hold *holds_from_row(request_t *req, const PGresult *res, int i);

/* events.c */
void handle_subscribe(request_t *req);
/* notices.c: the notice queue (the jobs themselves are in notices.h) */
void notices_register_statements(void);
void handle_notice_list(request_t *req);
void handle_notice_run(request_t *req);
void handle_notice_mark_exported(request_t *req);

/* stats.c: statistics, live service levels, reports (the jobs are in stats.h) */
void stats_register_statements(void);
void handle_stats_query(request_t *req);
void handle_stats_measures(request_t *req);
void handle_stats_live(request_t *req);
void handle_pls_report(request_t *req);
void handle_stats_buy_more(request_t *req);
void handle_stats_rebuild(request_t *req);

/* rooms.c: rooms, categories, bookings, programs (the rooms timer is in rooms.h) */
void rooms_register_statements(void);
void handle_room_list(request_t *req);
void handle_room_save(request_t *req);
void handle_room_category_list(request_t *req);
void handle_room_category_save(request_t *req);
void handle_room_free(request_t *req);
void handle_room_book(request_t *req);
void handle_room_change(request_t *req);
void handle_room_bookings(request_t *req);
void handle_program_save(request_t *req);
void handle_program_session_save(request_t *req);
void handle_program_attendance(request_t *req);
void handle_program_list(request_t *req);

/* schedule.c: staff schedules (desks, shifts, the week, gaps, time off, sick calls, swaps) */
void schedule_register_statements(void);
void handle_desk_list(request_t *req);
void handle_desk_save(request_t *req);
void handle_shift_save(request_t *req);
void handle_shift_list(request_t *req);
void handle_schedule_week(request_t *req);
void handle_schedule_gaps(request_t *req);
void handle_time_off_save(request_t *req);
void handle_time_off_list(request_t *req);
void handle_schedule_absent(request_t *req);
void handle_shift_change(request_t *req);
void handle_swap_list(request_t *req);
void handle_staff_schedule_set(request_t *req);

/* service.c: public service (inquiry tallies, door counts, computer sessions, sweeps, levels) */
void service_register_statements(void);
void handle_service_code_list(request_t *req);
void handle_service_code_save(request_t *req);
void handle_inquiry_add(request_t *req);
void handle_inquiry_remove(request_t *req);
void handle_inquiry_list(request_t *req);
void handle_gate_count_add(request_t *req);
void handle_count_import(request_t *req);
void handle_computer_sessions_set(request_t *req);
void handle_sweep_save(request_t *req);
void handle_sweep_list(request_t *req);
void handle_service_levels(request_t *req);
/* tickets.c: follow-up tickets and their queues (the tickets timer is in tickets.h) */
void tickets_register_statements(void);
void handle_ticket_queue_list(request_t *req);
void handle_ticket_queue_save(request_t *req);
void handle_ticket_open(request_t *req);
void handle_ticket_list(request_t *req);
void handle_ticket_show(request_t *req);
void handle_ticket_change(request_t *req);
void handle_ticket_post(request_t *req);
/* weeding.c: CREW rules, weeding settings, the weeding list, collection health, decisions */
void weeding_register_statements(void);
void handle_crew_rule_list(request_t *req);
void handle_crew_rule_save(request_t *req);
void handle_weeding_settings_get(request_t *req);
void handle_weeding_settings_save(request_t *req);
void handle_weeding_list(request_t *req);
void handle_weeding_summary(request_t *req);
void handle_weeding_decide(request_t *req);
void handle_weeding_decision_list(request_t *req);
/* sip_admin.c: the SIP2 logins (the gateway itself is sip.c) */
void sip_admin_register_statements(void);
void handle_sip_login_save(request_t *req);
void handle_sip_login_list(request_t *req);
void handle_sip_login_remove(request_t *req);

#endif
