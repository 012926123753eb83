/*
 * tickets: follow-up tickets (proto/tickets.proto, Request fields 290-296):
 * queues, opening a ticket, the list, a ticket with its history, changes
 * (claim, assign, transfer, status, close, reopen, kb), replies and notes;
 * and the tickets timer.
 *
 * Every rule lives in sql/rules/tickets.sql: each request is one call of a
 * function there. Documents go to SQL as jsonb (json_message, field names
 * as in tickets.proto); rows come back in proto order (ticket_out,
 * ticket_message_out) and are read by position through the enums below.
 *
 * Who sees what: anyone may open a ticket in any active queue; the staff of
 * a queue (its members, and for a branch queue the branch's staff) work it;
 * coordinators and admins see every queue. C decides the last
 * (PERM_TICKET_ALL, passed to SQL as p_all); SQL decides the rest
 * (ticket_works: CR403 not_queue_staff).
 *
 * The tickets timer runs tickets_tick() on the primary every
 * tickets_tick_interval_s: tickets past 75% of their queue's target are
 * flagged, past it escalated (each pushes one event to the queue's staff
 * through desk_event_to and events.c), old closed ones anonymised: a
 * jobtimer like the rooms timer.
 */
#include "tickets.h"

#include <stdlib.h>
#include <string.h>

#include "handlers.h"
#include "log.h"
#include "pgtext.h"
#include "reply.h"

/* Bounds of text fields before SQL (request_fail_text), in bytes: SQL counts
 * characters (subject 200, question and text 8000), which may be four bytes
 * each; codes, user names, cards, phones and actions are short. */
#define TICKETS_SHORT_MAX    64
#define TICKETS_NAME_MAX     400
#define TICKETS_EMAIL_MAX    320
#define TICKETS_SUBJECT_MAX  800
#define TICKETS_TEXT_MAX     32000
#define TICKETS_MEMBERS_MAX  500
#define TICKETS_LIST_DEFAULT 100
#define TICKETS_LIST_MAX     500

/* ---------------------------------------------------------------- row types */

/* ticket_out (sql/rules/tickets.sql), Ticket's field order. */
enum {
    TK_ID,
    TK_QUEUE,
    TK_BRANCH_CODE,
    TK_STATUS,
    TK_SUBJECT,
    TK_QUESTION,
    TK_OWNER,
    TK_CARD,
    TK_PATRON_NAME,
    TK_CONTACT_EMAIL,
    TK_CONTACT_PHONE,
    TK_REPLY_CHANNEL,
    TK_CHANNEL,
    TK_CREATED_AT,
    TK_UPDATED_AT,
    TK_DUE_AT,
    TK_USED_PCT,
    TK_FLAGGED,
    TK_ESCALATED,
    TK_KB,
    TK_CLOSED_AT,
    TK_INQUIRY_ID,
    TK_ANONYMISED,
    TK_CREATED_BY,
    TK_NCOLS
};

/* ticket_message_out, TicketMessage's field order. */
enum { MSG_ID, MSG_KIND, MSG_AT, MSG_USERNAME, MSG_TEXT, MSG_SENT_TO, MSG_DELIVERY, MSG_NCOLS };

/* ticket_queue_list / ticket_queue_save, TicketQueue's field order. */
enum {
    Q_ID,
    Q_CODE,
    Q_NAME,
    Q_BRANCH_CODE,
    Q_HOURS_BRANCH_CODE,
    Q_TARGET_HOURS,
    Q_ACTIVE,
    Q_MEMBERS,
    Q_OPEN_COUNT,
    Q_OVERDUE_COUNT,
    Q_NCOLS
};

/* ticket_show and the changes: kind ('ticket' | 'message'), a ticket, a message. */
enum {
    SHOW_KIND,
    SHOW_TICKET,
    SHOW_MESSAGE = SHOW_TICKET + TK_NCOLS,
    SHOW_NCOLS = SHOW_MESSAGE + MSG_NCOLS
};

/* ---------------------------------------------------------------- statements */

static const reply_stmt_t stmt_queue_list =
    REPLY_STMT("ticket_queue_list", Q_NCOLS, "SELECT * FROM ticket_queue_list($1, $2::boolean)");

