/*
 * carrel-bench: load generator for carreld. Opens N TLS connections on one
 * libuv loop (the same channel code as the client), logs each one in, then
 * keeps `depth` requests in flight per connection for the given duration and
 * reports throughput and latency percentiles.
 *
 *   carrel-bench -c PROFILE [-n CONNECTIONS] [-d SECONDS] [-w WARMUP] [-D DEPTH]
 *                [-L USER@WORKSTATION[,...]] [-k DESK[,...]] [-T FILTER]
 *                [-q QUERY_FILE] [-B BRANCH] [-l LIMIT] [-m MIN_OPS]
 *                [-P SIP_PORT -U SIP_USER[,...]] [-C PG_DATADIR|PID] [-R RATE]
 *                [-S | -K KEYS] WORKLOAD
 *
 * With -m, the measured run goes on past its seconds until MIN_OPS ops are
 * done (at most ten times as long): slow reports still get a p50 and p99.
 *
 * Every connection logs in as the profile's user at its workstation, or with
 * -L as the list's entry i % count (connection i), with the profile's
 * password. A Login answered UNAVAILABLE "try later" (retry_after_ms, or
 * password_queue/overloaded without it) is sent again after retry_after_ms
 * or an exponential backoff with jitter, and a connection the daemon drops
 * before it has logged in (its handshake or login deadline) is made again,
 * as a desk would (BENCH_LOGIN_TRIES); the line counts both: login_retries,
 * reconnects. With -S only desk 0 logs in with the password, asking for a
 * session token, and the others, connected once it has one, log in with that
 * token (no Argon2: a thousand desks in seconds), all in one session of one
 * user at one workstation. -K KEYS gives each desk a session of its own: KEYS
 * has lines "USER WORKSTATION TOKEN" (session tokens the caller stored, e.g.
 * scripts/bench openloop, one per workstation), and desk i logs in with line
 * i % count's token: no Argon2 either, and the daemon's per-session and
 * per-workstation state (request keys, desk rows, event subscriptions) is
 * that of as many desks as lines.
 *
 * -C: the line adds pg_cpu_ms (PostgreSQL's CPU over the measured window:
 * every child of the postmaster, from /proc; tests/bench/pgcpu.h) and
 * pg_cpu_ms_per_op, and for circ and heavy pg_cpu_ms_per_pair (a checkout
 * and its checkin). PG_DATADIR is the cluster's data directory (the pid is
 * the first line of its postmaster.pid), or give the pid itself.
 *
 * -R RATE: the open loop. Instead of each desk sending its next request as
 * soon as the last is answered, desks scan at RATE operations a second over
 * all of them, each at its share with exponential (Poisson) gaps. A scan's
 * latency counts from when it was due: a desk still waiting for its
 * previous answer sends the next scan when that answer comes, its clock
 * already running (no coordinated omission); such a scan is late. The line
 * adds rate and late. One request at a time (-D 1). libuv's timers count
 * whole milliseconds: a scan goes out up to a millisecond (more when the
 * loop is busy) after it is due, and that counts in its latency too; so
 * that a reader can tell the bench's lag from the daemon's, the line adds
 * send_lag_p50_ms and send_lag_p99_ms: for the scans whose desk was idle
 * when they fell due, the time from due to sent (timer slack and the
 * bench's loop busy with other desks). When the window ends, the scans due
 * in it and not yet answered (in flight, or waiting behind the one in
 * flight) count in the percentiles with their latency so far (end - due, a
 * lower bound), so a daemon that stalls at the end shows in p99 and max;
 * unanswered says how many, and ops (and ops_per_s, pg_cpu_ms_per_op) count
 * only the answered.
 *
 * login: the login storm. N desks connect and log in at once with the
 * password (asking for a session token), retrying as above; once all are in,
 * all disconnect, then connect and log in again with their tokens. Two
 * lines, round=password and round=token: all_logged_in_s (from the first
 * connect to the last LoginReply), each desk's time from its connect to its
 * LoginReply (login_p50_ms, login_p99_ms, login_max_ms), retries and
 * reconnects. -d and -w do not apply.
 *
 * Workloads: ping (no database), branches (one prepared statement per request),
 * search (catalog full-text search for one or two words of tests/bench/words.h,
 * or with -q the queries of a file in turn, one a line, each connection
 * starting elsewhere; a line "isbn:N" searches by ISBN; the line adds the
 * mean total of the answers and how many were total_capped),
 * circ (desk i checks out and in its own items BENCH-I-i-00..09 for patron
 * BENCH-P-i), heavy (the same for patron BENCH-HEAVY, who holds 500 loans),
 * renewall (renew all of BENCH-HEAVY's loans), holds (desk i runs a hold's
 * whole life on title BIB_BASE+i with its one copy BENCH-Q-i: lend it to
 * BENCH-A-i, place a hold for BENCH-B-i, check it in (captured for the hold
 * shelf), lend it to BENCH-B-i (fills the hold), check it in), stats (a
 * StatsQuery per request, from the -s specs in turn: -s
 * MEASURE,FROM,TO,TIME,BY[+BY...], e.g. -s checkouts,2026-11-01,2026-11-30,none,branch;
 * the line adds the last answer's rows and served_by), roombook (desk i books
 * one-hour slots, one after another, in room -r[i % rooms] from day -o on,
 * keyed, with override and a card ROOM-P-*: no two desks aim at the same
 * slot), roomrace (the contended variant: every desk walks the same slots of
 * the first three -r rooms, so one desk makes each booking and the others are
 * refused slot_taken; the line counts made and refused), roomfree (RoomFree of
 * every branch for 90 days from -o, staff rooms included; the line adds the
 * days), gaps (ScheduleGaps of every branch from -o for 91 days; the line adds
 * the gaps), tally (InquiryAdd, keyed, a fresh key per tally: the tallies of
 * tally.h at desk -k[i % count] of the connection's session branch; the line
 * adds the last answer's tallies today at the branch), ticketlist
 * (TicketList: -T default (every live ticket of the queues the user works),
 * mine, overdue or flagged; the line adds the tickets of the last answer),
 * ticketshow (TicketShow of the -r ticket ids in turn, each connection
 * starting elsewhere; the line adds the messages of the last answer),
 * weedlist (the whole weeding report of branch -B, default the session's:
 * WeedingList pages of -l (default 500) candidates, each asked with the last
 * shelf_key of the one before, until no more; one op is the whole report,
 * its latency from the first page asked to the last answered; the line adds
 * the pages and candidates of the last report and the pages' own p50/p99),
 * weedsummary (WeedingSummary
 * of branch -B; the line adds the collections of the last answer),
 * displayreport (DisplayReport of the -r displays in turn; the line adds the
 * copies and control copies of the last answer),
 * sip (self-check kiosks: kiosk i opens its own plain-TCP SIP2 connection to
 * port -P of the profile's host, logs in (93) as -U's entry i % count with
 * the profile's password, then does what circ does: checks out (11)
 * BENCH-I-i-00..09 for BENCH-P-i and back in (09), one message at a time;
 * an answer with ok 0 or a bad checksum counts as an error; a refused 93 is
 * sent again with a backoff, as a kiosk does, and counted: login_retries).
 * circ and sip add the checkouts alone: checkouts, checkouts_per_s,
 * checkout_p50_ms, checkout_p99_ms (scripts/bench sip compares the two).
 * Circulation workloads use depth 1: a desk scans one item at a time.
 * Output: one line per run, "key=value" pairs, easy to grep.
 */
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "carrel.pb-c.h"
#include "channel.h"
#include "lat.h"
#include "pgcpu.h"
#include "profile.h"
#include "tally.h"
#include "util.h"
#include "words.h"

typedef struct bench bench_t;

/* The stats workload's questions (-s). */
#define STATS_MAX_SPECS 8
#define STATS_MAX_BY    4
typedef struct stats_spec {
    char *measure, *from, *to, *time;
    char *by[STATS_MAX_BY];
    size_t nby;
} stats_spec_t;

/* Connecting and logging in may take long on a busy machine (256 Argon2
 * checks on two shared cores took over three minutes), but not forever. */
#define BENCH_SETUP_S 600
/* A Login refused "try later" (UNAVAILABLE password_queue or overloaded) is
 * sent again after the answer's retry_after_ms, or without one after an
 * exponential backoff with jitter (BENCH_BACKOFF_MS doubling up to
 * BENCH_BACKOFF_MAX_MS), as a desk does; a connection dropped before it
 * logged in (the daemon's login or handshake deadline) connects again after
 * the same backoff. At most this many times each. */
#define BENCH_LOGIN_TRIES    60
#define BENCH_BACKOFF_MS     250
#define BENCH_BACKOFF_MAX_MS 8000

/* Send times by id; ample slots so out-of-order answers never collide in practice. */
#define BENCH_SLOTS(b) ((uint64_t)(b)->depth * 64)

typedef struct bench_conn {
    channel_t ch;
    bench_t *b;
    int index;
    /* 0 connecting, 1 hello sent, 2 login sent, 3 running, 4 (sip) 93 refused: again at
     * sip_retry_at, 5 login refused "try later": again when timer fires, 6 dropped
     * before it was logged in: connects again when timer fires */
    int phase;
    uv_timer_t timer;     /* login retries, reconnects, the open loop's scans */
    uint64_t setup_ns;    /* login workload: when this desk's round began (its connect) */
    int login_tries;      /* Logins sent since the connection opened */
    int reconnects;       /* connections dropped before logging in, this round */
    char *token;          /* login workload: the session token of the first round */
    uint64_t due_ns;      /* open loop: when the next scan is due (its latency counts from then) */
    uint64_t sent_due;    /* ... of the scan being sent (0: not the open loop) */
    uint64_t answered_ns; /* open loop: when the last answer came */
    uint64_t rng;         /* open loop: the desk's own random gaps */
    bool open;            /* its channel is connecting or connected (not closed) */
    uint64_t next_id;
    uint64_t *sent_at; /* indexed by id % BENCH_SLOTS */
    int inflight;
    int circ_item;  /* circulation workloads: the item in hand (0-9) */
    bool circ_out;  /* ... and whether it is checked out */
    int hold_step;  /* holds workload: the step sent last (HOLD_*) */
    int stats_next; /* stats workload: the spec to send next */
    /* room workloads: the slot this desk books next; tally, ticketshow,
     * search -q: the tally, ticket or query next */
    int64_t seq;
    /* weedlist: when the report began, its pages and candidates so far,
     * and the shelf_key to ask after (NULL: the first page) */
    uint64_t report_start;
    int report_pages;
    size_t report_rows;
    char *after;
    /* sip: the kiosk's own TCP connection (no channel: SIP2 is plain lines),
     * what it has read of the next answer, and when its message went out */
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    char *sip_in;
    size_t sip_len;
    uint64_t sip_sent_at;
    uint64_t sip_messages;
    bool sip_checkout;     /* the message in flight is a checkout */
    int sip_logins;        /* 93s sent */
    uint64_t sip_retry_at; /* phase 4: when to send the next 93 */
} bench_conn_t;

