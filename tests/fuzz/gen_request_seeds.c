/*
 * gen_request_seeds: write the seed corpus of fuzz_request (see its header
 * for the input's layout) into the directory given, one file per case: a few
 * request types as a client sends them, with the session facts they meet.
 * Built with -Dfuzz=true; run as
 *   build-fuzz/tests/fuzz/gen_request_seeds tests/fuzz/corpus/request
 * The files are kept in the tree; run it again after a change to the schema.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "carrel.pb-c.h"
#include "frame.h"

#define HELLO_DONE 1u
#define LOGGED_IN  2u
#define ROLE(r)    ((unsigned)(r) << 2)
#define BRANCH(b)  ((unsigned)(b) << 5)
#define UUID       "0f8e4b1c-9a2d-4c3e-8f71-2b6d5e4a3c10"

static const char *dir;

/* Write facts and the frames of msgs[0..n) to dir/name, in pieces of `piece` bytes. */
static void seed(const char *name, unsigned facts, unsigned inflight, unsigned piece,
                 Carrel__Request *const *msgs, size_t n)
{
    struct buf out = BUF_INIT;
    uint8_t head[3] = {(uint8_t)facts, (uint8_t)inflight, (uint8_t)piece};
    if (buf_append(&out, head, sizeof(head)) != 0)
        abort();
    for (size_t i = 0; i < n; i++)
        if (frame_encode(&out, &msgs[i]->base) != 0)
            abort();
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(out.data, 1, out.len, f) != out.len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
    buf_free(&out);
}