/* $4: the document's keys to leave out (members sent empty: "unchanged"). */
static const reply_stmt_t stmt_queue_save =
    REPLY_STMT("ticket_queue_save", Q_NCOLS,
               "SELECT * FROM ticket_queue_save($1, $2, $3::jsonb - $4::text[])");

static const reply_stmt_t stmt_open =
    REPLY_STMT("ticket_open", SHOW_NCOLS,
               "SELECT * FROM ticket_open($1::uuid, $2, $3, $4::jsonb, $5, $6::integer)");

static const reply_stmt_t stmt_list =
    REPLY_STMT("ticket_list", TK_NCOLS,
               "SELECT * FROM ticket_list($1, $2::boolean, $3, $4::boolean, $5::boolean,"
               " $6::boolean, $7, $8, $9::integer, $10)");

static const reply_stmt_t stmt_show =
    REPLY_STMT("ticket_show", SHOW_NCOLS, "SELECT * FROM ticket_show($1, $2::boolean, $3)");

static const reply_stmt_t stmt_change =
    REPLY_STMT("ticket_change", SHOW_NCOLS,
               "SELECT * FROM ticket_change($1::uuid, $2, $3, $4::boolean, $5::jsonb)");

static const reply_stmt_t stmt_post =
    REPLY_STMT("ticket_post", SHOW_NCOLS,
               "SELECT * FROM ticket_post($1::uuid, $2, $3, $4::boolean, $5, $6, $7, $8::boolean)");

enum { TICK_FLAGGED, TICK_ESCALATED, TICK_ANONYMISED, TICK_NCOLS };
static const db_stmt_t stmt_tick = {"tickets_tick",
                                    "SELECT flagged, escalated, anonymised FROM tickets_tick()"};

void tickets_register_statements(void)
{
    static const reply_stmt_t *const all[] = {&stmt_queue_list, &stmt_queue_save, &stmt_open,
                                              &stmt_list,       &stmt_show,       &stmt_change,
                                              &stmt_post};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        db_stmt_register(&all[i]->db);
    db_stmt_register(&stmt_tick);
}

/* ---------------------------------------------------------------- shared */

/* p_all: may the caller see every queue (coordinators and admins)? */
static const char *tickets_all(const request_t *req)
{
    perm_subject_t who = request_subject(req);
    return pgtext_bool(perm_check(&who, PERM_TICKET_ALL, 0) == PERM_OK);
}

/* A field that must be there: BAD_REQUEST field:<name> with `why`; true if answered. */
static bool tickets_fail_missing(request_t *req, bool present, const char *field, const char *why)
{
    if (present)
        return false;
    request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST,
                 arena_printf(&req->arena, "field:%s", field), "%s", why);
    return true;
}

/* A ticket id: 1 or more; true if answered. */
static bool tickets_fail_id(request_t *req, int64_t id)
{
    if (id >= 1)
        return false;
    request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:id",
                 "Name the ticket by its number (1 or more, not %lld).", (long long)id);
    return true;
}