/* sip: an answer longer than this (the gateway's limit) is an error. */
#define SIP_LINE_MAX 4096
/* sip: a refused 93 is sent again (phase 4), as a kiosk would, this many
 * times at most: the gateway's login throttle counts logins still being
 * checked, so many kiosks logging in at once from one address are refused
 * until the first ones are through. */
#define SIP_LOGIN_TRIES 30

/* The room workloads' rooms (-r) and slots: a slot is a one-hour booking at
 * 06:00, 08:00 .. 22:00 local (two hours apart, so no set-up or clean-up of
 * one booking meets the next; 02:00 never, the hour DST may skip). */
#define BENCH_MAX_IDS   256 /* -r: rooms or tickets */
#define BENCH_MAX_LIST  64  /* -L logins, -k desks */
#define ROOM_DAY_SLOTS  9
#define ROOM_RACE_ROOMS 3
#define ROOM_BAND_DAYS  2000 /* desks sharing a room book days this far apart */

/* The holds workload's steps, each measured apart as well. */
enum { HOLD_LEND, HOLD_PLACE, HOLD_CAPTURE, HOLD_FILL, HOLD_RETURN, HOLD_STEPS };
static const char *const hold_step_names[HOLD_STEPS] = {"lend", "place", "capture", "fill",
                                                        "return"};

struct bench {
    uv_loop_t *loop;
    SSL_CTX *tls;
    profile_t prof;
    char *password;
    const char *workload;
    int nconns;
    int depth;
    double duration_s, warmup_s;
    size_t min_ops; /* -m */
    bench_conn_t *conns;
    int ready;
    int closed;
    bool measuring, stopping;
    uint64_t t_start, t_end;
    uint64_t t_launch; /* connections opened: setup gives up after BENCH_SETUP_S */
    lat_t all;
    lat_t steps[HOLD_STEPS];
    int64_t bib_base; /* holds: the first desk's title */
    stats_spec_t specs[STATS_MAX_SPECS];
    int nspecs;
    size_t stats_rows;  /* rows of the last StatsReply */
    char served_by[16]; /* ... and who answered it */
    /* room workloads: the rooms (-r), the first day (-o, YYYY-MM-DD), and
     * the bookings made and refused slot_taken; ticketshow: the tickets (-r) */
    int64_t ids[BENCH_MAX_IDS];
    int nids;
    const char *first_day;
    uint64_t made, refused;
    /* -L: who logs in where (user@workstation, split in place); -k: desks */
    char *login_users[BENCH_MAX_LIST], *login_workstations[BENCH_MAX_LIST];
    int nlogins;
    char *desks[BENCH_MAX_LIST];
    int ndesks;
    const char *ticket_filter; /* -T */
    int64_t today_branch;      /* tally: the last answer's today_branch */
    size_t answer_items;       /* ticketlist, ticketshow: the last answer's tickets, messages */
    /* search -q: the queries; their answers' totals and how many were capped */
    char **queries;
    size_t nqueries;
    uint64_t answers, total_sum, capped;
    /* weedlist, weedsummary: the branch (-B) and page size (-l); the last
     * report's pages and candidates, or the summary's collections */
    const char *branch;
    int page_limit;
    int report_pages;
    size_t report_rows;
    lat_t pages;                     /* weedlist: each page's latency */
    lat_t checkouts;                 /* circ, sip: the checkouts alone */
    int sip_port;                    /* -P */
    char *sip_users[BENCH_MAX_LIST]; /* -U */
    int nsip_users;
    uint64_t sip_login_retries;
    uint64_t errors;
    uv_timer_t timer;
    int failed;
    struct sockaddr_in addr; /* the daemon's */
    uint64_t login_retries;  /* Logins sent again after a "try later" */
    uint64_t reconnects;     /* connections dropped before logging in and made again */
    /* -S: desk 0 logs in with the password and asks for a session token; the
     * other desks connect once it has one and log in with it (no Argon2) */
    bool share_token;
    char *shared_token;
    /* -C: PostgreSQL's CPU over the measured window (pgcpu.h), in ms; -1 unknown */
    pgcpu_t cpu;
    double cpu_ms;
    /* -R: the open loop's rate (ops/s over all desks), the scans sent late
     * because the desk was still waiting for its previous answer, the scans
     * due in the window but not answered by its end (their latencies, up to
     * the end, are in all: see open_loop_censor), and each idle desk's send
     * lag (the bench's own lateness: see open_loop_pump) */
    double rate;
    uint64_t late;
    uint64_t unanswered, unanswered_checkouts;
    lat_t send_lag;
    /* -K: each desk's own session, "USER WORKSTATION TOKEN" lines (desk i
     * logs in with line i % count's token: no Argon2, no shared session) */
    char **key_users, **key_workstations, **key_tokens;
    size_t nkeys;
    /* login workload: the round (1 password, 2 session token), its start,
     * each desk's time from its connect to its LoginReply, and the rounds' lines */
    int round;
    uint64_t round_start;
    lat_t logins;
    uint64_t last_login_ns; /* the round's last LoginReply */
    char round_lines[2][512];
};

static void bench_send(bench_conn_t *c);
static void sip_send_next(bench_conn_t *c);
static void bench_request(bench_conn_t *c, Carrel__Request *req);
static const channel_ops_t bench_ops;
static void bench_connect(bench_conn_t *c);

static bool bench_is(const bench_t *b, const char *w)
{
    return strcmp(b->workload, w) == 0;
}

static void bench_record(bench_t *b, const bench_conn_t *c, uint64_t ns)
{
    if (!b->measuring)
        return;
    lat_add(&b->all, ns);
    /* circ: circ_out is true once a checkout has been sent (and not yet its checkin). */
    if ((bench_is(b, "circ") && c->circ_out) || (bench_is(b, "sip") && c->sip_checkout))
        lat_add(&b->checkouts, ns);
    if (strcmp(b->workload, "holds") == 0)
        lat_add(&b->steps[c->hold_step], ns);
}

/* The holds workload: the next step of desk c's cycle (see the top). */
static void bench_send_hold_step(bench_conn_t *c, Carrel__Request *req)
{
    char borrower[32], holder[32], copy[32], key[37];
    snprintf(borrower, sizeof(borrower), "BENCH-A-%05d", c->index);
    snprintf(holder, sizeof(holder), "BENCH-B-%05d", c->index);
    snprintf(copy, sizeof(copy), "BENCH-Q-%05d", c->index);
    if (util_uuid7(key) != 0)
        abort();
    req->request_key = key;
    c->hold_step = (c->hold_step + 1) % HOLD_STEPS;
    Carrel__Checkout co = CARREL__CHECKOUT__INIT;
    Carrel__Checkin ci = CARREL__CHECKIN__INIT;
    Carrel__HoldPlace hp = CARREL__HOLD_PLACE__INIT;
    switch (c->hold_step) {
    case HOLD_LEND:
    case HOLD_FILL:
        co.card = c->hold_step == HOLD_LEND ? borrower : holder;
        co.barcode = copy;
        req->body_case = CARREL__REQUEST__BODY_CHECKOUT;
        req->checkout = &co;
        break;
    case HOLD_PLACE:
        hp.card = holder;
        hp.has_bib_id = 1;
        hp.bib_id = c->b->bib_base + c->index;
        hp.pickup_branch = "DWN";
        req->body_case = CARREL__REQUEST__BODY_HOLD_PLACE;
        req->hold_place = &hp;
        break;
    default: /* HOLD_CAPTURE, HOLD_RETURN */
        ci.barcode = copy;
        req->body_case = CARREL__REQUEST__BODY_CHECKIN;
        req->checkin = &ci;
        break;
    }
    bench_request(c, req);
}

/* Parse "MEASURE,FROM,TO,TIME,BY[+BY...]" (BY may be empty) in place. */
static int stats_spec_parse(stats_spec_t *sp, char *text)
{
    char *f[5];
    for (int i = 0; i < 5; i++) {
        f[i] = strsep(&text, ",");
        if (f[i] == NULL)
            return -1;
    }
    if (text != NULL || f[0][0] == '\0')
        return -1;
    sp->measure = f[0];
    sp->from = f[1];
    sp->to = f[2];
    sp->time = f[3];
    for (char *by; (by = strsep(&f[4], "+")) != NULL;) {
        if (by[0] == '\0')
            continue;
        if (sp->nby == STATS_MAX_BY)
            return -1;
        sp->by[sp->nby++] = by;
    }
    return 0;
}

static void bench_send_stats(bench_conn_t *c, Carrel__Request *req)
{
    stats_spec_t *sp = &c->b->specs[c->stats_next];
    c->stats_next = (c->stats_next + 1) % c->b->nspecs;
    Carrel__StatsQuery q = CARREL__STATS_QUERY__INIT;
    q.measure = sp->measure;
    q.from = sp->from;
    q.to = sp->to;
    q.time = sp->time;
    q.n_by = sp->nby;
    q.by = sp->by;
    req->body_case = CARREL__REQUEST__BODY_STATS_QUERY;
    req->stats_query = &q;
    bench_request(c, req);
}

/* "YYYY-MM-DD" plus n days, in out (11 bytes). Calendar arithmetic in UTC:
 * only the date matters. */
static int day_add(const char *day, int64_t n, char *out, size_t outlen)
{
    struct tm tm = {0};
    if (strptime(day, "%Y-%m-%d", &tm) == NULL)
        return -1;
    tm.tm_hour = 12;
    time_t t = timegm(&tm) + (time_t)n * 86400;
    if (gmtime_r(&t, &tm) == NULL)
        return -1;
    return strftime(out, outlen, "%Y-%m-%d", &tm) == 0 ? -1 : 0;
}