static void seed1(const char *name, unsigned facts, Carrel__Request *m)
{
    seed(name, facts, 0, 0, &m, 1);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen_request_seeds DIR\n");
        return 2;
    }
    dir = argv[1];
    const unsigned clerk = HELLO_DONE | LOGGED_IN | ROLE(CARREL__ROLE__ROLE_CLERK) | BRANCH(1);
    const unsigned admin = HELLO_DONE | LOGGED_IN | ROLE(CARREL__ROLE__ROLE_ADMIN);
    const unsigned librarian =
        HELLO_DONE | LOGGED_IN | ROLE(CARREL__ROLE__ROLE_LIBRARIAN) | BRANCH(1);

    Carrel__Hello hello = CARREL__HELLO__INIT;
    hello.has_protocol_version = 1;
    hello.protocol_version = 1;
    hello.client_name = "carrel 0.1.0";
    Carrel__Request r_hello = CARREL__REQUEST__INIT;
    r_hello.has_id = 1;
    r_hello.id = 1;
    r_hello.body_case = CARREL__REQUEST__BODY_HELLO;
    r_hello.hello = &hello;

    Carrel__Login login = CARREL__LOGIN__INIT;
    login.workstation = "MAIN-DESK-1";
    login.username = "alice";
    login.password = "correct horse battery staple";
    login.has_want_session_token = 1;
    login.want_session_token = 1;
    Carrel__Request r_login = CARREL__REQUEST__INIT;
    r_login.has_id = 1;
    r_login.id = 2;
    r_login.body_case = CARREL__REQUEST__BODY_LOGIN;
    r_login.login = &login;

    Carrel__Request *hello_login[] = {&r_hello, &r_login};
    seed("hello", 0, 0, 0, hello_login, 1);
    seed("hello-login", 0, 0, 0, hello_login, 2);
    seed("hello-login-bytewise", 0, 0, 1, hello_login, 2);

    Carrel__Ping ping = CARREL__PING__INIT;
    ping.payload = "Zoë 📚\tline\nnext";
    Carrel__Request r_ping = CARREL__REQUEST__INIT;
    r_ping.has_id = 1;
    r_ping.id = 3;
    r_ping.body_case = CARREL__REQUEST__BODY_PING;
    r_ping.ping = &ping;
    seed1("ping-before-hello", 0, &r_ping);
    seed1("ping", HELLO_DONE, &r_ping);
    ping.payload = "escape \x1b[2J";
    seed1("ping-escape", HELLO_DONE, &r_ping);
    ping.payload = "ok";

    Carrel__Checkout co = CARREL__CHECKOUT__INIT;
    co.card = "21234000012345";
    co.barcode = "31234000067890";
    Carrel__Request r_co = CARREL__REQUEST__INIT;
    r_co.has_id = 1;
    r_co.id = 4;
    r_co.request_key = UUID;
    r_co.body_case = CARREL__REQUEST__BODY_CHECKOUT;
    r_co.checkout = &co;
    seed1("checkout", clerk, &r_co);
    seed1("checkout-not-logged-in", HELLO_DONE, &r_co);
    seed("checkout-inflight", clerk, 64, 0, (Carrel__Request *[]){&r_co}, 1);

    /* A replay from a stored event id, and one from an id far past any. */
    Carrel__Subscribe sub = CARREL__SUBSCRIBE__INIT;
    sub.has_since_event_id = 1;
    sub.since_event_id = 41;
    Carrel__Request r_sub = CARREL__REQUEST__INIT;
    r_sub.has_id = 1;
    r_sub.id = 5;
    r_sub.body_case = CARREL__REQUEST__BODY_SUBSCRIBE;
    r_sub.subscribe = &sub;
    seed1("subscribe-since", clerk, &r_sub);
    sub.since_event_id = INT64_MAX;
    seed1("subscribe-since-max", clerk, &r_sub);
    r_co.request_key = NULL;
    seed1("checkout-no-key", clerk, &r_co);
    r_co.request_key = "not-a-uuid";
    seed1("checkout-bad-key", clerk, &r_co);
    r_co.request_key = UUID;

    Carrel__CatalogSearch cs = CARREL__CATALOG_SEARCH__INIT;
    cs.query = "moby dick";
    cs.branch_code = "MAIN";
    cs.has_limit = 1;
    cs.limit = 20;
    Carrel__Request r_cs = CARREL__REQUEST__INIT;
    r_cs.has_id = 1;
    r_cs.id = 5;
    r_cs.body_case = CARREL__REQUEST__BODY_CATALOG_SEARCH;
    r_cs.catalog_search = &cs;
    Carrel__Request *pipelined[] = {&r_ping, &r_cs, &r_co};
    seed("pipelined-in-pieces", clerk, 3, 7, pipelined, 3);

    char *branches[] = {"MAIN", "EAST"};
    Carrel__StaffAdd sa = CARREL__STAFF_ADD__INIT;
    sa.username = "bob";
    sa.display_name = "Bob Ng";
    sa.has_role = 1;
    sa.role = CARREL__ROLE__ROLE_LIBRARIAN;
    sa.branch_codes = branches;
    sa.n_branch_codes = 2;
    sa.password = "a long enough password";
    Carrel__Request r_sa = CARREL__REQUEST__INIT;
    r_sa.has_id = 1;
    r_sa.id = 6;
    r_sa.request_key = UUID;
    r_sa.body_case = CARREL__REQUEST__BODY_STAFF_ADD;
    r_sa.staff_add = &sa;
    seed1("staff-add-admin", admin, &r_sa);
    seed1("staff-add-clerk", clerk, &r_sa);

    Carrel__ItemImportRow rows[2];
    Carrel__ItemImportRow *prows[2] = {&rows[0], &rows[1]};
    for (int i = 0; i < 2; i++) {
        carrel__item_import_row__init(&rows[i]);
        rows[i].has_line = 1;
        rows[i].line = i + 2;
        rows[i].bib = "CARREL-0000abcd";
        rows[i].barcode = i ? "31234000067891" : "31234000067890";
        rows[i].call_number = "FIC MEL";
        rows[i].price = "24.95";
    }
    Carrel__ItemImportBatch ib = CARREL__ITEM_IMPORT_BATCH__INIT;
    ib.rows = prows;
    ib.n_rows = 2;
    ib.source = "items.csv";
    Carrel__Request r_ib = CARREL__REQUEST__INIT;
    r_ib.has_id = 1;
    r_ib.id = 7;
    r_ib.body_case = CARREL__REQUEST__BODY_ITEM_IMPORT_BATCH;
    r_ib.item_import_batch = &ib;
    seed1("item-import", admin, &r_ib);
    rows[1].location = "Stacks\x85"; /* a C1 control, NEL */
    seed1("item-import-c1", admin, &r_ib);

    Carrel__Patron pa = CARREL__PATRON__INIT;
    pa.card = "21234000012345";
    pa.first_name = "Ada";
    pa.last_name = "Lovelace";
    Carrel__PatronSave ps = CARREL__PATRON_SAVE__INIT;
    ps.patron = &pa;
    Carrel__Request r_ps = CARREL__REQUEST__INIT;
    r_ps.has_id = 1;
    r_ps.id = 8;
    r_ps.body_case = CARREL__REQUEST__BODY_PATRON_SAVE;
    r_ps.patron_save = &ps;
    seed1("patron-save", clerk, &r_ps);

    Carrel__HoldPlace hp = CARREL__HOLD_PLACE__INIT;
    hp.card = "21234000012345";
    hp.has_bib_id = 1;
    hp.bib_id = 42;
    hp.pickup_branch = "EAST";
    Carrel__Request r_hp = CARREL__REQUEST__INIT;
    r_hp.has_id = 1;
    r_hp.id = 9;
    r_hp.request_key = UUID;
    r_hp.body_case = CARREL__REQUEST__BODY_HOLD_PLACE;
    r_hp.hold_place = &hp;
    seed1("hold-place", clerk, &r_hp);

    Carrel__RoomBook rb = CARREL__ROOM_BOOK__INIT; /* a recurring booking */
    rb.has_room_id = 1;
    rb.room_id = 3;
    rb.start = "2026-12-08 14:00";
    rb.end = "2026-12-08 15:30";
    rb.group_name = "Friends of the Library";
    rb.group_contact = "friends@example.org";
    rb.repeat = "weekly";
    rb.until = "2027-02-23";
    Carrel__Request r_rb = CARREL__REQUEST__INIT;
    r_rb.has_id = 1;
    r_rb.id = 11;
    r_rb.request_key = UUID;
    r_rb.body_case = CARREL__REQUEST__BODY_ROOM_BOOK;
    r_rb.room_book = &rb;
    seed1("room-book", clerk, &r_rb);

    Carrel__Shift sh = CARREL__SHIFT__INIT; /* strings one message down */
    sh.username = "clara";
    sh.branch_code = "DWN";
    sh.desk_code = "circ";
    sh.start = "2026-12-08 10:00";
    sh.end = "2026-12-08 14:00";
    sh.note = "covers the story time";
    Carrel__ShiftSave ss = CARREL__SHIFT_SAVE__INIT;
    ss.shift = &sh;
    Carrel__Request r_ss = CARREL__REQUEST__INIT;
    r_ss.has_id = 1;
    r_ss.id = 12;
    r_ss.request_key = UUID;
    r_ss.body_case = CARREL__REQUEST__BODY_SHIFT_SAVE;
    r_ss.shift_save = &ss;
    seed1("shift-save", admin, &r_ss);

    Carrel__Inquiry iq = CARREL__INQUIRY__INIT; /* a tally, keyed */
    iq.kind = "reference";
    iq.has_read_level = 1;
    iq.read_level = 2;
    iq.channel = "phone";
    iq.at = "2026-12-08 10:15";
    iq.question = "Where are the tax forms?";
    Carrel__InquiryAdd ia = CARREL__INQUIRY_ADD__INIT;
    ia.inquiry = &iq;
    Carrel__Request r_ia = CARREL__REQUEST__INIT;
    r_ia.has_id = 1;
    r_ia.id = 13;
    r_ia.request_key = UUID;
    r_ia.body_case = CARREL__REQUEST__BODY_INQUIRY_ADD;
    r_ia.inquiry_add = &ia;
    seed1("inquiry-add", clerk, &r_ia);

    Carrel__CountImport ci = CARREL__COUNT_IMPORT__INIT; /* a counter's CSV export */
    ci.kind = "gate";
    ci.counter = "main";
    ci.has_period_minutes = 1;
    ci.period_minutes = 15;
    ci.csv = "Date,Time,In,Out\n12/01/2026,09:00,4,3\n12/01/2026,09:15:00,6,5\n";
    Carrel__Request r_ci = CARREL__REQUEST__INIT;
    r_ci.has_id = 1;
    r_ci.id = 14;
    r_ci.body_case = CARREL__REQUEST__BODY_COUNT_IMPORT;
    r_ci.count_import = &ci;
    seed1("count-import", clerk, &r_ci);

    Carrel__Ticket tk = CARREL__TICKET__INIT; /* strings one message down, a request key */
    tk.queue = "ref-dwn";
    tk.subject = "Census records 1901";
    tk.question = "Where are the 1901 census records?\nOn microfilm?";
    tk.contact_email = "ann@example.org";
    tk.reply_channel = "email";
    tk.has_inquiry_id = 1;
    tk.inquiry_id = 812;
    Carrel__TicketOpen to = CARREL__TICKET_OPEN__INIT;
    to.ticket = &tk;
    Carrel__Request r_to = CARREL__REQUEST__INIT;
    r_to.has_id = 1;
    r_to.id = 15;
    r_to.request_key = UUID;
    r_to.body_case = CARREL__REQUEST__BODY_TICKET_OPEN;
    r_to.ticket_open = &to;
    seed1("ticket-open", clerk, &r_to);

    Carrel__TicketChange tc = CARREL__TICKET_CHANGE__INIT;
    tc.has_id = 1;
    tc.id = 17;
    tc.action = "transfer";
    tc.to_queue = "ill";
    tc.note = "needs a loan from another library";
    Carrel__Request r_tc = CARREL__REQUEST__INIT;
    r_tc.has_id = 1;
    r_tc.id = 16;
    r_tc.request_key = UUID;
    r_tc.body_case = CARREL__REQUEST__BODY_TICKET_CHANGE;
    r_tc.ticket_change = &tc;
    seed1("ticket-change", clerk, &r_tc);

    Carrel__WeedingDecide wd = CARREL__WEEDING_DECIDE__INIT; /* keyed, a librarian's scope */
    wd.barcode = "31234000012345";
    wd.decision = "transfer";
    wd.transfer_to = "PRK";
    wd.note = "in demand at Park";
    Carrel__Request r_wd = CARREL__REQUEST__INIT;
    r_wd.has_id = 1;
    r_wd.id = 17;
    r_wd.request_key = UUID;
    r_wd.body_case = CARREL__REQUEST__BODY_WEEDING_DECIDE;
    r_wd.weeding_decide = &wd;
    seed1("weeding-decide", librarian, &r_wd);

    Carrel__WeedingList wl = CARREL__WEEDING_LIST__INIT; /* a paging key, percent-encoded */
    wl.branch_code = "DWN";
    wl.collection = "nf_600";
    wl.after = "0641.5%01SMI%0131234000012345";
    wl.has_limit = 1;
    wl.limit = 500;
    Carrel__Request r_wl = CARREL__REQUEST__INIT;
    r_wl.has_id = 1;
    r_wl.id = 18;
    r_wl.body_case = CARREL__REQUEST__BODY_WEEDING_LIST;
    r_wl.weeding_list = &wl;
    seed1("weeding-list", clerk, &r_wl);

    Carrel__DisplayItemAdd da = CARREL__DISPLAY_ITEM_ADD__INIT; /* keyed scan onto a display */
    da.has_display_id = 1;
    da.display_id = 4;
    da.barcode = "31234000012345";
    Carrel__Request r_da = CARREL__REQUEST__INIT;
    r_da.has_id = 1;
    r_da.id = 19;
    r_da.request_key = UUID;
    r_da.body_case = CARREL__REQUEST__BODY_DISPLAY_ITEM_ADD;
    r_da.display_item_add = &da;
    seed1("display-scan", clerk, &r_da);

    Carrel__OfflineReplay orp = CARREL__OFFLINE_REPLAY__INIT; /* keyed journal entry */
    orp.op = "checkout";
    orp.card = "21234000012345";
    orp.barcode = "31234000012345";
    orp.has_at_ms = orp.has_workstation_ms = orp.has_offset_ms = 1;
    orp.at_ms = 1796554800000;
    orp.workstation_ms = 1796554798000;
    orp.offset_ms = 2000;
    orp.due = "2026-12-28";
    orp.clerk = "clara";
    Carrel__Request r_orp = CARREL__REQUEST__INIT;
    r_orp.has_id = 1;
    r_orp.id = 20;
    r_orp.request_key = UUID;
    r_orp.body_case = CARREL__REQUEST__BODY_OFFLINE_REPLAY;
    r_orp.offline_replay = &orp;
    seed1("offline-replay", clerk, &r_orp);

    Carrel__SipLogin sl = CARREL__SIP_LOGIN__INIT; /* a kiosk's SIP2 login, with options */
    sl.username = "kiosk-dwn";
    sl.workstation = "kiosk-dwn-1";
    sl.hide_fields = "AV,BK";
    sl.has_always_send_ct = sl.has_pin_required = 1;
    sl.always_send_ct = 1;
    sl.pin_required = 0;
    Carrel__SipLoginSave sls = CARREL__SIP_LOGIN_SAVE__INIT;
    sls.login = &sl;
    Carrel__Request r_sls = CARREL__REQUEST__INIT;
    r_sls.has_id = 1;
    r_sls.id = 21;
    r_sls.body_case = CARREL__REQUEST__BODY_SIP_LOGIN_SAVE;
    r_sls.sip_login_save = &sls;
    seed1("sip-login-save", admin, &r_sls);

    Carrel__PatronPinSet pp = CARREL__PATRON_PIN_SET__INIT; /* a patron's self-check PIN */
    pp.card = "21234000012345";
    pp.pin = "4821";
    Carrel__Request r_pp = CARREL__REQUEST__INIT;
    r_pp.has_id = 1;
    r_pp.id = 22;
    r_pp.body_case = CARREL__REQUEST__BODY_PATRON_PIN_SET;
    r_pp.patron_pin_set = &pp;
    seed1("patron-pin-set", clerk, &r_pp);

    Carrel__WorkstationRevoke wr = CARREL__WORKSTATION_REVOKE__INIT; /* a stolen laptop */
    wr.name = "dwn-desk-01";
    wr.reason = "laptop stolen from the branch";
    Carrel__Request r_wr = CARREL__REQUEST__INIT;
    r_wr.has_id = 1;
    r_wr.id = 23;
    r_wr.request_key = "8c1a53e5-4b0b-4d1e-9b9e-0f3c0d1f2a33";
    r_wr.body_case = CARREL__REQUEST__BODY_WORKSTATION_REVOKE;
    r_wr.workstation_revoke = &wr;
    seed1("workstation-revoke", admin, &r_wr);

    Carrel__Reload rl = CARREL__RELOAD__INIT; /* the daemon's settings read again */
    Carrel__Request r_rl = CARREL__REQUEST__INIT;
    r_rl.has_id = 1;
    r_rl.id = 24;
    r_rl.body_case = CARREL__REQUEST__BODY_RELOAD;
    r_rl.reload = &rl;
    seed1("reload", admin, &r_rl);
    seed1("reload-clerk", clerk, &r_rl);

    Carrel__ServerStatus st = CARREL__SERVER_STATUS__INIT; /* the metrics, for a person */
    Carrel__Request r_st = CARREL__REQUEST__INIT;
    r_st.has_id = 1;
    r_st.id = 25;
    r_st.body_case = CARREL__REQUEST__BODY_SERVER_STATUS;
    r_st.server_status = &st;
    seed1("server-status", admin, &r_st);

    Carrel__Request r_none = CARREL__REQUEST__INIT; /* no body: unknown_request */
    r_none.has_id = 1;
    r_none.id = 10;
    seed1("no-body", clerk, &r_none);
    r_ping.id = 0;
    seed1("id-zero", HELLO_DONE, &r_ping);
    return 0;
}