/* A Ticket from the ticket_out columns starting at column c0. */
static Carrel__Ticket *ticket_from_row(request_t *req, const PGresult *res, int i, int c0)
{
    Carrel__Ticket *t = arena_new(&req->arena, Carrel__Ticket, 1);
    carrel__ticket__init(t);
    reply_int64_opt(res, i, c0 + TK_ID, &t->has_id, &t->id);
    t->queue = reply_text_opt(req, res, i, c0 + TK_QUEUE);
    t->branch_code = reply_text_opt(req, res, i, c0 + TK_BRANCH_CODE);
    t->status = reply_text_opt(req, res, i, c0 + TK_STATUS);
    t->subject = reply_text_opt(req, res, i, c0 + TK_SUBJECT);
    t->question = reply_text_opt(req, res, i, c0 + TK_QUESTION);
    t->owner = reply_text_opt(req, res, i, c0 + TK_OWNER);
    t->card = reply_text_opt(req, res, i, c0 + TK_CARD);
    t->patron_name = reply_text_opt(req, res, i, c0 + TK_PATRON_NAME);
    t->contact_email = reply_text_opt(req, res, i, c0 + TK_CONTACT_EMAIL);
    t->contact_phone = reply_text_opt(req, res, i, c0 + TK_CONTACT_PHONE);
    t->reply_channel = reply_text_opt(req, res, i, c0 + TK_REPLY_CHANNEL);
    t->channel = reply_text_opt(req, res, i, c0 + TK_CHANNEL);
    t->created_at = reply_text_opt(req, res, i, c0 + TK_CREATED_AT);
    t->updated_at = reply_text_opt(req, res, i, c0 + TK_UPDATED_AT);
    t->due_at = reply_text_opt(req, res, i, c0 + TK_DUE_AT);
    reply_int32_opt(res, i, c0 + TK_USED_PCT, &t->has_used_pct, &t->used_pct);
    reply_bool_opt(res, i, c0 + TK_FLAGGED, &t->has_flagged, &t->flagged);
    reply_bool_opt(res, i, c0 + TK_ESCALATED, &t->has_escalated, &t->escalated);
    reply_bool_opt(res, i, c0 + TK_KB, &t->has_kb, &t->kb);
    t->closed_at = reply_text_opt(req, res, i, c0 + TK_CLOSED_AT);
    reply_int64_opt(res, i, c0 + TK_INQUIRY_ID, &t->has_inquiry_id, &t->inquiry_id);
    reply_bool_opt(res, i, c0 + TK_ANONYMISED, &t->has_anonymised, &t->anonymised);
    t->created_by = reply_text_opt(req, res, i, c0 + TK_CREATED_BY);
    return t;
}

/* A TicketMessage from the ticket_message_out columns starting at column c0. */
static Carrel__TicketMessage *message_from_row(request_t *req, const PGresult *res, int i, int c0)
{
    Carrel__TicketMessage *m = arena_new(&req->arena, Carrel__TicketMessage, 1);
    carrel__ticket_message__init(m);
    reply_int64_opt(res, i, c0 + MSG_ID, &m->has_id, &m->id);
    m->kind = reply_text_opt(req, res, i, c0 + MSG_KIND);
    m->at = reply_text_opt(req, res, i, c0 + MSG_AT);
    m->username = reply_text_opt(req, res, i, c0 + MSG_USERNAME);
    m->text = reply_text_opt(req, res, i, c0 + MSG_TEXT);
    m->sent_to = reply_text_opt(req, res, i, c0 + MSG_SENT_TO);
    m->delivery = reply_text_opt(req, res, i, c0 + MSG_DELIVERY);
    return m;
}

static Carrel__TicketQueue *queue_from_row(request_t *req, const PGresult *res, int i)
{
    Carrel__TicketQueue *q = arena_new(&req->arena, Carrel__TicketQueue, 1);
    carrel__ticket_queue__init(q);
    reply_int64_opt(res, i, Q_ID, &q->has_id, &q->id);
    q->code = reply_text_opt(req, res, i, Q_CODE);
    q->name = reply_text_opt(req, res, i, Q_NAME);
    q->branch_code = reply_text_opt(req, res, i, Q_BRANCH_CODE);
    q->hours_branch_code = reply_text_opt(req, res, i, Q_HOURS_BRANCH_CODE);
    reply_int32_opt(res, i, Q_TARGET_HOURS, &q->has_target_hours, &q->target_hours);
    reply_bool_opt(res, i, Q_ACTIVE, &q->has_active, &q->active);
    q->members = pgtext_array_strings(&req->arena, COL(res, i, Q_MEMBERS), &q->n_members);
    reply_int32_opt(res, i, Q_OPEN_COUNT, &q->has_open_count, &q->open_count);
    reply_int32_opt(res, i, Q_OVERDUE_COUNT, &q->has_overdue_count, &q->overdue_count);
    return q;
}

/*
 * The rows of ticket_show (and of the changes, which answer with it): the
 * ticket first, then its messages oldest first. No ticket row is a contract
 * broken by SQL (it raises CR404 ticket instead): INTERNAL, logged. NULL if
 * answered.
 */