/* roombook / roomrace: book the desk's next slot (see the top). */
static void bench_send_room_book(bench_conn_t *c, Carrel__Request *req)
{
    bench_t *b = c->b;
    bool race = strcmp(b->workload, "roomrace") == 0;
    int nrooms = race && b->nids > ROOM_RACE_ROOMS ? ROOM_RACE_ROOMS : b->nids;
    int64_t seq = c->seq++;
    int64_t room, day_n;
    if (race) { /* every desk the same sequence: slot seq in the few rooms */
        room = b->ids[seq % nrooms];
        seq /= nrooms;
        day_n = seq / ROOM_DAY_SLOTS;
    } else { /* a room of its own, or a band of days of its own in a shared one */
        room = b->ids[c->index % nrooms];
        day_n = (int64_t)(c->index / nrooms) * ROOM_BAND_DAYS + seq / ROOM_DAY_SLOTS;
    }
    int hour = 6 + 2 * (int)(seq % ROOM_DAY_SLOTS);
    char day[16], start[32], end[32], card[32], key[37];
    if (day_add(b->first_day, day_n, day, sizeof(day)) != 0 || util_uuid7(key) != 0)
        abort();
    snprintf(start, sizeof(start), "%s %02d:00", day, hour);
    snprintf(end, sizeof(end), "%s %02d:00", day, hour + 1);
    snprintf(card, sizeof(card), "ROOM-P-%05d", c->index % 500);
    Carrel__RoomBook rb = CARREL__ROOM_BOOK__INIT;
    rb.has_room_id = 1;
    rb.room_id = room;
    rb.start = start;
    rb.end = end;
    rb.card = card;
    rb.purpose = "bench";
    rb.has_attendees = 1;
    rb.attendees = 1;
    /* Beyond days ahead and the patron's limits: the desk books day after day. */
    rb.has_override = 1;
    rb.override = 1;
    req->request_key = key;
    req->body_case = CARREL__REQUEST__BODY_ROOM_BOOK;
    req->room_book = &rb;
    bench_request(c, req);
}

static void bench_send_room_free(bench_conn_t *c, Carrel__Request *req)
{
    Carrel__RoomFree rf = CARREL__ROOM_FREE__INIT;
    rf.branch = "";
    rf.date = (char *)c->b->first_day;
    rf.has_days = 1;
    rf.days = 90;
    rf.has_staff = 1;
    rf.staff = 1;
    req->body_case = CARREL__REQUEST__BODY_ROOM_FREE;
    req->room_free = &rf;
    bench_request(c, req);
}

/* ScheduleGaps of a quarter: 91 days from -o (the request allows 92). */
static void bench_send_gaps(bench_conn_t *c, Carrel__Request *req)
{
    char to[16];
    if (day_add(c->b->first_day, 90, to, sizeof(to)) != 0)
        abort();
    Carrel__ScheduleGaps g = CARREL__SCHEDULE_GAPS__INIT;
    g.from = (char *)c->b->first_day;
    g.to = to;
    req->body_case = CARREL__REQUEST__BODY_SCHEDULE_GAPS;
    req->schedule_gaps = &g;
    bench_request(c, req);
}

/* tally: the desk's next tally, at the session's branch (the server fills
 * it in), at its -k desk. */
static void bench_send_tally(bench_conn_t *c, Carrel__Request *req)
{
    bench_t *b = c->b;
    const tally_shape_t *t = tally_shape(c->index, (uint64_t)c->seq++);
    char key[37];
    if (util_uuid7(key) != 0)
        abort();
    Carrel__Inquiry q = CARREL__INQUIRY__INIT;
    q.desk_code = b->ndesks ? b->desks[c->index % b->ndesks] : NULL;
    q.channel = (char *)t->channel;
    q.kind = (char *)t->kind;
    q.has_read_level = 1;
    q.read_level = t->read_level;
    Carrel__InquiryAdd add = CARREL__INQUIRY_ADD__INIT;
    add.inquiry = &q;
    req->request_key = key;
    req->body_case = CARREL__REQUEST__BODY_INQUIRY_ADD;
    req->inquiry_add = &add;
    bench_request(c, req);
}

static void bench_send_ticket_list(bench_conn_t *c, Carrel__Request *req)
{
    const char *f = c->b->ticket_filter;
    Carrel__TicketList tl = CARREL__TICKET_LIST__INIT;
    tl.has_mine = tl.mine = strcmp(f, "mine") == 0;
    tl.has_overdue = tl.overdue = strcmp(f, "overdue") == 0;
    tl.has_flagged = tl.flagged = strcmp(f, "flagged") == 0;
    req->body_case = CARREL__REQUEST__BODY_TICKET_LIST;
    req->ticket_list = &tl;
    bench_request(c, req);
}

static void bench_send_ticket_show(bench_conn_t *c, Carrel__Request *req)
{
    bench_t *b = c->b;
    Carrel__TicketShow ts = CARREL__TICKET_SHOW__INIT;
    ts.has_id = 1;
    ts.id = b->ids[(c->index * 37 + c->seq++) % b->nids];
    req->body_case = CARREL__REQUEST__BODY_TICKET_SHOW;
    req->ticket_show = &ts;
    bench_request(c, req);
}

/* search -q: the connection's next query of the file ("isbn:N": by ISBN). */
static void bench_send_query(bench_conn_t *c, Carrel__Request *req)
{
    bench_t *b = c->b;
    char *q = b->queries[((uint64_t)c->index * 37 + (uint64_t)c->seq++) % b->nqueries];
    Carrel__CatalogSearch s = CARREL__CATALOG_SEARCH__INIT;
    if (strncmp(q, "isbn:", 5) == 0)
        s.isbn = q + 5;
    else
        s.query = q;
    req->body_case = CARREL__REQUEST__BODY_CATALOG_SEARCH;
    req->catalog_search = &s;
    bench_request(c, req);
}

/* weedlist: the next page of the connection's report (the first when
 * c->after is NULL). */
static void bench_send_weeding_page(bench_conn_t *c, Carrel__Request *req)
{
    bench_t *b = c->b;
    if (c->after == NULL) {
        c->report_start = util_mono_ns();
        c->report_pages = 0;
        c->report_rows = 0;
    }
    Carrel__WeedingList wl = CARREL__WEEDING_LIST__INIT;
    wl.branch_code = (char *)b->branch;
    wl.after = c->after;
    wl.has_limit = 1;
    wl.limit = b->page_limit;
    req->body_case = CARREL__REQUEST__BODY_WEEDING_LIST;
    req->weeding_list = &wl;
    bench_request(c, req);
}

/* weedlist: a page answered. True when the report has more pages (the next
 * one is asked at once and the op is not over); the report's latency is
 * recorded when its last page arrives. */
static bool bench_weeding_page_done(bench_conn_t *c, const Carrel__Response *r, uint64_t sent,
                                    uint64_t now)
{
    bench_t *b = c->b;
    const Carrel__WeedingListReply *w =
        r->body_case == CARREL__RESPONSE__BODY_WEEDING ? r->weeding : NULL;
    free(c->after);
    c->after = NULL;
    if (w == NULL)
        return false; /* an error: counted; the next report starts over */
    c->report_pages++;
    c->report_rows += w->n_candidates;
    if (b->measuring)
        lat_add(&b->pages, now - sent);
    const char *key = w->n_candidates > 0 ? w->candidates[w->n_candidates - 1]->shelf_key : NULL;
    if (w->more && (key == NULL || key[0] == '\0')) {
        fprintf(stderr, "connection %d: a page with more but no shelf_key to go on from\n",
                c->index);
        b->errors++;
        return false;
    }
    if (w->more) {
        c->after = strdup(key);
        if (c->after == NULL)
            abort();
        return true;
    }
    if (b->measuring) {
        lat_add(&b->all, now - c->report_start);
        b->report_pages = c->report_pages;
        b->report_rows = c->report_rows;
    }
    return false;
}

static void bench_request(bench_conn_t *c, Carrel__Request *req)
{
    req->has_id = 1;
    req->id = ++c->next_id;
    /* The open loop counts a scan's latency from when it was due, not from
     * when a desk still waiting for its previous answer could send it. */
    c->sent_at[req->id % BENCH_SLOTS(c->b)] = c->sent_due ? c->sent_due : util_mono_ns();
    if (channel_send(&c->ch, &req->base) != 0) {
        fprintf(stderr, "connection %d: send failed\n", c->index);
        c->b->failed = 1;
        return;
    }
    c->inflight++;
}

