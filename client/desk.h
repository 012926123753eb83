/*
 * desk.h: the parts of `carrel desk` (desk.c: the desk's state machine;
 * desk_term.c: the terminal, input lines and the prompt), and the state
 * they share. Not for other modules: desk mode is reached through its
 * command table entry.
 */
#ifndef CARREL_DESK_H
#define CARREL_DESK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "cli.h"
#include "journal.h"
#include "listen.h"

#define DESK_FIELD_MAX        128  /* a card or barcode (the server takes up to 64) */
#define DESK_REASON_MAX       512  /* an override reason */
#define DESK_LINE_MAX         1024 /* the longest line read without libedit */
#define DESK_HISTORY_KEEP     200
#define DESK_RECONNECT_MAX_MS 5000
#define DESK_RESEND_ATTEMPTS  6    /* sends of a change answered unavailable, at most */
#define DESK_RESEND_FIRST_MS  1000 /* the pause before the first resend, doubling */

#define DESK_PROBE_FIRST_MS  1000  /* offline: the first reconnect attempt after this, doubling */
#define DESK_PROBE_MAX_MS    30000 /* offline: ... up to this, for as long as it takes */
/* offline: a reconnect attempt (connect + TLS) waits this long at most; the keyboard waits
 * with it (review M6), so short */
#define DESK_PROBE_TIMEOUT_S 2

typedef enum { DESK_MODE_CHECKOUT, DESK_MODE_CHECKIN } desk_mode_t;

/* What the request in flight is for: it decides what its answer prints. */
typedef enum {
    DESK_STEP_NONE,
    DESK_STEP_CARD,         /* PatronGet of a scanned card, or :patron CARD */
    DESK_STEP_ITEM_AS_CARD, /* PatronGet of an item barcode the server did not know */
    DESK_STEP_PATRON_COUNT, /* AccountGet after a card was found: items out, balance */
    DESK_STEP_CHECKOUT,
    DESK_STEP_CHECKIN,
    DESK_STEP_RENEW,
    DESK_STEP_ACCOUNT,
    DESK_STEP_PING,      /* :ping, with a test event */
    DESK_STEP_KEEPALIVE, /* a silent Ping after a quiet minute */
    DESK_STEP_KINDS,     /* ServiceCodeList of the inquiry kinds, for :q and :q? */
    DESK_STEP_TALLY,     /* InquiryAdd: one question answered (:q) */
} desk_step_t;

/*
 * The one request in flight. It is rebuilt from these fields whenever it is
 * sent, so that after a reconnect it goes again exactly as before, with the
 * same request key.
 */
typedef struct desk_pending {
    desk_step_t step; /* DESK_STEP_NONE: nothing in flight */
    uint64_t id;      /* 0: not sent yet on this connection */
    uint64_t sent_ms;
    int sends;                 /* times sent and answered unavailable (desk_resend_later) */
    uint64_t resend_ms;        /* not to be sent before this (a pause after unavailable) */
    char key[37];              /* request key of a change; "" for reads */
    char scan[DESK_FIELD_MAX]; /* the barcode or card scanned */
    char card[DESK_FIELD_MAX]; /* the patron a checkout, renewal or account is for */
    bool override;
    char override_reason[DESK_REASON_MAX];
    char item_message[300]; /* DESK_STEP_ITEM_AS_CARD: what the checkout answered */
    /* DESK_STEP_TALLY: the tally */
    char kind[DESK_FIELD_MAX];
    int read_level;
    char channel[16];
    char at[20]; /* "YYYY-MM-DD HH:MM" when backdated, else "" (now) */
    /* the workstation's clock when it was scanned (journaled if offline) */
    int64_t wall_ms;
} desk_pending_t;

typedef struct desk_line {
    struct desk_line *next;
    char text[];
} desk_line_t;