static Carrel__TicketShowReply *tickets_show_reply(request_t *req, const PGresult *res,
                                                   const char *fn)
{
    int n = PQntuples(res);
    Carrel__TicketShowReply *reply = arena_new(&req->arena, Carrel__TicketShowReply, 1);
    carrel__ticket_show_reply__init(reply);
    reply->messages = arena_new(&req->arena, Carrel__TicketMessage *, (size_t)n + 1);
    for (int i = 0; i < n; i++) {
        if (strcmp(COL(res, i, SHOW_KIND), "ticket") == 0)
            reply->ticket = ticket_from_row(req, res, i, SHOW_TICKET);
        else if (!db_null(res, i, SHOW_MESSAGE + MSG_ID))
            reply->messages[reply->n_messages++] = message_from_row(req, res, i, SHOW_MESSAGE);
    }
    if (reply->ticket == NULL) {
        log_error(req->conn->id, "%s returned no ticket row", fn);
        request_fail_reason(req, REASON_INTERNAL);
        return NULL;
    }
    return reply;
}

/* ---------------------------------------------------------------- queues */

static void queue_list_done(request_t *req, const PGresult *res)
{
    int n = PQntuples(res);
    Carrel__TicketQueueListReply *reply = arena_new(&req->arena, Carrel__TicketQueueListReply, 1);
    carrel__ticket_queue_list_reply__init(reply);
    reply->queues = arena_new(&req->arena, Carrel__TicketQueue *, (size_t)n + 1);
    for (int i = 0; i < n; i++)
        reply->queues[reply->n_queues++] = queue_from_row(req, res, i);
    req->resp.body_case = CARREL__RESPONSE__BODY_TICKET_QUEUES;
    req->resp.ticket_queues = reply;
    request_ok(req);
}

void handle_ticket_queue_list(request_t *req)
{
    const char *staff, *ws;
    reply_actor(req, &staff, &ws);
    const char *values[2] = {staff, tickets_all(req)};
    reply_query(req, &stmt_queue_list, 2, values, queue_list_done);
}

static void queue_save_done(request_t *req, const PGresult *res)
{
    if (PQntuples(res) != 1) {
        log_error(req->conn->id, "ticket_queue_save returned %d rows", PQntuples(res));
        request_fail_reason(req, REASON_INTERNAL);
        return;
    }
    req->resp.body_case = CARREL__RESPONSE__BODY_TICKET_QUEUE;
    req->resp.ticket_queue = queue_from_row(req, res, 0);
    log_info(req->conn->id, "%s saved ticket queue %s", request_session(req)->username,
             req->resp.ticket_queue->code ? req->resp.ticket_queue->code : "");
    request_ok(req);
}

void handle_ticket_queue_save(request_t *req)
{
    Carrel__TicketQueueSave *m = req->msg->ticket_queue_save;
    Carrel__TicketQueue *q = m->queue;
    bool clear = m->has_clear_members && m->clear_members;
    if (tickets_fail_missing(req, q && reply_opt(q->code), "code",
                             "A ticket queue needs its code."))
        return;
    if (REQUEST_TEXTS(req, {q->code, TICKETS_SHORT_MAX, "code"},
                      {q->name, TICKETS_NAME_MAX, "name"},
                      {q->branch_code, TICKETS_SHORT_MAX, "branch_code"},
                      {q->hours_branch_code, TICKETS_SHORT_MAX, "hours_branch_code"}))
        return;
    if (clear && q->n_members > 0) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:clear_members",
                     "Clear the members or name them, not both.");
        return;
    }
    if (q->n_members > TICKETS_MEMBERS_MAX) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:members",
                     "A queue has at most %d named members (not %zu).", TICKETS_MEMBERS_MAX,
                     q->n_members);
        return;
    }
    for (size_t i = 0; i < q->n_members; i++)
        if (tickets_fail_missing(req, reply_opt(q->members[i]) != NULL, "members",
                                 "A member's user name may not be empty.") ||
            request_fail_text(req, q->members[i], TICKETS_SHORT_MAX, "members"))
            return;
    /* What the server counts is not the client's to send. */
    q->has_id = q->has_open_count = q->has_overdue_count = 0;
    const char *staff, *ws;
    reply_actor(req, &staff, &ws);
    /* JSON has every list, empty or not: a save without members keeps them
     * (json_message cannot tell "absent" from "empty" for a repeated field),
     * unless clear_members says the empty list is meant. */
    char *omit[1] = {"members"};
    bool keep = q->n_members == 0 && !clear;
    const char *values[4] = {staff, ws, reply_json(req, &q->base),
                             pgtext_array_build(&req->arena, omit, keep ? 1 : 0)};
    reply_query(req, &stmt_queue_save, 4, values, queue_save_done);
}

