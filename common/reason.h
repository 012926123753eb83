/*
 * reason: the one vocabulary of refusal and failure reasons.
 *
 * Every Response.reason (and RenewResult.reason, CheckoutReply.overridden)
 * the server sends is a name from this table, whether C or SQL raised it
 * (SQL raises it as the DETAIL of an error with a CRxxx SQLSTATE, or returns
 * it in a row). One row per reason, in the shape of libuv's error map:
 *
 *   X(ENUM, "wire name", STATUS, exit code, flags, "default sentence")
 *
 * - ENUM: REASON_<ENUM>; the wire name in capitals.
 * - wire name: what clients see and match on (docs/PROTOCOL.md, "Reasons").
 * - STATUS: the suffix of CARREL__STATUS__STATUS_* the reason is sent with.
 *   request_fail_db() takes the status of a reason raised in SQL from here.
 * - exit code: the client's, when a request ends with this reason; BY_STATUS
 *   means the status's exit code (status.h). A throttled login exits as a
 *   refused login (3), not as a refused request (4).
 * - flags: REASON_PARAM: sent as "<name>:<parameter>" (only "field", as in
 *   "field:email"); REASON_STATUS_VARIES: more than one status uses this
 *   name, and SQL's SQLSTATE (or the C caller) picks it; STATUS is the
 *   usual one.
 * - sentence: a default English sentence a desk can show; the message sent
 *   with a refusal is usually more precise (it names the item, the limit).
 *
 * Adding a reason: a row here, then the code that raises it (C or SQL), then
 * a row in docs/PROTOCOL.md's reason tables; tests/unit/test_reason.c checks
 * that the three agree.
 */
#ifndef CARREL_REASON_H
#define CARREL_REASON_H

#include <stdbool.h>

#include "check.h"

#define REASON_PARAM          1u
#define REASON_STATUS_VARIES  2u
#define REASON_EXIT_BY_STATUS (-1)

