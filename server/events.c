#include "events.h"

#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "handlers.h"
#include "log.h"
#include "util.h"

/* The next tab-separated field of *p (NULL once there is none). */
static char *events_field(char **p)
{
    char *field = *p;
    if (field == NULL)
        return NULL;
    char *tab = strchr(field, '\t');
    if (tab)
        *tab++ = '\0';
    *p = tab;
    return field;
}

/* A positive id, or an empty field (has stays false); false if malformed. */
static bool events_id(const char *field, bool *has, int64_t *out)
{
    *has = false;
    if (field == NULL || field[0] == '\0')
        return true;
    if (!util_parse_int(field, 1, INT64_MAX, out))
        return false;
    *has = true;
    return true;
}

/* Comma-separated user names into out->usernames; false if too many or one is empty. */
static bool events_usernames(char *list, events_payload_t *out)
{
    out->n_usernames = 0;
    if (list == NULL || list[0] == '\0')
        return true;
    for (char *name = list; name;) {
        char *comma = strchr(name, ',');
        if (comma)
            *comma++ = '\0';
        if (name[0] == '\0' || out->n_usernames == EVENTS_USERNAMES_MAX)
            return false;
        out->usernames[out->n_usernames++] = name;
        name = comma;
    }
    return true;
}

bool events_payload_parse(char *payload, events_payload_t *out)
{
    memset(out, 0, sizeof(*out));
    char *p = payload;
    char *f[7];
    int n = 0;
    while (p && n < 7)
        f[n++] = events_field(&p);
    if (n < 5 || p != NULL) /* too few fields, or an eighth */
        return false;
    out->branch_code = f[0];
    out->kind = f[1];
    out->item_barcode = f[2][0] ? f[2] : NULL;
    out->text = f[4];
    if (!events_id(f[3], &out->has_bib_id, &out->bib_id))
        return false;
    if (n > 5 && !events_id(f[5], &out->has_ticket_id, &out->ticket_id))
        return false;
    return n < 7 || events_usernames(f[6], out);
}

bool events_payload_for(const events_payload_t *p, const char *username)
{
    if (p->n_usernames == 0)
        return true;
    for (size_t i = 0; i < p->n_usernames; i++)
        if (strcmp(p->usernames[i], username) == 0)
            return true;
    return false;
}

bool events_payload_reaches(const events_payload_t *p, const session_t *s, bool all_branches)
{
    if (p->n_usernames)
        return all_branches || s->role == CARREL__ROLE__ROLE_COORDINATOR ||
               s->role == CARREL__ROLE__ROLE_ADMIN ||
               events_payload_for(p, s->username);
    return all_branches || strcmp(s->branch_code, p->branch_code) == 0;
}

/*
 * Push one payload to the subscribed, logged-in connections it is for: by
 * branch (the connection's session branch, or every branch for
 * all_branches); an event addressed to user names (a ticket's staff) goes to
 * their connections wherever they are logged in, and to every coordinator
 * and administrator (events_payload_reaches), not to the rest of the branch.
 */
void events_on_notify(void *arg, const char *payload)
{
    server_t *srv = arg;
    char *copy = util_xstrdup(payload);
    events_payload_t *p = util_xcalloc(1, sizeof(*p));
    if (!events_payload_parse(copy, p)) {
        log_warn(0, "malformed desk event ignored");
        free(p);
        free(copy);
        return;
    }
    Carrel__Event ev = CARREL__EVENT__INIT;
    ev.branch_code = p->branch_code;
    ev.kind = p->kind;
    ev.item_barcode = p->item_barcode;
    ev.has_bib_id = p->has_bib_id;
    ev.bib_id = p->bib_id;
    ev.text = p->text;
    ev.has_ticket_id = p->has_ticket_id;
    ev.ticket_id = p->ticket_id;
    ev.has_time_ms = 1;
    ev.time_ms = util_now_ms();
    int sent = 0;
    for (conn_t *c = srv->conns; c; c = c->next) {
        if (!c->subscribed || !c->session.authenticated || c->closed)
            continue;
        if (!events_payload_reaches(p, &c->session, c->all_branches))
            continue;
        conn_push_event(c, &ev);
        sent++;
    }
    log_debug(0, "event %s for %s to %d desk(s)", ev.kind, ev.branch_code, sent);
    free(p);
    free(copy);
}

void handle_subscribe(request_t *req)
{
    Carrel__Subscribe *m = req->msg->subscribe;
    conn_t *c = req->conn;
    bool all = m->has_all_branches && m->all_branches;
    if (all && perm_role_is_branch_bound(request_session(req)->role)) {
        request_fail(req, CARREL__STATUS__STATUS_FORBIDDEN, "role",
                     "Only coordinators and administrators hear every branch's events.");
        return;
    }
    c->subscribed = true;
    c->all_branches = all;
    request_ok(req);
}