static void bench_send(bench_conn_t *c)
{
    bench_t *b = c->b;
    Carrel__Request req = CARREL__REQUEST__INIT;
    if (bench_is(b, "sip")) {
        sip_send_next(c);
    } else if (strcmp(b->workload, "ping") == 0) {
        Carrel__Ping ping = CARREL__PING__INIT;
        ping.payload = "bench";
        req.body_case = CARREL__REQUEST__BODY_PING;
        req.ping = &ping;
        bench_request(c, &req);
    } else if (!strcmp(b->workload, "circ") || !strcmp(b->workload, "heavy")) {
        /* Check an item out, then back in, then the next item (see scripts/bench). */
        bool heavy = b->workload[0] == 'h';
        char card[32], item[32], key[37];
        if (heavy)
            snprintf(card, sizeof(card), "BENCH-HEAVY");
        else
            snprintf(card, sizeof(card), "BENCH-P-%05d", c->index);
        snprintf(item, sizeof(item), heavy ? "BENCH-H-%05d-%02d" : "BENCH-I-%05d-%02d", c->index,
                 c->circ_item);
        if (util_uuid7(key) != 0)
            abort();
        req.request_key = key;
        if (!c->circ_out) {
            Carrel__Checkout co = CARREL__CHECKOUT__INIT;
            co.card = card;
            co.barcode = item;
            req.body_case = CARREL__REQUEST__BODY_CHECKOUT;
            req.checkout = &co;
            bench_request(c, &req);
        } else {
            Carrel__Checkin ci = CARREL__CHECKIN__INIT;
            ci.barcode = item;
            req.body_case = CARREL__REQUEST__BODY_CHECKIN;
            req.checkin = &ci;
            bench_request(c, &req);
            c->circ_item = (c->circ_item + 1) % 10;
        }
        c->circ_out = !c->circ_out;
    } else if (strcmp(b->workload, "holds") == 0) {
        bench_send_hold_step(c, &req);
    } else if (strcmp(b->workload, "stats") == 0) {
        bench_send_stats(c, &req);
    } else if (bench_is(b, "roombook") || bench_is(b, "roomrace")) {
        bench_send_room_book(c, &req);
    } else if (bench_is(b, "roomfree")) {
        bench_send_room_free(c, &req);
    } else if (bench_is(b, "gaps")) {
        bench_send_gaps(c, &req);
    } else if (bench_is(b, "tally")) {
        bench_send_tally(c, &req);
    } else if (bench_is(b, "ticketlist")) {
        bench_send_ticket_list(c, &req);
    } else if (bench_is(b, "ticketshow")) {
        bench_send_ticket_show(c, &req);
    } else if (strcmp(b->workload, "renewall") == 0) {
        char key[37];
        if (util_uuid7(key) != 0)
            abort();
        req.request_key = key;
        Carrel__Renew rn = CARREL__RENEW__INIT;
        rn.card = "BENCH-HEAVY";
        req.body_case = CARREL__REQUEST__BODY_RENEW;
        req.renew = &rn;
        bench_request(c, &req);
    } else if (strcmp(b->workload, "search") == 0 && b->nqueries > 0) {
        bench_send_query(c, &req);
    } else if (bench_is(b, "weedlist")) {
        bench_send_weeding_page(c, &req);
    } else if (bench_is(b, "displayreport")) {
        Carrel__DisplayReport dr = CARREL__DISPLAY_REPORT__INIT;
        dr.has_id = 1;
        dr.id = b->ids[(c->index + c->seq++) % b->nids];
        req.body_case = CARREL__REQUEST__BODY_DISPLAY_REPORT;
        req.display_report = &dr;
        bench_request(c, &req);
    } else if (bench_is(b, "weedsummary")) {
        Carrel__WeedingSummary ws = CARREL__WEEDING_SUMMARY__INIT;
        ws.branch_code = (char *)b->branch;
        req.body_case = CARREL__REQUEST__BODY_WEEDING_SUMMARY;
        req.weeding_summary = &ws;
        bench_request(c, &req);
    } else if (strcmp(b->workload, "search") == 0) {
        /* One or two words of the generated catalog's vocabulary. */
        char query[64];
        unsigned r = (unsigned)rand();
        if (r % 2)
            snprintf(query, sizeof(query), "%s", bench_words[r % BENCH_NWORDS]);
        else
            snprintf(query, sizeof(query), "%s %s", bench_words[r % BENCH_NWORDS],
                     bench_words[(r / 7) % BENCH_NWORDS]);
        Carrel__CatalogSearch s = CARREL__CATALOG_SEARCH__INIT;
        s.query = query;
        req.body_case = CARREL__REQUEST__BODY_CATALOG_SEARCH;
        req.catalog_search = &s;
        bench_request(c, &req);
    } else {
        Carrel__BranchList bl = CARREL__BRANCH_LIST__INIT;
        req.body_case = CARREL__REQUEST__BODY_BRANCH_LIST;
        req.branch_list = &bl;
        bench_request(c, &req);
    }
}

static void bench_on_open(channel_t *ch)
{
    bench_conn_t *c = ch->data;
    Carrel__Request req = CARREL__REQUEST__INIT;
    Carrel__Hello hello = CARREL__HELLO__INIT;
    hello.has_protocol_version = 1;
    hello.protocol_version = CARREL__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT;
    hello.client_name = "carrel-bench";
    req.body_case = CARREL__REQUEST__BODY_HELLO;
    req.hello = &hello;
    c->phase = 1;
    bench_request(c, &req);
}

static bool bench_needs_login(const bench_t *b)
{
    return strcmp(b->workload, "ping") != 0;
}

static void bench_ready(bench_conn_t *c)
{
    c->phase = 3;
    bench_t *b = c->b;
    if (++b->ready == b->nconns)
        fprintf(stderr, "all %d connections ready\n", b->nconns);
    if (!b->share_token || c->index != 0 || b->nconns == 1)
        return;
    /* -S: the other desks log in with desk 0's token. */
    if (b->shared_token == NULL) {
        fprintf(stderr, "-S: no session token in the LoginReply\n");
        b->failed = 1;
        return;
    }
    uint64_t now = util_mono_ns();
    for (int i = 1; i < b->nconns; i++) {
        b->conns[i].setup_ns = now;
        bench_connect(&b->conns[i]);
    }
}

/* ---- logging in, again when told to try later (see BENCH_LOGIN_TRIES) ---- */

static bool bench_login_round_token(const bench_t *b)
{
    return bench_is(b, "login") && b->round == 2;
}

static void bench_send_login(bench_conn_t *c)
{
    bench_t *b = c->b;
    Carrel__Request req = CARREL__REQUEST__INIT;
    Carrel__Login l = CARREL__LOGIN__INIT;
    l.workstation = b->prof.workstation;
    l.username = b->prof.user;
    if (b->nlogins > 0) {
        l.workstation = b->login_workstations[c->index % b->nlogins];
        l.username = b->login_users[c->index % b->nlogins];
    }
    if (b->nkeys > 0) {
        size_t k = (size_t)c->index % b->nkeys;
        l.username = b->key_users[k];
        l.workstation = b->key_workstations[k];
        l.session_token = b->key_tokens[k];
    } else if (bench_login_round_token(b)) {
        l.session_token = c->token;
    } else if (b->share_token && c->index > 0) {
        l.session_token = b->shared_token;
    } else {
        l.password = b->password;
        /* The login workload's second round and -S's other desks use the token. */
        l.has_want_session_token = l.want_session_token =
            bench_is(b, "login") || (b->share_token && c->index == 0);
    }
    req.body_case = CARREL__REQUEST__BODY_LOGIN;
    req.login = &l;
    c->phase = 2;
    c->login_tries++;
    bench_request(c, &req);
}

/* The wait before try `tries` + 1: BENCH_BACKOFF_MS doubling, capped, half
 * of it random (so desks refused together do not come back together). */
static uint64_t bench_backoff_ms(int tries)
{
    uint64_t cap = BENCH_BACKOFF_MS;
    for (int i = 1; i < tries && cap < BENCH_BACKOFF_MAX_MS; i++)
        cap *= 2;
    if (cap > BENCH_BACKOFF_MAX_MS)
        cap = BENCH_BACKOFF_MAX_MS;
    return cap / 2 + (uint64_t)rand() % (cap / 2 + 1);
}

static void bench_conn_timer(uv_timer_t *t);

/* A "try later" refusal of a Login: the answer's retry_after_ms, or any
 * UNAVAILABLE password_queue/overloaded without it. */
static bool bench_login_retryable(const Carrel__Response *r)
{
    if (r->status != CARREL__STATUS__STATUS_UNAVAILABLE)
        return false;
    return r->has_retry_after_ms || (r->reason && (!strcmp(r->reason, "password_queue") ||
                                                   !strcmp(r->reason, "overloaded")));
}

/*
 * The answer to a Login (phase 2). True when it is dealt with here (sent
 * again later, or the bench failed); false to go on as before (an OK, or a
 * refusal that fails the setup).
 */
static bool bench_login_answer(bench_conn_t *c, const Carrel__Response *r, uint64_t now)
{
    bench_t *b = c->b;
    if (r->status == CARREL__STATUS__STATUS_OK) {
        const char *token = r->body_case == CARREL__RESPONSE__BODY_LOGIN && r->login->session_token
                                ? r->login->session_token
                                : NULL;
        if (bench_is(b, "login") && b->round == 1) {
            free(c->token);
            c->token = token ? strdup(token) : NULL;
        } else if (b->share_token && c->index == 0 && b->shared_token == NULL && token) {
            b->shared_token = strdup(token);
        }
        if (bench_is(b, "login")) {
            lat_add(&b->logins, now - c->setup_ns);
            b->last_login_ns = now;
        }
        return false;
    }
    if (!bench_login_retryable(r))
        return false;
    if (c->login_tries >= BENCH_LOGIN_TRIES) {
        fprintf(stderr, "connection %d: login refused %d times: %s\n", c->index, c->login_tries,
                r->reason ? r->reason : "?");
        b->failed = 1;
        return true;
    }
    uint64_t wait = r->has_retry_after_ms ? r->retry_after_ms : bench_backoff_ms(c->login_tries);
    b->login_retries++;
    c->phase = 5;
    uv_timer_start(&c->timer, bench_conn_timer, wait, 0);
    return true;
}

/* Open (again) desk c's connection to the daemon. */
static void bench_connect(bench_conn_t *c)
{
    bench_t *b = c->b;
    c->phase = 0;
    c->inflight = 0;
    c->login_tries = 0;
    c->open = true;
    if (channel_connect(&c->ch, b->loop, (struct sockaddr *)&b->addr, b->tls,
                        b->prof.server_name ? b->prof.server_name : b->prof.host, &bench_ops,
                        16u << 20, 64u << 20, c) != 0)
        b->failed = 1;
}

/* ---- the open loop (-R): each desk scans at its share of the rate ---- */

/* The desk's next gap: exponential (Poisson arrivals) with a mean of
 * desks / rate seconds; xorshift64, the desk's own stream. */
static uint64_t open_loop_gap_ns(bench_conn_t *c)
{
    uint64_t x = c->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c->rng = x;
    double u = ((double)(x >> 11) + 0.5) / 9007199254740992.0; /* (0, 1) */
    return (uint64_t)(-log(u) * 1e9 * (double)c->b->nconns / c->b->rate);
}

/*
 * Send the desk's scan once it is due and its previous answer is in; the
 * scan's clock starts when it is due, so a slow answer delays the next scan
 * but not its latency's start (no coordinated omission). A scan sent after
 * its time because the answer before it came after that time is late.
 */
static void open_loop_pump(bench_conn_t *c)
{
    bench_t *b = c->b;
    if (b->stopping || c->inflight > 0)
        return; /* the answer pumps again */
    uint64_t now = util_mono_ns();
    if (c->due_ns <= now) {
        if (b->measuring && c->answered_ns > c->due_ns)
            b->late++;
        else if (b->measuring) /* idle when due: the time since is the bench's own lag */
            lat_add(&b->send_lag, now - c->due_ns);
        c->sent_due = c->due_ns;
        bench_send(c);
        c->sent_due = 0;
        c->due_ns += open_loop_gap_ns(c);
        if (c->due_ns <= now)
            return; /* due already: sent when this answer comes */
    }
    /* libuv timers count whole ms: wake at or just after the due time. */
    uv_timer_start(&c->timer, bench_conn_timer, (c->due_ns - now + 999999) / 1000000, 0);
}