/* clang-format off */
#define CARREL_REASON_TABLE(X)                                                                     \
    /* Any request */                                                                              \
    X(REQUEST_ID, "request_id", BAD_REQUEST, BY_STATUS, 0,                                         \
      "Every request needs a non-zero id (0 is reserved for events).")                             \
    X(UNDECODABLE, "undecodable", BAD_REQUEST, BY_STATUS, 0,                                       \
      "The frame does not hold a valid Request message.")                                          \
    X(HELLO_REQUIRED, "hello_required", BAD_REQUEST, BY_STATUS, 0,                                 \
      "The first request on a connection must be Hello.")                                          \
    X(HELLO_REPEATED, "hello_repeated", BAD_REQUEST, BY_STATUS, 0,                                 \
      "Hello was already done on this connection.")                                                \
    X(UNKNOWN_REQUEST, "unknown_request", BAD_REQUEST, BY_STATUS, 0,                               \
      "This server does not know that kind of request.")                                           \
    X(REQUEST_KEY, "request_key", BAD_REQUEST, BY_STATUS, 0,                                       \
      "This request needs a request key, a UUID.")                                                 \
    X(FIELD, "field", BAD_REQUEST, BY_STATUS, REASON_PARAM,                                        \
      "A field of the request is missing or not valid.")                                           \
    X(CONSTRAINT, "constraint", BAD_REQUEST, BY_STATUS, 0,                                         \
      "A value was not accepted.")                                                                 \
    X(INVALID_VALUE, "invalid_value", BAD_REQUEST, BY_STATUS, 0,                                   \
      "A value was not accepted.")                                                                 \
    X(LOGIN_REQUIRED, "login_required", UNAUTHENTICATED, BY_STATUS, 0, "Log in first.")            \
    X(ROLE, "role", FORBIDDEN, BY_STATUS, 0, "Your role may not do this.")                         \
    X(BRANCH, "branch", FORBIDDEN, BY_STATUS, 0,                                                   \
      "Your role may do this only for your own branch.")                                           \
    X(DUPLICATE, "duplicate", CONFLICT, BY_STATUS, 0, "That record already exists.")               \
    X(DATABASE, "database", UNAVAILABLE, BY_STATUS, 0,                                             \
      "The database is unavailable; try again in a moment.")                                       \
    X(OVERLOADED, "overloaded", UNAVAILABLE, BY_STATUS, 0,                                         \
      "The server is overloaded; try again in a moment.")                                          \
    X(BUSY, "busy", UNAVAILABLE, BY_STATUS, 0,                                                     \
      "Another desk is changing the same record; try again.")                                      \
    X(CONTENTION, "contention", UNAVAILABLE, BY_STATUS, 0,                                         \
      "Too many desks changed the same records at once; try again.")                               \
    X(SHUTTING_DOWN, "shutting_down", UNAVAILABLE, BY_STATUS, 0,                                   \
      "The server is shutting down; try again in a moment.")                                       \
    X(CLOSED, "closed", UNAVAILABLE, BY_STATUS, 0, "Connection closed.")                           \
    X(INTERNAL, "internal", INTERNAL, BY_STATUS, 0, "Internal error; it has been logged.")         \
    X(INFLIGHT_LIMIT, "inflight_limit", TOO_MANY_REQUESTS, BY_STATUS, 0,                           \
      "Too many requests in flight on this connection.")                                           \
    /* Session and administration */                                                               \
    X(CURRENT_PASSWORD, "current_password", FORBIDDEN, BY_STATUS, 0,                               \
      "The current password is wrong.")                                                            \
    X(SESSION_ENDED, "session_ended", UNAUTHENTICATED, BY_STATUS, 0,                               \
      "The saved session has ended; log in with your password.")                                   \
    X(ACCOUNT_CHANGED, "account_changed", UNAUTHENTICATED, BY_STATUS, 0,                           \
      "The account was changed while logging in; try again.")                                      \
    X(PASSWORD_QUEUE, "password_queue", UNAVAILABLE, BY_STATUS, 0,                                 \
      "Too many passwords are being checked; try again in a moment.")                              \
    X(SELF, "self", BAD_REQUEST, BY_STATUS, 0, "That cannot be done to the record itself.")        \
    X(BAD_CREDENTIALS, "bad_credentials", UNAUTHENTICATED, BY_STATUS, 0,                           \
      "Wrong user name or password.")                                                              \
    X(UNKNOWN_WORKSTATION, "unknown_workstation", UNAUTHENTICATED, BY_STATUS, 0,                   \
      "This workstation is not registered.")                                                       \
    X(CERTIFICATE_MISMATCH, "certificate_mismatch", UNAUTHENTICATED, BY_STATUS, 0,                 \
      "The client certificate does not belong to this workstation.")                               \
    X(ACCOUNT_DISABLED, "account_disabled", UNAUTHENTICATED, BY_STATUS, 0,                         \
      "This account is disabled.")                                                                 \
    X(STAFF, "staff", NOT_FOUND, BY_STATUS, 0, "No staff account has that user name.")             \
    X(ALREADY_LOGGED_IN, "already_logged_in", CONFLICT, BY_STATUS, 0,                              \
      "This connection is already logged in.")                                                     \
    X(LOGIN_PENDING, "login_pending", CONFLICT, BY_STATUS, 0,                                      \
      "A login on this connection is still being checked.")                                        \
    X(USERNAME_TAKEN, "username_taken", CONFLICT, BY_STATUS, 0,                                    \
      "Another staff account has that user name.")                                                 \
    X(WORKSTATION_TAKEN, "workstation_taken", CONFLICT, BY_STATUS, 0,                              \
      "Another workstation has that name.")                                                        \
    X(WORKSTATION, "workstation", NOT_FOUND, BY_STATUS, 0, "No workstation has that name.")        \
    X(NO_CERTIFICATE, "no_certificate", CONFLICT, BY_STATUS, 0,                                    \
      "The workstation has no certificate that is not revoked already.")                           \
    X(CONFIG_INVALID, "config_invalid", REFUSED, BY_STATUS, 0,                                     \
      "The configuration file has an error; the running settings are kept.")                       \
    X(RELOAD_RUNNING, "reload_running", CONFLICT, BY_STATUS, 0, "A reload is already running.")    \
    X(PROTOCOL_VERSION, "protocol_version", UNSUPPORTED_VERSION, BY_STATUS, 0,                     \
      "This server speaks protocol version 1.")                                                    \
    X(FRAME_TOO_LARGE, "frame_too_large", FRAME_TOO_LARGE, BY_STATUS, 0,                           \
      "A frame exceeds the size limit.")                                                           \
    X(LOGIN_THROTTLED, "login_throttled", TOO_MANY_REQUESTS, CARREL_EXIT_AUTH, 0,                  \
      "Too many failed logins; wait a moment.")                                                    \
    /* Catalog and patrons */                                                                      \
    X(TOO_LONG, "too_long", BAD_REQUEST, BY_STATUS, REASON_STATUS_VARIES,                          \
      "Too long: a record over the MARC size limit, or a booking over the room's longest.")                                             \
    X(MARC, "marc", BAD_REQUEST, BY_STATUS, 0, "The record cannot be saved as MARC.")              \
    X(DAMAGED_RECORD, "damaged_record", INTERNAL, BY_STATUS, 0,                                    \
      "The stored MARC record cannot be read.")                                                    \
    X(BIB, "bib", NOT_FOUND, BY_STATUS, 0, "No title has that id.")                                \
    X(ITEM, "item", NOT_FOUND, BY_STATUS, 0, "No such item.")                                      \
    X(PATRON, "patron", NOT_FOUND, BY_STATUS, 0, "No patron has that card or id.")                 \
    X(BLOCK, "block", NOT_FOUND, BY_STATUS, 0, "No active block has that id.")                     \
    X(STALE_VERSION, "stale_version", CONFLICT, BY_STATUS, 0,                                      \
      "The record changed since it was read; read it again.")                                      \
    X(POSSIBLE_DUPLICATE, "possible_duplicate", CONFLICT, BY_STATUS, 0,                            \
      "This looks like a patron already on file.")                                                 \
    X(BARCODE_TAKEN, "barcode_taken", CONFLICT, BY_STATUS, 0,                                      \
      "That barcode is on another item.")                                                          \
    X(CARD_TAKEN, "card_taken", CONFLICT, BY_STATUS, 0,                                            \
      "That card belongs to another patron.")                                                      \
    X(CIRCULATING, "circulating", CONFLICT, BY_STATUS, 0,                                          \
      "The item is circulating; its status cannot be changed here.")                               \
    X(MERGED, "merged", CONFLICT, BY_STATUS, 0, "The record was merged into another.")             \
    X(ALREADY_MERGED, "already_merged", CONFLICT, BY_STATUS, 0,                                    \
      "The record was already merged.")                                                            \
    X(NOT_BLOCKED, "not_blocked", CONFLICT, BY_STATUS, 0, "The patron has no active block.")       \
    /* Circulation */                                                                              \
    X(ITEM_NOT_FOUND, "item_not_found", NOT_FOUND, BY_STATUS, 0, "No item has that barcode.")      \
    X(PATRON_NOT_FOUND, "patron_not_found", NOT_FOUND, BY_STATUS, 0,                               \
      "No patron has that card.")                                                                  \
    X(NOT_ON_LOAN, "not_on_loan", NOT_FOUND, BY_STATUS, REASON_STATUS_VARIES,                      \
      "The item is not on loan.")                                                                  \
    X(ON_LOAN, "on_loan", CONFLICT, BY_STATUS, 0, "The item is checked out.")                      \
    X(NOT_MISSING, "not_missing", CONFLICT, BY_STATUS, 0, "The item is not missing.")              \
    X(ALREADY_CHECKED_OUT, "already_checked_out", CONFLICT, BY_STATUS, 0,                          \
      "The item is already lent to this patron; renew it instead.")                                \
    X(POLICY, "policy", NOT_FOUND, BY_STATUS, 0, "No such loan rule.")                             \
    X(OVERRIDE, "override", FORBIDDEN, BY_STATUS, 0, "Your role may not override.")                \
    X(REQUEST_KEY_REUSED, "request_key_reused", CONFLICT, BY_STATUS, 0,                            \
      "That request key was already used for another request.")                                    \
    X(PATRON_EXPIRED, "patron_expired", REFUSED, BY_STATUS, 0, "The card has expired.")            \
    X(PATRON_BLOCKED, "patron_blocked", REFUSED, BY_STATUS, 0, "The patron is blocked.")           \
    X(PATRON_OWES, "patron_owes", REFUSED, BY_STATUS, 0,                                           \
      "The patron owes the library too much.")                                                     \
    X(LOAN_LIMIT, "loan_limit", REFUSED, BY_STATUS, 0, "The patron has the most loans allowed.")   \
    X(ITEM_TYPE_LIMIT, "item_type_limit", REFUSED, BY_STATUS, 0,                                   \
      "The patron has the most loans of this item type allowed.")                                  \
    X(ITEM_NOT_CIRCULATING, "item_not_circulating", REFUSED, BY_STATUS, 0,                         \
      "The item does not circulate.")                                                              \
    X(ITEM_ON_LOAN, "item_on_loan", REFUSED, BY_STATUS, 0,                                         \
      "The item is on loan to another patron.")                                                    \
    X(ITEM_ON_HOLD, "item_on_hold", REFUSED, BY_STATUS, 0,                                         \
      "The item is set aside for another patron's hold.")                                          \
    X(ITEM_IN_TRANSIT, "item_in_transit", REFUSED, BY_STATUS, 0, "The item is in transit.")        \
    X(ITEM_STATUS, "item_status", REFUSED, BY_STATUS, 0, "The item's status does not allow it.")   \
    X(RENEWAL_LIMIT, "renewal_limit", REFUSED, BY_STATUS, 0,                                       \
      "The loan has been renewed the most times allowed.")                                         \
    X(RENEWAL_HOLD, "renewal_hold", REFUSED, BY_STATUS, 0,                                         \
      "Another patron's hold is waiting for this title.")                                          \
    X(RENEWAL_NO_CHANGE, "renewal_no_change", REFUSED, BY_STATUS, 0,                               \
      "Renewing now would not move the due date later.")                                           \
    /* Holds and transits */                                                                       \
    X(HOLD, "hold", NOT_FOUND, BY_STATUS, 0, "No hold has that id.")                               \
    X(HOLD_LIMIT, "hold_limit", REFUSED, BY_STATUS, 0, "The patron has the most holds allowed.")   \
    X(NO_HOLDABLE_COPIES, "no_holdable_copies", REFUSED, BY_STATUS, 0,                             \
      "No copy of the title can be held.")                                                         \
    X(DUPLICATE_HOLD, "duplicate_hold", CONFLICT, BY_STATUS, 0,                                    \
      "The patron already has a hold on this title.")                                              \
    X(HOLD_CLOSED, "hold_closed", CONFLICT, BY_STATUS, 0,                                          \
      "The hold is filled, cancelled or expired.")                                                 \
    X(HOLD_CAPTURED, "hold_captured", CONFLICT, BY_STATUS, 0,                                      \
      "A copy is already set aside for the hold.")                                                 \
    X(NOT_HERE, "not_here", CONFLICT, BY_STATUS, 0, "The copy is not at this branch.")             \
    X(NOT_ON_SHELF, "not_on_shelf", CONFLICT, BY_STATUS, 0, "The copy is not on the shelf.")       \
    X(NOT_IN_TRANSIT, "not_in_transit", CONFLICT, BY_STATUS, 0, "The copy is not in transit.")  \
    /* Rooms and programs */                                                                   \
    X(ROOM, "room", NOT_FOUND, BY_STATUS, 0,                                                       \
      "No room has that id.")                                                                      \
    X(ROOM_CATEGORY, "room_category", NOT_FOUND, BY_STATUS, 0,                                     \
      "No room category has that code.")                                                           \
    X(BOOKING, "booking", NOT_FOUND, BY_STATUS, 0,                                                 \
      "No room booking has that id.")                                                              \
    X(PROGRAM, "program", NOT_FOUND, BY_STATUS, 0,                                                 \
      "No program has that id.")                                                                   \
    X(PROGRAM_SESSION, "program_session", NOT_FOUND, BY_STATUS, 0,                                 \
      "No program session has that id.")                                                           \
    X(SLOT_TAKEN, "slot_taken", CONFLICT, BY_STATUS, 0,                                            \
      "The room is already booked then.")                                                          \
    X(OUTSIDE_HOURS, "outside_hours", REFUSED, BY_STATUS, 0,                                       \
      "The branch is not open then.")                                                              \
    X(TOO_SHORT, "too_short", REFUSED, BY_STATUS, 0,                                               \
      "The booking is shorter than the room allows.")                                              \
    X(OFF_SLOT, "off_slot", REFUSED, BY_STATUS, 0,                                                 \
      "Bookings start and end on the room's slot grid.")                                           \
    X(TOO_FAR_AHEAD, "too_far_ahead", REFUSED, BY_STATUS, 0,                                       \
      "That is further ahead than bookings may be made.")                                          \
    X(IN_THE_PAST, "in_the_past", REFUSED, BY_STATUS, 0,                                           \
      "That time has passed.")                                                                     \
    X(PATRON_LIMIT, "patron_limit", REFUSED, BY_STATUS, 0,                                         \
      "The patron has reached a room booking limit.")                                              \
    X(BOOKING_GAP, "booking_gap", REFUSED, BY_STATUS, 0,                                           \
      "The patron's bookings need more time between them.")                                        \
    X(STAFF_ONLY, "staff_only", REFUSED, BY_STATUS, 0,                                             \
      "Only staff may use that room.")                                                             \
    X(OVER_CAPACITY, "over_capacity", REFUSED, BY_STATUS, 0,                                       \
      "More people than the room holds.")                                                          \
    X(ROOM_INACTIVE, "room_inactive", REFUSED, BY_STATUS, 0,                                       \
      "The room is not taking bookings.")                                                          \
    X(BOOKING_CLOSED, "booking_closed", CONFLICT, BY_STATUS, 0,                                    \
      "The booking is no longer live.")                                                            \
    X(CHECKIN_WINDOW, "checkin_window", REFUSED, BY_STATUS, 0,                                     \
      "Check-in opens 15 minutes before the start.")                                               \
    /* Staff schedules */                                                                      \
    X(DESK, "desk", NOT_FOUND, BY_STATUS, 0,                                                       \
      "No service desk has that code at the branch.")                                              \
    X(SHIFT, "shift", NOT_FOUND, BY_STATUS, 0,                                                     \
      "No shift has that id.")                                                                     \
    X(TIME_OFF_ENTRY, "time_off_entry", NOT_FOUND, BY_STATUS, 0,                                   \
      "No time off has that id.")                                                                  \
    X(SWAP, "swap", NOT_FOUND, BY_STATUS, 0,                                                       \
      "No swap request has that id.")                                                              \
    X(OVERLAPPING_SHIFT, "overlapping_shift", CONFLICT, BY_STATUS, 0,                              \
      "The person already has a shift then.")                                                      \
    X(TIME_OFF, "time_off", REFUSED, BY_STATUS, 0,                                                 \
      "The person has approved time off then.")                                                    \
    X(NOT_MIC_ELIGIBLE, "not_mic_eligible", REFUSED, BY_STATUS, 0,                                 \
      "The person may not be the manager in charge.")                                              \
    X(MAX_HOURS, "max_hours", REFUSED, BY_STATUS, 0,                                               \
      "The shift would take the person over their weekly hours.")                                  \
    X(NOT_AT_BRANCH, "not_at_branch", REFUSED, BY_STATUS, 0,                                       \
      "The person does not work at that branch.")                                                  \
    X(SHIFT_TAKEN, "shift_taken", CONFLICT, BY_STATUS, 0,                                          \
      "The shift is not open any more.")                                                           \
    X(SWAP_DECIDED, "swap_decided", CONFLICT, BY_STATUS, 0,                                        \
      "The swap was already decided.")                                                             \
    X(SHIFTS_SCHEDULED, "shifts_scheduled", CONFLICT, BY_STATUS, 0,                                \
      "The person has shifts then; move them first.")                                              \
    X(NOT_YOURS, "not_yours", FORBIDDEN, BY_STATUS, 0,                                             \
      "Only its owner (of the shift, the tally) or a manager of its branch may do that.")                            \
    /* Public service: inquiries, counts, sweeps */                                                \
    X(SERVICE_CODE, "service_code", NOT_FOUND, BY_STATUS, 0,                                       \
      "That code is not in the list (inquiry kinds, floor areas, floor activities).")              \
    X(INQUIRY, "inquiry", NOT_FOUND, BY_STATUS, 0,                                                 \
      "No inquiry has that id.")                                                                   \
    X(SAME_DAY, "same_day", REFUSED, BY_STATUS, 0,                                                 \
      "Tallies and counts can be backdated or taken back only on the same day.")                  \
    X(SWEEP_INCOMPLETE, "sweep_incomplete", REFUSED, BY_STATUS, 0,                                 \
      "A sweep counts every area of the branch, zeros included.")                                  \
    X(COUNT_OVERLAP, "count_overlap", CONFLICT, BY_STATUS, 0,                                      \
      "Those counts overlap counts already recorded for the counter.")                             \
    /* Tickets */                                                                                  \
    X(TICKET, "ticket", NOT_FOUND, BY_STATUS, 0,                                                   \
      "No ticket has that id.")                                                                    \
    X(TICKET_QUEUE, "ticket_queue", NOT_FOUND, BY_STATUS, 0,                                       \
      "No ticket queue has that code.")                                                            \
    X(NOT_QUEUE_STAFF, "not_queue_staff", FORBIDDEN, BY_STATUS, 0,                                 \
      "Only the staff of the ticket's queue may do that.")                                         \
    X(TICKET_CLOSED, "ticket_closed", CONFLICT, BY_STATUS, 0,                                      \
      "The ticket is closed; reopen it first.")                                                    \
    X(TICKET_OWNED, "ticket_owned", CONFLICT, BY_STATUS, 0,                                        \
      "Someone else has claimed the ticket; assign it to take it over.")                          \
    X(NO_REPLY_ADDRESS, "no_reply_address", REFUSED, BY_STATUS, 0,                                 \
      "The ticket has no email address or phone number to reply to.")                              \
    /* Collections: weeding and displays */                                                        \
    X(CREW_RULE, "crew_rule", NOT_FOUND, BY_STATUS, 0,                                             \
      "No CREW rule has that collection code.")                                                    \
    X(DISPLAY, "display", NOT_FOUND, BY_STATUS, 0,                                                 \
      "No display has that id.")                                                                   \
    X(DISPLAY_ENDED, "display_ended", CONFLICT, BY_STATUS, 0,                                      \
      "The display has ended; copies can no longer be added or taken off.")                        \
    X(ON_DISPLAY, "on_display", CONFLICT, BY_STATUS, 0,                                            \
      "The copy is already on another display over the same days.")                                \
    X(NOT_OWNED_HERE, "not_owned_here", CONFLICT, BY_STATUS, 0,                                    \
      "The copy belongs to another branch.")                                                       \
    X(HOLDS_WAITING, "holds_waiting", REFUSED, BY_STATUS, 0,                                       \
      "Holds are waiting for this title; fill them before taking a copy away.")                    \
    X(LAST_COPY, "last_copy", REFUSED, BY_STATUS, 0,                                               \
      "This is the last copy of the title in the system; confirm to withdraw it.")                 \
    /* Self-check (SIP2) and offline circulation */                                                \
    X(SELFCHECK_ACCOUNT, "selfcheck_account", FORBIDDEN, BY_STATUS, 0,                             \
      "A self-check account logs in only through the SIP2 port.")                                  \
    X(SIP_LOGIN, "sip_login", NOT_FOUND, BY_STATUS, 0,                                             \
      "No SIP2 login has that name.")                                                              \
    X(NOT_SELFCHECK, "not_selfcheck", CONFLICT, BY_STATUS, 0,                                      \
      "Only a staff account of role selfcheck can be a SIP2 login.")                               \
    X(CHANGED_AFTER, "changed_after", CONFLICT, BY_STATUS, 0,                                      \
      "The item changed after the offline transaction; it was not applied.")                       \
    X(OFFLINE_EXCEPTION, "offline_exception", NOT_FOUND, BY_STATUS, 0,                             \
      "No offline exception has that id.")                                                         \
    X(BAD_ENTRY, "bad_entry", BAD_REQUEST, BY_STATUS, 0,                                           \
      "The offline transaction can never be applied as journaled; it was not applied.")            \
    X(WHILE_ONLINE, "while_online", CONFLICT, BY_STATUS, 0,                                        \
      "The offline transaction is dated after the upload's login; it was not applied.")            \
    /* Statistics */                                                                               \
    X(STATS_UNAVAILABLE, "stats_unavailable", UNAVAILABLE, BY_STATUS, 0,                           \
      "The statistics database (the standby) cannot be reached; try again later.")
/* clang-format on */

typedef enum {
    REASON_NONE = 0, /* no reason, or a name not in the table */
#define X(e, name, status, exit_code, flags, sentence) REASON_##e,
    CARREL_REASON_TABLE(X)
#undef X
        REASON_COUNT
} reason_t;

/* "item_not_found", "field", ...; NULL for REASON_NONE or out of range. */
const char *reason_name(reason_t r);
/* The Carrel__Status the reason is sent with (INTERNAL for REASON_NONE). */
int reason_status(reason_t r);
/* A default English sentence; "" for REASON_NONE. */
const char *reason_sentence(reason_t r);
/* REASON_PARAM | REASON_STATUS_VARIES, or 0. */
unsigned reason_flags(reason_t r);
/* The client's exit code for a request that ended with reason r and status
 * `status`: the reason's own, or the status's (status_exit_code). */
int reason_exit_code(reason_t r, int status);
/*
 * The table entry of a reason as sent on the wire: "field:email" is
 * REASON_FIELD; REASON_NONE for NULL, "" and names not in the table.
 */
CARREL_MUST_USE reason_t reason_from_name(const char *name);

#endif