/* ---------------------------------------------------------------- TicketOpen */

static void open_done(request_t *req, const PGresult *res)
{
    Carrel__TicketShowReply *reply = tickets_show_reply(req, res, "ticket_open");
    if (reply == NULL)
        return;
    log_info(req->conn->id, "%s opened ticket %lld in %s", request_session(req)->username,
             (long long)reply->ticket->id, reply->ticket->queue ? reply->ticket->queue : "?");
    req->resp.body_case = CARREL__RESPONSE__BODY_TICKET_OPENED;
    req->resp.ticket_opened = reply;
    request_ok(req);
}

static const char *const reply_channels[] = {"email", "sms", "none", NULL};
static const char *const asked_channels[] = {"in_person", "phone", "email", "chat", "text", NULL};

void handle_ticket_open(request_t *req)
{
    Carrel__Ticket *t = req->msg->ticket_open->ticket;
    if (tickets_fail_missing(req, t != NULL, "ticket", "The ticket is missing.") ||
        tickets_fail_missing(req, reply_opt(t->queue) != NULL, "queue",
                             "Name the queue the ticket goes to.") ||
        tickets_fail_missing(req, reply_opt(t->subject) != NULL, "subject",
                             "A ticket needs a subject (1 to 200 characters).") ||
        tickets_fail_missing(req, reply_opt(t->question) != NULL, "question",
                             "A ticket needs the question (1 to 8000 characters)."))
        return;
    if (REQUEST_TEXTS(req, {t->queue, TICKETS_SHORT_MAX, "queue"},
                      {t->subject, TICKETS_SUBJECT_MAX, "subject"},
                      {t->question, TICKETS_TEXT_MAX, "question"},
                      {t->card, TICKETS_SHORT_MAX, "card"},
                      {t->contact_email, TICKETS_EMAIL_MAX, "contact_email"},
                      {t->contact_phone, TICKETS_SHORT_MAX, "contact_phone"},
                      {t->reply_channel, TICKETS_SHORT_MAX, "reply_channel"},
                      {t->channel, TICKETS_SHORT_MAX, "channel"}))
        return;
    if (reply_opt(t->reply_channel) && !request_one_of(t->reply_channel, reply_channels)) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:reply_channel",
                     "Replies go by email, sms or none.");
        return;
    }
    if (reply_opt(t->channel) && !request_one_of(t->channel, asked_channels)) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:channel",
                     "The channel is in_person, phone, email, chat or text.");
        return;
    }
    if (t->has_inquiry_id && t->inquiry_id < 1) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:inquiry_id",
                     "An inquiry id is 1 or more (not %lld).", (long long)t->inquiry_id);
        return;
    }
    /* What the server fills in is not the client's to send. */
    t->has_id = t->has_used_pct = t->has_flagged = t->has_escalated = t->has_anonymised = 0;
    t->status = t->owner = t->patron_name = t->branch_code = NULL;
    t->created_at = t->updated_at = t->due_at = t->closed_at = t->created_by = NULL;
    const char *staff, *ws;
    reply_actor(req, &staff, &ws);
    /* The branches whose tallies the caller may link: its own (branch-bound
     * roles), or every branch (NULL: coordinators and admins). */
    perm_subject_t who = request_subject(req);
    const char *values[6] = {req->msg->request_key,
                             staff,
                             ws,
                             reply_json(req, &t->base),
                             t->has_inquiry_id ? pgtext_int(&req->arena, t->inquiry_id) : NULL,
                             perm_scope_param(&req->arena, &who)};
    reply_query(req, &stmt_open, 6, values, open_done);
}

/* ---------------------------------------------------------------- TicketList */

static void list_done(request_t *req, const PGresult *res)
{
    int n = PQntuples(res);
    Carrel__TicketListReply *reply = arena_new(&req->arena, Carrel__TicketListReply, 1);
    carrel__ticket_list_reply__init(reply);
    reply->tickets = arena_new(&req->arena, Carrel__Ticket *, (size_t)n + 1);
    for (int i = 0; i < n; i++)
        reply->tickets[reply->n_tickets++] = ticket_from_row(req, res, i, 0);
    req->resp.body_case = CARREL__RESPONSE__BODY_TICKETS;
    req->resp.tickets = reply;
    request_ok(req);
}