/*
 * The window ends: every scan due in it but not answered counts, with its
 * latency so far (end - due), a lower bound: the scan in flight, and those
 * due since and not sent because it was (the tail a stalled daemon makes;
 * dropping them would hide it). Counted in unanswered as well, not in ops.
 * A circ checkout among them counts in the checkouts too (the desk's scans
 * alternate); the holds workload's steps get only those answered.
 */
static void open_loop_censor(bench_t *b, uint64_t end)
{
    for (int i = 0; i < b->nconns; i++) {
        bench_conn_t *c = &b->conns[i];
        if (c->phase != 3)
            continue;
        if (c->inflight > 0) {
            uint64_t due = c->sent_at[c->next_id % BENCH_SLOTS(b)];
            bench_record(b, c, end > due ? end - due : 0);
            b->unanswered++;
            b->unanswered_checkouts += bench_is(b, "circ") && c->circ_out;
        }
        bool checkout = !c->circ_out; /* the next scan's */
        for (uint64_t due = c->due_ns; due <= end; due += open_loop_gap_ns(c)) {
            lat_add(&b->all, end - due);
            if (bench_is(b, "circ") && checkout) {
                lat_add(&b->checkouts, end - due);
                b->unanswered_checkouts++;
            }
            checkout = !checkout;
            b->unanswered++;
        }
    }
}

/* A desk's timer: a Login to send again, a connection to make again, or a scan due. */
static void bench_conn_timer(uv_timer_t *t)
{
    bench_conn_t *c = t->data;
    if (c->b->stopping || c->b->failed)
        return;
    if (c->phase == 5)
        bench_send_login(c);
    else if (c->phase == 6)
        bench_connect(c);
    else if (c->phase == 3 && c->b->rate > 0)
        open_loop_pump(c);
}

/* ---- sip: self-check kiosks over SIP2 (see the top) ---- */

/* The SIP2 checksum: the byte sum negated, low 16 bits (the standard's AZ). */
static unsigned sip_checksum(const char *s, size_t n)
{
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (unsigned char)s[i];
    return (0x10000u - (sum & 0xFFFFu)) & 0xFFFFu;
}

/* "YYYYMMDDZZZZHHMMSS", local time with four spaces for the zone, into out[19]. */
static void sip_date_now(char out[19])
{
    time_t t = time(NULL);
    struct tm tm;
    if (localtime_r(&t, &tm) == NULL || strftime(out, 19, "%Y%m%d    %H%M%S", &tm) != 18)
        abort();
}

typedef struct sip_write {
    uv_write_t req;
    char data[]; /* the message, CR included */
} sip_write_t;

static void sip_on_write(uv_write_t *req, int status)
{
    bench_conn_t *c = req->data;
    if (status < 0 && !c->b->stopping) {
        fprintf(stderr, "kiosk %d: write failed: %s\n", c->index, uv_strerror(status));
        c->b->failed = 1;
    }
    free(req);
}

/* Send body with AY seq and AZ, then CR. */
static void sip_write(bench_conn_t *c, const char *body, int seq)
{
    char text[SIP_LINE_MAX + 16];
    int n = snprintf(text, sizeof(text), "%sAY%dAZ", body, seq);
    if (n < 0 || (size_t)n + 6 > sizeof(text))
        abort();
    n += snprintf(text + n, sizeof(text) - (size_t)n, "%04X\r", sip_checksum(text, (size_t)n));
    sip_write_t *w = malloc(sizeof(*w) + (size_t)n);
    if (w == NULL)
        abort();
    memcpy(w->data, text, (size_t)n);
    w->req.data = c;
    uv_buf_t buf = uv_buf_init(w->data, (unsigned)n);
    c->sip_sent_at = util_mono_ns();
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, sip_on_write);
    if (rc != 0) {
        fprintf(stderr, "kiosk %d: write failed: %s\n", c->index, uv_strerror(rc));
        c->b->failed = 1;
        free(w);
        return;
    }
    c->inflight++;
}

/*
 * The kiosk's next message: a checkout of the item in hand, or its checkin
 * (then the next item), as circ. The transaction date is the second the
 * message is sent, and the gateway derives the request key from it and AY:
 * AY is the kiosk's pass over its ten items (mod 10), so the same item's
 * checkout in the same second, the only way two keys could meet, would
 * need ten passes (200 messages) in one second.
 */
static void sip_send_next(bench_conn_t *c)
{
    char card[32], item[32], date[19], body[512];
    const char *inst = c->b->branch ? c->b->branch : ""; /* AO: -B */
    snprintf(card, sizeof(card), "BENCH-P-%05d", c->index);
    snprintf(item, sizeof(item), "BENCH-I-%05d-%02d", c->index, c->circ_item);
    sip_date_now(date);
    int seq = (int)((c->sip_messages++ / 20) % 10);
    c->sip_checkout = !c->circ_out;
    if (c->sip_checkout)
        snprintf(body, sizeof(body), "11NN%s%18sAO%s|AA%s|AB%s|AC|", date, "", inst, card, item);
    else
        snprintf(body, sizeof(body), "09N%s%sAPbench|AO%s|AB%s|AC|", date, date, inst, item);
    if (c->circ_out)
        c->circ_item = (c->circ_item + 1) % 10;
    c->circ_out = !c->circ_out;
    sip_write(c, body, seq);
}

/* True when line ends with a right "AZxxxx". */
static bool sip_checksum_ok(const char *line, size_t n)
{
    if (n < 6 || memcmp(line + n - 6, "AZ", 2) != 0)
        return false;
    char want[5];
    snprintf(want, sizeof(want), "%04X", sip_checksum(line, n - 4));
    return strncasecmp(want, line + n - 4, 4) == 0;
}

/* An answer's screen message (AF), for the first errors' reports. */
static void sip_report(bench_conn_t *c, const char *line, size_t n)
{
    if (c->b->errors >= 3)
        return;
    const char *af = memmem(line, n, "|AF", 3);
    int len = af ? (int)strcspn(af + 3, "|") : 0;
    fprintf(stderr, "kiosk %d: %.*s%s%.*s\n", c->index, (int)(n < 40 ? n : 40), line,
            af ? " AF: " : "", len, af ? af + 3 : "");
}

static void sip_on_line(bench_conn_t *c, const char *line, size_t n)
{
    bench_t *b = c->b;
    uint64_t now = util_mono_ns();
    c->inflight--;
    bool ok = sip_checksum_ok(line, n) && n > 2;
    if (c->phase == 2) {
        if (ok && memcmp(line, "940", 3) == 0 && c->sip_logins < SIP_LOGIN_TRIES) {
            /* Refused: again a little later (see SIP_LOGIN_TRIES), backing off. */
            int step = c->sip_logins < 8 ? c->sip_logins : 8;
            c->phase = 4;
            c->sip_retry_at = now + (uint64_t)step * 250000000u;
            b->sip_login_retries++;
            return;
        }
        if (!ok || memcmp(line, "941", 3) != 0) {
            fprintf(stderr, "kiosk %d: login refused %d times: %.*s\n", c->index, c->sip_logins,
                    (int)n, line);
            b->failed = 1;
            return;
        }
        bench_ready(c);
    } else {
        const char *want = c->sip_checkout ? "121" : "101";
        if (!ok || n < 3 || memcmp(line, want, 3) != 0) {
            sip_report(c, line, n);
            b->errors++;
        }
        bench_record(b, c, now - c->sip_sent_at);
    }
    if (b->stopping || b->ready < b->nconns)
        return;
    while (c->inflight < b->depth)
        bench_send(c);
}

static void sip_on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    bench_conn_t *c = h->data;
    *buf = uv_buf_init(c->sip_in + c->sip_len, (unsigned)(2 * SIP_LINE_MAX - c->sip_len));
}

static void sip_on_close(uv_handle_t *h)
{
    bench_conn_t *c = h->data;
    c->b->closed++;
}

static void sip_close(bench_conn_t *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, sip_on_close);
}

/* Cut what arrived into lines at CR (LFs around them dropped). */
static void sip_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    bench_conn_t *c = s->data;
    bench_t *b = c->b;
    if (nread < 0) {
        if (!b->stopping) {
            fprintf(stderr, "kiosk %d: connection closed: %s\n", c->index, uv_strerror((int)nread));
            b->failed = 1;
        }
        sip_close(c);
        return;
    }
    c->sip_len += (size_t)nread;
    char *start = c->sip_in, *end = c->sip_in + c->sip_len, *cr;
    while ((cr = memchr(start, '\r', (size_t)(end - start))) != NULL) {
        char *line = start;
        while (line < cr && *line == '\n')
            line++;
        if (line < cr)
            sip_on_line(c, line, (size_t)(cr - line));
        start = cr + 1;
    }
    c->sip_len = (size_t)(end - start);
    memmove(c->sip_in, start, c->sip_len);
    if (c->sip_len >= 2 * SIP_LINE_MAX) {
        fprintf(stderr, "kiosk %d: an answer without its CR\n", c->index);
        b->failed = 1;
        sip_close(c);
    }
}

/* Log in (93) as -U's entry for this kiosk. */
static void sip_login(bench_conn_t *c)
{
    bench_t *b = c->b;
    char body[512];
    snprintf(body, sizeof(body), "9300CN%s|CO%s|CPbench|", b->sip_users[c->index % b->nsip_users],
             b->password ? b->password : "");
    c->phase = 2;
    c->sip_logins++;
    sip_write(c, body, 0);
}

/* Kiosks whose 93 was refused and whose wait is over log in again. */
static void sip_login_retry(bench_t *b, uint64_t now)
{
    for (int i = 0; i < b->nconns; i++)
        if (b->conns[i].phase == 4 && b->conns[i].sip_retry_at <= now)
            sip_login(&b->conns[i]);
}

/* Connected: log in. */
static void sip_on_connect(uv_connect_t *req, int status)
{
    bench_conn_t *c = req->data;
    bench_t *b = c->b;
    if (status < 0) {
        fprintf(stderr, "kiosk %d: connect: %s\n", c->index, uv_strerror(status));
        b->failed = 1;
        sip_close(c);
        return;
    }
    int rc = uv_read_start((uv_stream_t *)&c->tcp, sip_on_alloc, sip_on_read);
    if (rc != 0) {
        fprintf(stderr, "kiosk %d: read: %s\n", c->index, uv_strerror(rc));
        b->failed = 1;
        return;
    }
    sip_login(c);
}

