#include "events.h"

#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "handlers.h"
#include "log.h"
#include "util.h"

/* Payload: branch code, kind, barcode, bib id, text, separated by tabs. */
void events_on_notify(void *arg, const char *payload)
{
    server_t *srv = arg;
    char *copy = util_xstrdup(payload);
    char *fields[5] = {0};
    char *p = copy;
    for (int i = 0; i < 5 && p; i++) {
        fields[i] = p;
        char *tab = i < 4 ? strchr(p, '\t') : NULL;
        if (tab)
            *tab = '\0';
        p = tab ? tab + 1 : NULL;
    }
    if (fields[4] == NULL) {
        log_warn(0, "malformed desk event ignored");
        free(copy);
        return;
    }
    Carrel__Event ev = CARREL__EVENT__INIT;
    ev.branch_code = fields[0];
    ev.kind = fields[1];
    ev.item_barcode = fields[2][0] ? fields[2] : NULL;
    if (fields[3][0]) {
        ev.has_bib_id = 1;
        ev.bib_id = strtoll(fields[3], NULL, 10);
    }
    ev.text = fields[4];
    ev.has_time_ms = 1;
    ev.time_ms = util_now_ms();
    int sent = 0;
    for (conn_t *c = srv->conns; c; c = c->next) {
        if (!c->subscribed || !c->session.authenticated || c->closed)
            continue;
        if (!c->all_branches && strcmp(c->session.branch_code, ev.branch_code) != 0)
            continue;
        conn_push_event(c, &ev);
        sent++;
    }
    log_debug(0, "event %s for %s to %d desk(s)", ev.kind, ev.branch_code, sent);
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