typedef struct desk {
    cli_t *cli;
    desk_mode_t mode;
    int exit_code;

    /* input */
    bool tty;        /* stdin is a terminal: libedit */
    bool rl_active;  /* libedit's callback handler is installed */
    bool line_done;  /* libedit handed over a line during this read */
    bool input_eof;  /* no more input will come */
    bool stdin_sync; /* stdin cannot be polled (a regular file): read it directly */
    bool stop;       /* a signal asked us to finish */
    bool quit;       /* :quit, or finished */
    int stdin_flags; /* fcntl flags of fd 0 at start, restored at the end */
    int eof_char;    /* the terminal's end-of-file key (Ctrl-D) */
    char partial[DESK_LINE_MAX];
    size_t partial_len;
    bool partial_too_long;
    desk_line_t *queue_head, *queue_tail;
    char *history_path;
    char prompt[300];

    /* handles on the connection's loop, started again after each reconnect:
     * the listening loop's tick and signals, and the keyboard */
    bool handles_started;
    listen_t listen;
    bool stdin_watched;
    uv_poll_t stdin_poll;

    /* the request in flight, and the conversation */
    desk_pending_t pend;
    uint64_t last_send_ms;
    bool subscribed;          /* asked for this branch's events on this connection */
    uint64_t subscribe_id;    /* its answer, not yet taken (0: none outstanding) */
    listen_seen_t events_seen; /* the events shown: the replay starts after the highest */
    int64_t subscribe_since;   /* the since_event_id of the Subscribe out (0: none) */
    int64_t replay_retry_since; /* a failed replay's since, asked again at replay_retry_ms */
    uint64_t replay_retry_ms;
    bool replay_retried;      /* the last replay failed once already: not again */
    Carrel__Response *lookup; /* a PatronGet answer waiting for its AccountGet */
    bool patron;              /* a patron is being served (checkout mode) */
    char patron_card[DESK_FIELD_MAX];
    char patron_name[160]; /* "Maria G.": the summary and the prompt */
    int patron_checked_out;
    bool refused; /* the last refused checkout, for :override */
    char refused_card[DESK_FIELD_MAX];
    char refused_barcode[DESK_FIELD_MAX];

    /* inquiry tallies (:q): the kinds, asked for once; a :q waiting for them; what the last
     * tally was (a bare :q repeats it); the service desk tallies go to */
    Carrel__Response *kinds;
    bool tally_waiting;
    char tally_wait[DESK_LINE_MAX];
    char last_kind[DESK_FIELD_MAX];
    int last_read;
    char last_channel[16];
    const char *service_desk;

    /* offline mode (offline.h; docs/OFFLINE.md "At the desk") */
    bool offline;                /* the daemon is unreachable: scans go to the journal */
    char *offline_dir;           /* NULL: no offline mode (offline_dir = off, or no HOME) */
    char *cache_path;            /* <offline_dir>/<workstation>.cache */
    Carrel__OfflineCache *cache; /* the last cache saved, NULL if none */
    int64_t offset_ms;           /* the server's clock minus ours, measured with the cache */
    journal_t journal;           /* open when offline_dir is */
    bool journal_ready;
    uint64_t cache_id;      /* OfflineCacheGet in flight (0: none) */
    int64_t cache_sent_ms;  /* wall clock, for the offset */
    uint64_t cache_next_ms; /* monotonic: the next refresh while online */
    uint64_t probe_ms;      /* monotonic: the next reconnect attempt while offline */
    unsigned probe_delay_ms;
    char clerk[JOURNAL_CLERK_MAX]; /* who is at the desk (the username), for the journal */
} desk_t;

/* libedit's callbacks carry no argument: the one desk of this process. */
extern desk_t *desk_current;

/* desk.c: a message for the clerk that is not an answer to a scan. */
void desk_notice(desk_t *d, const char *status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * desk_term.c: the terminal. On a terminal, input goes through libedit's
 * callback interface (line editing, history); elsewhere (a pipe, a file, a
 * scanner wedge on a serial line) lines are read without libedit. Input
 * callbacks only queue lines; the state machine takes them (desk_dequeue).
 */

/* Print `text` and a newline, around the line being edited. */
void desk_emit(desk_t *d, const char *text);
/* The prompt for the mode and the patron being served, redrawn if shown. */
void desk_update_prompt(desk_t *d);
/* Look at fd 0 before anything is read: a terminal, its flags, its end-of-file key. */
void desk_term_open(desk_t *d);
/* On a terminal: history loaded and libedit waiting for the first line. */
void desk_term_start(desk_t *d);
/* On a terminal: libedit removed and the history file saved. */
void desk_term_stop(desk_t *d);
/* Give fd 0 its flags back and drop lines not taken. */
void desk_term_close(desk_t *d);
/* Ctrl-C while a line is being typed drops that line: true when it was that. */
bool desk_term_interrupt(desk_t *d);
/* Watch fd 0 on the loop (or read it directly when it cannot be polled). */
void desk_input_watch(desk_t *d, uv_loop_t *loop);
void desk_input_unwatch(desk_t *d);
/* Read what is there on fd 0 now (without libedit; for stdin_sync). */
void desk_read_input(desk_t *d);
/* The next line typed or scanned (free it), or NULL. */
desk_line_t *desk_dequeue(desk_t *d);

#endif