static int sip_connect(bench_conn_t *c, const struct sockaddr *addr)
{
    bench_t *b = c->b;
    c->sip_in = malloc(2 * SIP_LINE_MAX);
    if (c->sip_in == NULL)
        abort();
    if (uv_tcp_init(b->loop, &c->tcp) != 0)
        abort(); /* only fails on a bad loop: sip_close could not close it */
    c->tcp.data = c;
    c->connect_req.data = c;
    uv_tcp_nodelay(&c->tcp, 1);
    return uv_tcp_connect(&c->connect_req, &c->tcp, addr, sip_on_connect) == 0 ? 0 : -1;
}

/* Made and refused bookings, and the size of the room, gap, tally and
 * ticket answers. */
static void bench_count_answer(bench_t *b, const Carrel__Response *r)
{
    if (r->body_case == CARREL__RESPONSE__BODY_ROOM_BOOK)
        b->made += r->room_book->n_made;
    else if (r->reason != NULL && strcmp(r->reason, "slot_taken") == 0)
        b->refused++;
    else if (r->body_case == CARREL__RESPONSE__BODY_ROOM_FREE)
        b->stats_rows = r->room_free->n_days;
    else if (r->body_case == CARREL__RESPONSE__BODY_SCHEDULE_GAPS)
        b->stats_rows = r->schedule_gaps->n_gaps;
    else if (r->body_case == CARREL__RESPONSE__BODY_INQUIRY_ADD)
        b->today_branch = r->inquiry_add->today_branch;
    else if (r->body_case == CARREL__RESPONSE__BODY_TICKETS)
        b->answer_items = r->tickets->n_tickets;
    else if (r->body_case == CARREL__RESPONSE__BODY_TICKET)
        b->answer_items = r->ticket->n_messages;
    else if (r->body_case == CARREL__RESPONSE__BODY_CATALOG_SEARCH) {
        b->answers++;
        b->total_sum += (uint64_t)r->catalog_search->total;
        b->capped += r->catalog_search->total_capped;
    } else if (r->body_case == CARREL__RESPONSE__BODY_WEEDING_SUMMARY) {
        b->report_rows = r->weeding_summary->n_collections;
    } else if (r->body_case == CARREL__RESPONSE__BODY_DISPLAY_REPORT) {
        b->report_rows = (size_t)r->display_report->copies;
        b->answer_items = (size_t)r->display_report->control_copies;
    }
}

static void bench_on_frame(channel_t *ch, const uint8_t *p, size_t n)
{
    bench_conn_t *c = ch->data;
    bench_t *b = c->b;
    Carrel__Response *r = carrel__response__unpack(NULL, n, p);
    if (r == NULL) {
        fprintf(stderr, "undecodable response\n");
        b->failed = 1;
        channel_close(ch, "bad frame");
        return;
    }
    if (r->id == 0) { /* events are not part of this load */
        carrel__response__free_unpacked(r, NULL);
        return;
    }
    c->inflight--;
    uint64_t now = util_mono_ns();
    uint64_t sent = c->sent_at[r->id % BENCH_SLOTS(b)];
    int status = r->status;
    char msg[200];
    snprintf(msg, sizeof(msg), "%s", r->message ? r->message : "");
    if (c->phase == 2 && bench_login_answer(c, r, now)) {
        carrel__response__free_unpacked(r, NULL);
        return;
    }
    bool slot_taken = r->reason != NULL && strcmp(r->reason, "slot_taken") == 0;
    if (c->phase == 3 && b->measuring)
        bench_count_answer(b, r);
    /* weedlist: a report's pages are one op (see the top). */
    bool next_page =
        c->phase == 3 && bench_is(b, "weedlist") && bench_weeding_page_done(c, r, sent, now);
    if (r->body_case == CARREL__RESPONSE__BODY_STATS) {
        b->stats_rows = r->stats->n_rows;
        snprintf(b->served_by, sizeof(b->served_by), "%s",
                 r->stats->served_by ? r->stats->served_by : "?");
    } else if (status != CARREL__STATUS__STATUS_OK && c->phase == 3 && b->errors < 3 &&
               !(slot_taken && bench_is(b, "roomrace"))) {
        fprintf(stderr, "connection %d: %s\n", c->index, msg);
    }
    carrel__response__free_unpacked(r, NULL);
    if (status != CARREL__STATUS__STATUS_OK) {
        if (c->phase < 3) {
            fprintf(stderr, "connection %d: setup failed: %s\n", c->index, msg);
            b->failed = 1;
            channel_close(ch, "setup failed");
            return;
        }
        /* The contended variant expects most desks to lose the slot. */
        if (!(slot_taken && bench_is(b, "roomrace") && c->phase == 3))
            b->errors++;
    }
    if (c->phase == 1) {
        if (!bench_needs_login(b)) {
            bench_ready(c);
        } else {
            bench_send_login(c);
            return;
        }
    } else if (c->phase == 2) {
        bench_ready(c);
    } else if (next_page) {
        /* The report's next page (a report cut off by the end of the run
         * is not counted). */
        if (!b->stopping)
            bench_send(c);
        return;
    } else if (!bench_is(b, "weedlist")) {
        bench_record(b, c, now - sent);
    }
    if (b->stopping || b->ready < b->nconns || b->t_start == 0)
        return;
    if (b->rate > 0) {
        c->answered_ns = now;
        open_loop_pump(c);
        return;
    }
    while (c->inflight < b->depth)
        bench_send(c);
}

static void bench_on_close(channel_t *ch, const char *reason)
{
    bench_conn_t *c = ch->data;
    bench_t *b = c->b;
    c->open = false;
    if (b->stopping || b->failed) {
        b->closed++;
        return;
    }
    if (c->phase != 3 && c->reconnects < BENCH_LOGIN_TRIES) {
        /* Dropped before it logged in (the daemon's handshake or login
         * deadline on a busy machine): connect again, as a desk would. */
        c->reconnects++;
        b->reconnects++;
        c->phase = 6;
        uv_timer_start(&c->timer, bench_conn_timer, bench_backoff_ms(c->reconnects), 0);
        return;
    }
    fprintf(stderr, "connection %d closed: %s\n", c->index, reason);
    b->failed = 1;
    b->closed++;
}

static const channel_ops_t bench_ops = {
    .on_open = bench_on_open,
    .on_frame = bench_on_frame,
    .on_close = bench_on_close,
};

static void bench_stop_all(bench_t *b)
{
    b->stopping = true;
    for (int i = 0; i < b->nconns; i++) {
        if (bench_is(b, "sip"))
            sip_close(&b->conns[i]);
        else if (b->conns[i].open)
            channel_close(&b->conns[i].ch, "done");
        if (!uv_is_closing((uv_handle_t *)&b->conns[i].timer))
            uv_close((uv_handle_t *)&b->conns[i].timer, NULL);
    }
    uv_close((uv_handle_t *)&b->timer, NULL);
}

/* login workload: a round is over (every desk logged in): its line; then
 * the second round, or the end. */
static void login_round_done(bench_t *b, uint64_t now)
{
    lat_t *l = &b->logins;
    lat_sort(l);
    snprintf(b->round_lines[b->round - 1], sizeof(b->round_lines[0]),
             "workload=login round=%s desks=%d all_logged_in_s=%.2f errors=%llu logins=%zu "
             "login_p50_ms=%.3f login_p99_ms=%.3f login_max_ms=%.3f retries=%llu reconnects=%llu",
             b->round == 1 ? "password" : "token", b->nconns,
             (double)(b->last_login_ns - b->round_start) / 1e9, (unsigned long long)b->errors, l->n,
             lat_pct(l->us, l->n, 0.50), lat_pct(l->us, l->n, 0.99), lat_max(l->us, l->n),
             (unsigned long long)b->login_retries, (unsigned long long)b->reconnects);
    l->n = 0;
    b->login_retries = b->reconnects = 0;
    if (b->round == 2) {
        b->t_start = b->round_start;
        b->t_end = now;
        bench_stop_all(b);
        return;
    }
    /* Every desk goes away, then comes back with its session token. */
    b->stopping = true;
    b->closed = 0;
    for (int i = 0; i < b->nconns; i++)
        if (b->conns[i].open)
            channel_close(&b->conns[i].ch, "round over");
}

/* login workload: the second round starts once every connection of the first is closed. */
static void login_round_two(bench_t *b, uint64_t now)
{
    b->stopping = false;
    b->ready = 0;
    b->round = 2;
    b->t_launch = b->round_start = now;
    for (int i = 0; i < b->nconns; i++) {
        bench_conn_t *c = &b->conns[i];
        if (c->token == NULL) {
            fprintf(stderr, "connection %d: no session token in its LoginReply\n", i);
            b->failed = 1;
            return;
        }
        c->reconnects = 0;
        c->setup_ns = now;
        bench_connect(c);
    }
}

static void bench_tick(uv_timer_t *t)
{
    bench_t *b = t->data;
    uint64_t now = util_mono_ns();
    if (b->failed) {
        bench_stop_all(b);
        return;
    }
    if (bench_is(b, "login") && b->stopping) {
        if (b->closed == b->nconns)
            login_round_two(b, now);
        return;
    }
    if (b->ready < b->nconns) {
        if (bench_is(b, "sip"))
            sip_login_retry(b, now);
        if (now - b->t_launch > (uint64_t)BENCH_SETUP_S * 1000000000u) {
            fprintf(stderr, "%d of %d connections ready after %d s\n", b->ready, b->nconns,
                    BENCH_SETUP_S);
            b->failed = 1;
        }
        return;
    }
    if (bench_is(b, "login")) {
        login_round_done(b, now);
        return;
    }
    if (b->t_start == 0) {
        /* Everybody is logged in: start the load, measure after the warmup. */
        b->t_start = now;
        for (int i = 0; i < b->nconns; i++) {
            bench_conn_t *c = &b->conns[i];
            if (b->rate > 0) { /* the first scan a random gap from now */
                c->due_ns = now + open_loop_gap_ns(c);
                open_loop_pump(c);
            }
            while (b->rate <= 0 && c->inflight < b->depth)
                bench_send(c);
        }
        return;
    }
    double elapsed = (double)(now - b->t_start) / 1e9;
    if (!b->measuring && elapsed >= b->warmup_s) {
        b->measuring = true;
        b->t_start = now;
        b->all.n = 0;
        for (int i = 0; i < HOLD_STEPS; i++)
            b->steps[i].n = 0;
        b->errors = 0;
        b->made = b->refused = 0;
        b->pages.n = 0;
        b->checkouts.n = 0;
        b->late = b->unanswered = b->unanswered_checkouts = 0;
        b->send_lag.n = 0;
        if (pgcpu_start(&b->cpu) != 0)
            b->failed = 1;
        return;
    }
    if (b->measuring && elapsed >= b->duration_s &&
        (b->all.n >= b->min_ops || elapsed >= 10 * b->duration_s)) {
        if (b->rate > 0)
            open_loop_censor(b, now);
        b->measuring = false;
        b->t_end = now;
        b->cpu_ms = pgcpu_end_ms(&b->cpu);
        bench_stop_all(b);
    }
}