static const char *const list_statuses[] = {"new", "open", "waiting", "closed", "all", NULL};

void handle_ticket_list(request_t *req)
{
    Carrel__TicketList *m = req->msg->ticket_list;
    int limit;
    if (REQUEST_TEXTS(req, {m->queue, TICKETS_SHORT_MAX, "queue"},
                      {m->status, TICKETS_SHORT_MAX, "status"},
                      {m->branch, TICKETS_SHORT_MAX, "branch"}) ||
        !request_limit(req, m->has_limit, m->limit, TICKETS_LIST_DEFAULT, TICKETS_LIST_MAX,
                       "field:limit", &limit))
        return;
    if (reply_opt(m->status) && !request_one_of(m->status, list_statuses)) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:status",
                     "The status is new, open, waiting, closed or all.");
        return;
    }
    if (m->has_before_id && m->before_id < 1) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:before_id",
                     "before_id is a ticket number (1 or more).");
        return;
    }
    arena_t *a = &req->arena;
    const char *staff, *ws;
    reply_actor(req, &staff, &ws);
    const char *values[10] = {staff,
                              tickets_all(req),
                              reply_opt(m->queue),
                              pgtext_bool(m->has_mine && m->mine),
                              pgtext_bool(m->has_overdue && m->overdue),
                              pgtext_bool(m->has_flagged && m->flagged),
                              reply_opt(m->status),
                              reply_opt(m->branch),
                              pgtext_int(a, limit),
                              m->has_before_id ? pgtext_int(a, m->before_id) : NULL};
    reply_query(req, &stmt_list, 10, values, list_done);
}

/* ---------------------------------------------------------------- TicketShow */

static void show_done(request_t *req, const PGresult *res)
{
    Carrel__TicketShowReply *reply = tickets_show_reply(req, res, "ticket_show");
    if (reply == NULL)
        return;
    req->resp.body_case = CARREL__RESPONSE__BODY_TICKET;
    req->resp.ticket = reply;
    request_ok(req);
}

void handle_ticket_show(request_t *req)
{
    Carrel__TicketShow *m = req->msg->ticket_show;
    if (tickets_fail_id(req, m->id))
        return;
    const char *staff, *ws;
    reply_actor(req, &staff, &ws);
    const char *values[3] = {staff, tickets_all(req), pgtext_int(&req->arena, m->id)};
    reply_query(req, &stmt_show, 3, values, show_done);
}

/* ---------------------------------------------------------------- TicketChange */

static void change_done(request_t *req, const PGresult *res)
{
    Carrel__TicketShowReply *reply = tickets_show_reply(req, res, "ticket_change");
    if (reply == NULL)
        return;
    Carrel__TicketChange *m = req->msg->ticket_change;
    log_info(req->conn->id, "%s: %s of ticket %lld", request_session(req)->username, m->action,
             (long long)m->id);
    req->resp.body_case = CARREL__RESPONSE__BODY_TICKET_CHANGED;
    req->resp.ticket_changed = reply;
    request_ok(req);
}

static const char *const change_actions[] = {"claim", "assign", "transfer", "status",
                                             "close", "reopen", "kb",       NULL};
static const char *const change_statuses[] = {"open", "waiting", NULL};

/* What each action needs besides the ticket; true if answered. */
static bool change_fail_arguments(request_t *req, const Carrel__TicketChange *m)
{
    if (strcmp(m->action, "assign") == 0)
        return tickets_fail_missing(req, reply_opt(m->to_username) != NULL, "to_username",
                                    "Name the staff member to assign the ticket to.");
    if (strcmp(m->action, "transfer") == 0)
        return tickets_fail_missing(req, reply_opt(m->to_queue) != NULL, "to_queue",
                                    "Name the queue to transfer the ticket to.");
    if (strcmp(m->action, "status") == 0)
        return tickets_fail_missing(req, request_one_of(m->status, change_statuses), "status",
                                    "The status is open or waiting (new only by opening, "
                                    "closed by closing).");
    if (strcmp(m->action, "kb") == 0)
        return tickets_fail_missing(req, m->has_kb, "kb",
                                    "Say whether the ticket is kept for the knowledge base.");
    return false;
}