/* Split a comma-separated option value in place: its items, or -1 when
 * there are more than max or one is empty. */
static int bench_split(char *list, char **out, int max)
{
    int n = 0;
    for (char *item; (item = strsep(&list, ",")) != NULL;) {
        if (n == max || item[0] == '\0')
            return -1;
        out[n++] = item;
    }
    return n;
}

/* -r: positive ids. 0, or -1 (said why). */
static int bench_parse_ids(bench_t *b, char *list)
{
    char *items[BENCH_MAX_IDS];
    int n = bench_split(list, items, BENCH_MAX_IDS);
    for (int i = 0; i < n; i++)
        if ((b->ids[i] = atoll(items[i])) <= 0)
            n = -1;
    if (n <= 0) {
        fprintf(stderr, "bad -r (ids, comma-separated, at most %d)\n", BENCH_MAX_IDS);
        return -1;
    }
    b->nids = n;
    return 0;
}

/* -L: USER@WORKSTATION items, split at the '@' in place. 0, or -1 (said why). */
static int bench_parse_logins(bench_t *b, char *list)
{
    int n = bench_split(list, b->login_users, BENCH_MAX_LIST);
    for (int i = 0; i < n; i++) {
        char *at = strchr(b->login_users[i], '@');
        if (at == NULL || at == b->login_users[i] || at[1] == '\0') {
            n = -1;
            break;
        }
        *at = '\0';
        b->login_workstations[i] = at + 1;
    }
    if (n <= 0) {
        fprintf(stderr, "bad -L (USER@WORKSTATION, comma-separated, at most %d)\n", BENCH_MAX_LIST);
        return -1;
    }
    b->nlogins = n;
    return 0;
}

/* -K: "USER WORKSTATION TOKEN" lines (empty lines skipped). 0, or -1 (said why). */
static int bench_read_keys(bench_t *b, const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    char user[64], ws[128], token[128];
    size_t have = 0;
    int n, bad = 0;
    while ((n = fscanf(f, "%63s %127s %127s", user, ws, token)) == 3) {
        if (b->nkeys == have) {
            have = have ? have * 2 : 256;
            b->key_users = realloc(b->key_users, have * sizeof(char *));
            b->key_workstations = realloc(b->key_workstations, have * sizeof(char *));
            b->key_tokens = realloc(b->key_tokens, have * sizeof(char *));
            if (!b->key_users || !b->key_workstations || !b->key_tokens)
                abort();
        }
        b->key_users[b->nkeys] = util_xstrdup(user);
        b->key_workstations[b->nkeys] = util_xstrdup(ws);
        b->key_tokens[b->nkeys++] = util_xstrdup(token);
    }
    bad = n != EOF || ferror(f);
    fclose(f);
    if (bad || b->nkeys == 0) {
        fprintf(stderr, "%s: want lines of USER WORKSTATION TOKEN\n", path);
        return -1;
    }
    return 0;
}

static void bench_free_keys(bench_t *b)
{
    for (size_t i = 0; i < b->nkeys; i++) {
        free(b->key_users[i]);
        free(b->key_workstations[i]);
        free(b->key_tokens[i]);
    }
    free(b->key_users);
    free(b->key_workstations);
    free(b->key_tokens);
    b->nkeys = 0;
}