void handle_ticket_change(request_t *req)
{
    Carrel__TicketChange *m = req->msg->ticket_change;
    if (tickets_fail_id(req, m->id) ||
        REQUEST_TEXTS(req, {m->action, TICKETS_SHORT_MAX, "action"},
                      {m->to_username, TICKETS_SHORT_MAX, "to_username"},
                      {m->to_queue, TICKETS_SHORT_MAX, "to_queue"},
                      {m->status, TICKETS_SHORT_MAX, "status"},
                      {m->note, TICKETS_TEXT_MAX, "note"}))
        return;
    if (!request_one_of(m->action, change_actions)) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:action",
                     "The action is claim, assign, transfer, status, close, reopen or kb.");
        return;
    }
    if (change_fail_arguments(req, m))
        return;
    const char *staff, *ws;
    reply_actor(req, &staff, &ws);
    const char *values[5] = {req->msg->request_key, staff, ws, tickets_all(req),
                             reply_json(req, &m->base)};
    reply_query(req, &stmt_change, 5, values, change_done);
}

/* ---------------------------------------------------------------- TicketPost */

static void post_done(request_t *req, const PGresult *res)
{
    Carrel__TicketShowReply *reply = tickets_show_reply(req, res, "ticket_post");
    if (reply == NULL)
        return;
    Carrel__TicketPost *m = req->msg->ticket_post;
    log_info(req->conn->id, "%s: %s on ticket %lld", request_session(req)->username, m->kind,
             (long long)m->id);
    req->resp.body_case = CARREL__RESPONSE__BODY_TICKET_POSTED;
    req->resp.ticket_posted = reply;
    request_ok(req);
}

static const char *const post_kinds[] = {"reply", "note", NULL};

void handle_ticket_post(request_t *req)
{
    Carrel__TicketPost *m = req->msg->ticket_post;
    if (tickets_fail_id(req, m->id) || REQUEST_TEXTS(req, {m->kind, TICKETS_SHORT_MAX, "kind"},
                                                     {m->text, TICKETS_TEXT_MAX, "text"}))
        return;
    if (!request_one_of(m->kind, post_kinds)) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:kind",
                     "A post is a reply (sent to the patron) or a note (internal).");
        return;
    }
    if (tickets_fail_missing(req, reply_opt(m->text) != NULL, "text",
                             "The text is missing (1 to 8000 characters)."))
        return;
    const char *staff, *ws;
    reply_actor(req, &staff, &ws);
    const char *values[8] = {req->msg->request_key,
                             staff,
                             ws,
                             tickets_all(req),
                             pgtext_int(&req->arena, m->id),
                             m->kind,
                             m->text,
                             pgtext_bool(m->has_keep_open && m->keep_open)};
    reply_query(req, &stmt_post, 8, values, post_done);
}

/* ---------------------------------------------------------------- the tickets timer */

static bool tickets_tick_done(void *arg, const PGresult *res)
{
    (void)arg;
    if (PQntuples(res) > 0) {
        int64_t flagged = db_int64(res, 0, TICK_FLAGGED);
        int64_t escalated = db_int64(res, 0, TICK_ESCALATED);
        int64_t anonymised = db_int64(res, 0, TICK_ANONYMISED);
        if (flagged || escalated || anonymised)
            log_info(0, "tickets: %lld flagged, %lld escalated, %lld anonymised",
                     (long long)flagged, (long long)escalated, (long long)anonymised);
    }
    return false;
}

void tickets_start(server_t *srv)
{
    long every_s = srv->cfg.tickets_tick_interval_s;
    const jobtimer_def_t def = {.module = "tickets",
                                .job = "the tickets job",
                                .stmt = &stmt_tick,
                                .ncols = TICK_NCOLS,
                                .interval_s = every_s,
                                .done = tickets_tick_done};
    srv->tickets = jobtimer_start(srv, &def);
    if (every_s > 0)
        log_info(0, "tickets: flagged, escalated and anonymised every %ld s", every_s);
    else
        log_info(0, "tickets: the tickets job is off (tickets_tick_interval_s 0)");
}