/* -q: the queries, one a line (empty lines skipped). 0, or -1 (said why). */
static int bench_read_queries(bench_t *b, const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0, have = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) != -1) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0)
            continue;
        if (b->nqueries == have) {
            have = have ? have * 2 : 256;
            char **grown = realloc(b->queries, have * sizeof(char *));
            if (grown == NULL)
                abort();
            b->queries = grown;
        }
        if ((b->queries[b->nqueries++] = strdup(line)) == NULL)
            abort();
    }
    free(line);
    bool bad = ferror(f);
    fclose(f);
    if (bad || b->nqueries == 0) {
        fprintf(stderr, "%s: no queries\n", path);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    bench_t b = {.nconns = 1,
                 .depth = 1,
                 .duration_s = 10,
                 .warmup_s = 2,
                 .page_limit = 500,
                 .cpu_ms = -1,
                 .round = 1};
    const char *profile = NULL;
    int ch;
    while ((ch = getopt(argc, argv, "c:n:d:w:D:b:s:r:o:L:k:T:q:B:l:m:P:U:C:R:SK:")) != -1) {
        switch (ch) {
        case 'C':
            if ((b.cpu.postmaster = pgcpu_postmaster(optarg)) <= 0)
                return 2;
            break;
        case 'R':
            if ((b.rate = atof(optarg)) <= 0) {
                fprintf(stderr, "bad -R (operations a second over all desks, > 0)\n");
                return 2;
            }
            break;
        case 'S':
            b.share_token = true;
            break;
        case 'K':
            if (bench_read_keys(&b, optarg) != 0)
                return 2;
            break;
        case 'r':
            if (bench_parse_ids(&b, optarg) != 0)
                return 2;
            break;
        case 'L':
            if (bench_parse_logins(&b, optarg) != 0)
                return 2;
            break;
        case 'k':
            if ((b.ndesks = bench_split(optarg, b.desks, BENCH_MAX_LIST)) <= 0) {
                fprintf(stderr, "bad -k (desk codes, comma-separated, at most %d)\n",
                        BENCH_MAX_LIST);
                return 2;
            }
            break;
        case 'T':
            b.ticket_filter = optarg;
            break;
        case 'q':
            if (bench_read_queries(&b, optarg) != 0)
                return 2;
            break;
        case 'B':
            b.branch = optarg;
            break;
        case 'l':
            b.page_limit = atoi(optarg);
            break;
        case 'm':
            b.min_ops = (size_t)atol(optarg);
            break;
        case 'P':
            b.sip_port = atoi(optarg);
            break;
        case 'U':
            if ((b.nsip_users = bench_split(optarg, b.sip_users, BENCH_MAX_LIST)) <= 0) {
                fprintf(stderr, "bad -U (SIP2 logins, comma-separated, at most %d)\n",
                        BENCH_MAX_LIST);
                return 2;
            }
            break;
        case 'o':
            b.first_day = optarg;
            break;
        case 's':
            if (b.nspecs == STATS_MAX_SPECS || stats_spec_parse(&b.specs[b.nspecs++], optarg)) {
                fprintf(stderr, "bad -s %s (MEASURE,FROM,TO,TIME,BY[+BY...], at most %d)\n", optarg,
                        STATS_MAX_SPECS);
                return 2;
            }
            break;
        case 'b':
            b.bib_base = atoll(optarg);
            break;
        case 'c':
            profile = optarg;
            break;
        case 'n':
            b.nconns = atoi(optarg);
            break;
        case 'd':
            b.duration_s = atof(optarg);
            break;
        case 'w':
            b.warmup_s = atof(optarg);
            break;
        case 'D':
            b.depth = atoi(optarg);
            break;
        default:
            fprintf(stderr,
                    "usage: carrel-bench -c PROFILE [-n CONNS] [-d SECONDS] [-w WARMUP] "
                    "[-D DEPTH] [-b BIB_BASE] [-s STATS_SPEC]... [-r IDS] "
                    "[-o FIRST_DAY] [-L USER@WS,...] [-k DESKS] [-T FILTER] "
                    "[-q QUERY_FILE] [-B BRANCH] [-l LIMIT] [-m MIN_OPS] "
                    "[-P SIP_PORT -U SIP_USER,...] [-C PG_DATADIR|PID] [-R RATE] [-S | -K KEYS] "
                    "WORKLOAD\n");
            return 2;
        }
    }
    if (optind != argc - 1 || profile == NULL || b.nconns < 1 || b.depth < 1) {
        fprintf(stderr, "usage: carrel-bench -c PROFILE [-n CONNS] [-d S] [-w S] [-D DEPTH] "
                        "[-b BIB_BASE] WORKLOAD\n");
        return 2;
    }
    b.workload = argv[optind];
    static const char *const workloads[] = {
        "ping",       "branches", "search",      "circ",          "heavy", "renewall", "holds",
        "stats",      "roombook", "roomrace",    "roomfree",      "gaps",  "tally",    "ticketlist",
        "ticketshow", "weedlist", "weedsummary", "displayreport", "sip",   "login"};
    bool known = false;
    for (size_t i = 0; i < sizeof(workloads) / sizeof(workloads[0]); i++)
        known = known || strcmp(b.workload, workloads[i]) == 0;
    if (!known) {
        fprintf(stderr, "unknown workload %s\n", b.workload);
        return 2;
    }
    if ((strcmp(b.workload, "stats") == 0) != (b.nspecs > 0)) {
        fprintf(stderr, "the stats workload, and only it, needs -s\n");
        return 2;
    }
    bool rooms = bench_is(&b, "roombook") || bench_is(&b, "roomrace");
    char probe[16];
    if ((rooms || bench_is(&b, "roomfree") || bench_is(&b, "gaps")) &&
        (b.first_day == NULL || day_add(b.first_day, 0, probe, sizeof(probe)) != 0)) {
        fprintf(stderr, "the room and gaps workloads need -o YYYY-MM-DD (the first day)\n");
        return 2;
    }
    if ((rooms || bench_is(&b, "ticketshow") || bench_is(&b, "displayreport")) && b.nids == 0) {
        fprintf(stderr, "roombook, roomrace, ticketshow and displayreport need -r ID[,ID...]\n");
        return 2;
    }
    static const char *const filters[] = {"default", "mine", "overdue", "flagged"};
    bool filter_ok = false;
    for (size_t i = 0; b.ticket_filter && i < sizeof(filters) / sizeof(filters[0]); i++)
        filter_ok = filter_ok || strcmp(b.ticket_filter, filters[i]) == 0;
    if (bench_is(&b, "ticketlist") != filter_ok) {
        fprintf(stderr, "the ticketlist workload, and only it, needs -T "
                        "default|mine|overdue|flagged\n");
        return 2;
    }
    if (b.page_limit < 1 || b.page_limit > 5000) {
        fprintf(stderr, "-l: 1-5000 candidates a page\n");
        return 2;
    }
    if (bench_is(&b, "sip") != (b.sip_port > 0 && b.nsip_users > 0)) {
        fprintf(stderr, "the sip workload, and only it, needs -P SIP_PORT and -U SIP_USER,...\n");
        return 2;
    }
    if (b.nqueries > 0 && !bench_is(&b, "search")) {
        fprintf(stderr, "-q is for the search workload\n");
        return 2;
    }
    if (b.rate > 0 && (b.depth != 1 || bench_is(&b, "sip") || bench_is(&b, "weedlist") ||
                       bench_is(&b, "login"))) {
        fprintf(stderr, "-R: one request at a time (-D 1), not for sip, weedlist or login\n");
        return 2;
    }
    if ((b.share_token || b.nkeys > 0) &&
        (bench_is(&b, "sip") || bench_is(&b, "login") || bench_is(&b, "ping"))) {
        fprintf(stderr, "-S and -K are for workloads that log in over the Carrel protocol "
                        "(not login)\n");
        bench_free_keys(&b);
        return 2;
    }
    if (b.nkeys > 0 && (b.share_token || b.nlogins > 0)) {
        fprintf(stderr, "-K gives each desk its user, workstation and token: not with -S or -L\n");
        bench_free_keys(&b);
        return 2;
    }
    char err[512];
    if (profile_load(&b.prof, profile, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    if (b.prof.password_file) {
        b.password = util_read_file(b.prof.password_file, 4096);
        if (b.password)
            util_chomp(b.password);
    }
    signal(SIGPIPE, SIG_IGN);
    b.loop = uv_default_loop();
    b.tls = tls_client_ctx_new(b.prof.ca_file, b.prof.cert_file, b.prof.key_file, err, sizeof(err));
    if (b.tls == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (uv_ip4_addr(b.prof.host, (int)b.prof.port, &b.addr) != 0) {
        fprintf(stderr, "host %s: an IPv4 address, please\n", b.prof.host);
        return 2;
    }
    /* A thousand desks are a thousand sockets (an error only said: fewer desks may still run). */
    if (util_raise_nofile(NULL) != 0)
        perror("setrlimit(RLIMIT_NOFILE)");
    b.conns = calloc((size_t)b.nconns, sizeof(bench_conn_t));
    if (b.conns == NULL)
        abort();
    b.t_launch = b.round_start = util_mono_ns();
    for (int i = 0; i < b.nconns; i++) {
        bench_conn_t *c = &b.conns[i];
        c->b = &b;
        c->index = i;
        c->hold_step = HOLD_RETURN; /* so that the first step is HOLD_LEND */
        c->sent_at = calloc(BENCH_SLOTS(&b), sizeof(uint64_t));
        c->setup_ns = b.t_launch;
        c->rng =
            0x9E3779B97F4A7C15ull * (uint64_t)(i + 1) | 1; /* never 0: xorshift's fixed point */
        uv_timer_init(b.loop, &c->timer);
        c->timer.data = c;
        if (bench_is(&b, "sip")) {
            struct sockaddr_in sip_addr;
            uv_ip4_addr(b.prof.host, b.sip_port, &sip_addr);
            if (sip_connect(c, (struct sockaddr *)&sip_addr) != 0)
                b.failed = 1;
        } else if (!b.share_token || i == 0) { /* -S: the others once desk 0 has a token */
            bench_connect(c);
        }
    }
    uv_timer_init(b.loop, &b.timer);
    b.timer.data = &b;
    uv_timer_start(&b.timer, bench_tick, 10, 10);
    uv_run(b.loop, UV_RUN_DEFAULT);

    int rc = 0;
    if (!b.failed && b.t_end != 0 && b.cpu.postmaster > 0 && b.cpu_ms < 0 &&
        !bench_is(&b, "login")) {
        fprintf(stderr, "PostgreSQL's CPU could not be measured\n");
        b.failed = 1;
    }
    if (b.failed || b.t_end == 0) {
        fprintf(stderr, "benchmark failed\n");
        rc = 1;
    } else if (bench_is(&b, "login")) {
        printf("%s\n%s\n", b.round_lines[0], b.round_lines[1]);
    } else {
        double secs = (double)(b.t_end - b.t_start) / 1e9;
        lat_t *l = &b.all;
        lat_sort(l);
        /* The percentiles include the open loop's unanswered scans; ops does not. */
        size_t ops = l->n - (size_t)b.unanswered;
        printf("workload=%s connections=%d depth=%d seconds=%.1f ops=%zu errors=%llu "
               "ops_per_s=%.0f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f",
               b.workload, b.nconns, b.depth, secs, ops, (unsigned long long)b.errors,
               (double)ops / secs, lat_pct(l->us, l->n, 0.50), lat_pct(l->us, l->n, 0.99),
               lat_max(l->us, l->n));
        if (strcmp(b.workload, "stats") == 0)
            printf(" rows=%zu served_by=%s", b.stats_rows, b.served_by);
        if (bench_is(&b, "roombook") || bench_is(&b, "roomrace"))
            printf(" rooms=%d made=%llu refused_slot_taken=%llu",
                   bench_is(&b, "roomrace") && b.nids > ROOM_RACE_ROOMS ? ROOM_RACE_ROOMS : b.nids,
                   (unsigned long long)b.made, (unsigned long long)b.refused);
        if (bench_is(&b, "roomfree"))
            printf(" days=%zu", b.stats_rows);
        if (bench_is(&b, "gaps"))
            printf(" gaps=%zu", b.stats_rows);
        if (bench_is(&b, "tally"))
            printf(" today_branch=%lld", (long long)b.today_branch);
        if (bench_is(&b, "ticketlist"))
            printf(" filter=%s tickets=%zu", b.ticket_filter, b.answer_items);
        if (bench_is(&b, "ticketshow"))
            printf(" tickets=%d messages=%zu", b.nids, b.answer_items);
        if (bench_is(&b, "search"))
            printf(" queries=%zu mean_total=%.0f capped=%llu", b.nqueries,
                   b.answers ? (double)b.total_sum / (double)b.answers : 0.0,
                   (unsigned long long)b.capped);
        if (bench_is(&b, "weedlist")) {
            lat_sort(&b.pages);
            printf(" branch=%s page_limit=%d pages=%d candidates=%zu page_p50_ms=%.3f "
                   "page_p99_ms=%.3f",
                   b.branch ? b.branch : "session", b.page_limit, b.report_pages, b.report_rows,
                   lat_pct(b.pages.us, b.pages.n, 0.50), lat_pct(b.pages.us, b.pages.n, 0.99));
        }
        if (bench_is(&b, "displayreport"))
            printf(" displays=%d copies=%zu control_copies=%zu", b.nids, b.report_rows,
                   b.answer_items);
        if (bench_is(&b, "weedsummary"))
            printf(" branch=%s collections=%zu", b.branch ? b.branch : "session", b.report_rows);
        if (bench_is(&b, "sip"))
            printf(" login_retries=%llu", (unsigned long long)b.sip_login_retries);
        if (!bench_is(&b, "sip"))
            printf(" login_retries=%llu reconnects=%llu", (unsigned long long)b.login_retries,
                   (unsigned long long)b.reconnects);
        if (b.rate > 0) {
            lat_sort(&b.send_lag);
            printf(" rate=%.0f late=%llu unanswered=%llu send_lag_p50_ms=%.3f "
                   "send_lag_p99_ms=%.3f",
                   b.rate, (unsigned long long)b.late, (unsigned long long)b.unanswered,
                   lat_pct(b.send_lag.us, b.send_lag.n, 0.50),
                   lat_pct(b.send_lag.us, b.send_lag.n, 0.99));
        }
        if (b.cpu.postmaster > 0 && ops > 0) {
            printf(" pg_cpu_ms=%.0f pg_cpu_ms_per_op=%.3f", b.cpu_ms, b.cpu_ms / (double)ops);
            /* circ alternates checkout and checkin: a pair is two ops */
            if (bench_is(&b, "circ") || bench_is(&b, "heavy"))
                printf(" pg_cpu_ms_per_pair=%.3f", 2 * b.cpu_ms / (double)ops);
        }
        if (bench_is(&b, "circ") || bench_is(&b, "sip")) {
            l = &b.checkouts;
            lat_sort(l);
            size_t done = l->n - (size_t)b.unanswered_checkouts;
            printf(" checkouts=%zu checkouts_per_s=%.0f checkout_p50_ms=%.3f checkout_p99_ms=%.3f",
                   done, (double)done / secs, lat_pct(l->us, l->n, 0.50),
                   lat_pct(l->us, l->n, 0.99));
        }
        printf("\n");
        for (int i = 0; i < HOLD_STEPS && strcmp(b.workload, "holds") == 0; i++) {
            l = &b.steps[i];
            lat_sort(l);
            printf("  step=%s ops=%zu ops_per_s=%.0f p50_ms=%.3f p99_ms=%.3f\n", hold_step_names[i],
                   l->n, (double)l->n / secs, lat_pct(l->us, l->n, 0.50),
                   lat_pct(l->us, l->n, 0.99));
        }
    }
    for (int i = 0; i < b.nconns; i++) {
        free(b.conns[i].sent_at);
        free(b.conns[i].token);
        free(b.conns[i].after);
        free(b.conns[i].sip_in);
    }
    for (size_t i = 0; i < b.nqueries; i++)
        free(b.queries[i]);
    free(b.queries);
    bench_free_keys(&b);
    free(b.conns);
    free(b.all.us);
    free(b.pages.us);
    free(b.checkouts.us);
    free(b.logins.us);
    free(b.send_lag.us);
    free(b.shared_token);
    pgcpu_free(&b.cpu);
    for (int i = 0; i < HOLD_STEPS; i++)
        free(b.steps[i].us);
    free(b.password);
    SSL_CTX_free(b.tls);
    profile_free(&b.prof);
    uv_loop_close(b.loop);
    return rc;
}
