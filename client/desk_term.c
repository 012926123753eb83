/*
 * desk_term: the terminal side of `carrel desk` (desk.h): lines in, and the
 * lines the desk prints drawn around the line being typed.
 *
 * On a terminal, input goes through libedit's callback interface (line
 * editing, history); anything printed while a line is being typed clears
 * that line first and redraws the prompt and the partial input after
 * (desk_emit). Elsewhere (a pipe, a file, a scanner wedge on a serial line)
 * lines are read without libedit and split here. Either way a line only
 * goes to the queue; the state machine (desk.c) takes lines one at a time,
 * when nothing is in flight.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <editline/readline.h>

#include "desk.h"
#include "text.h"
#include "util.h"

desk_t *desk_current;

/*
 * Print `text` (one or more lines, no final newline) and a newline. On a
 * terminal with a line being edited, the line is cleared first and the
 * prompt and partial input are drawn again after, so output never lands in
 * the middle of what the clerk is typing.
 */
void desk_emit(desk_t *d, const char *text)
{
    if (d->rl_active)
        fputs("\r\033[K", stdout);
    /* Titles and messages come from the server (and titles from imported
     * records): control characters would move the cursor or worse. */
    out_safe(stdout, text);
    fputc('\n', stdout);
    fflush(stdout);
    if (d->rl_active)
        rl_forced_update_display();
}

void desk_update_prompt(desk_t *d)
{
    text_sanitize(d->patron_name, false); /* from the server; libedit prints the prompt raw */
    const char *offline = d->offline ? "OFFLINE " : ""; /* unmistakable: scans are journaled */
    if (d->mode == DESK_MODE_CHECKIN)
        snprintf(d->prompt, sizeof(d->prompt), "%scheckin> ", offline);
    else if (d->patron)
        snprintf(d->prompt, sizeof(d->prompt), "%scheckout %s> ", offline, d->patron_name);
    else
        snprintf(d->prompt, sizeof(d->prompt), "%scheckout> ", offline);
    if (d->rl_active) {
        rl_set_prompt(d->prompt);
        fputs("\r\033[K", stdout); /* libedit redraws from where it thinks it is */
        fflush(stdout);
        rl_forced_update_display();
    }
}

/* ---- input ---- */

static void desk_queue(desk_t *d, const char *text, size_t len)
{
    desk_line_t *l = malloc(sizeof(*l) + len + 1);
    if (l == NULL) {
        desk_notice(d, "local_error", "Out of memory: a line was dropped.");
        return;
    }
    memcpy(l->text, text, len);
    l->text[len] = '\0';
    l->next = NULL;
    if (d->queue_tail)
        d->queue_tail->next = l;
    else
        d->queue_head = l;
    d->queue_tail = l;
}

desk_line_t *desk_dequeue(desk_t *d)
{
    desk_line_t *l = d->queue_head;
    if (l) {
        d->queue_head = l->next;
        if (d->queue_head == NULL)
            d->queue_tail = NULL;
    }
    return l;
}

/* Bytes read without libedit: split into lines. */
static void desk_feed(desk_t *d, const char *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = data[i];
        if (c == '\n') {
            if (d->partial_too_long)
                desk_notice(d, "usage_error", "A line longer than %d bytes was ignored.",
                            DESK_LINE_MAX - 1);
            else
                desk_queue(d, d->partial, d->partial_len);
            d->partial_len = 0;
            d->partial_too_long = false;
        } else if (d->partial_len < sizeof(d->partial) - 1) {
            d->partial[d->partial_len++] = c;
        } else {
            d->partial_too_long = true;
        }
    }
}

static void desk_input_ended(desk_t *d)
{
    if (d->partial_len > 0 && !d->partial_too_long)
        desk_queue(d, d->partial, d->partial_len); /* a last line without its newline */
    d->partial_len = 0;
    d->input_eof = true;
    if (d->stdin_watched) {
        uv_poll_stop(&d->stdin_poll);
    }
}

/* Read what is there on fd 0 (without libedit). */
void desk_read_input(desk_t *d)
{
    char data[4096];
    ssize_t n = read(STDIN_FILENO, data, sizeof(data));
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        desk_input_ended(d);
        return;
    }
    desk_feed(d, data, (size_t)n);
}

/* One byte from the terminal, waiting for it if need be (fd 0 is non-blocking). */
static int desk_read_byte(int fd, unsigned char *b)
{
    for (;;) {
        ssize_t n = read(fd, b, 1);
        if (n == 1)
            return 1;
        if (n == 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, -1) < 0 && errno != EINTR)
            return -1;
    }
}

/*
 * libedit's getc: one character, UTF-8 decoded (libedit takes what this
 * returns as a wide character). libedit's callback interface ignores the
 * end-of-file key on an empty line, so it is caught here: Ctrl-D on an empty
 * line ends the session like :quit.
 */
static int desk_getc(FILE *in)
{
    desk_t *d = desk_current;
    int fd = fileno(in);
    unsigned char b;
    if (desk_read_byte(fd, &b) != 1) {
        d->input_eof = true;
        return EOF;
    }
    if (b == d->eof_char && rl_end == 0) {
        d->input_eof = true;
        return EOF;
    }
    int more = b >= 0xF0 && b < 0xF8   ? 3
               : b >= 0xE0 && b < 0xF0 ? 2
               : b >= 0xC0 && b < 0xE0 ? 1
                                       : 0;
    if (more == 0)
        return b;
    unsigned int cp = b & (0x3Fu >> more);
    for (int i = 0; i < more; i++) {
        if (desk_read_byte(fd, &b) != 1) {
            d->input_eof = true;
            return EOF;
        }
        if ((b & 0xC0) != 0x80)
            return '?';
        cp = (cp << 6) | (b & 0x3Fu);
    }
    return (int)cp;
}

/* A whole line from libedit (NULL at end of input). We own `line`. */
static void desk_rl_line(char *line)
{
    desk_t *d = desk_current;
    d->line_done = true;
    if (line == NULL) {
        d->input_eof = true;
        return;
    }
    if (line[0] != '\0' && line[0] != ' ') {
        /* History holds every line for this session (up arrow); the file keeps only
         * commands, see desk_history_save. */
        const HIST_ENTRY *last =
            history_length > 0 ? history_get(history_base + history_length - 1) : NULL;
        if (last == NULL || last->line == NULL || strcmp(last->line, line) != 0)
            add_history(line);
    }
    desk_queue(d, line, strlen(line));
    free(line);
}

static void desk_rl_start(desk_t *d)
{
    rl_callback_handler_install(d->prompt, desk_rl_line);
    /* A new line is empty; libedit updates these only after the next key. */
    rl_point = rl_end = 0;
    d->rl_active = true;
}

static void desk_rl_stop(desk_t *d)
{
    if (!d->rl_active)
        return;
    d->rl_active = false;
    rl_callback_handler_remove();
}

static void desk_stdin_cb(uv_poll_t *h, int status, int events)
{
    desk_t *d = h->data;
    (void)events;
    if (status < 0) {
        desk_input_ended(d);
        return;
    }
    if (!d->tty) {
        desk_read_input(d);
        return;
    }
    d->line_done = false;
    rl_callback_read_char();
    if (d->input_eof) {
        desk_rl_stop(d);
        fputc('\n', stdout);
        fflush(stdout);
        desk_input_ended(d);
    } else if (d->line_done) {
        /* libedit leaves the terminal as it was for the line just ended; start the next
         * one now, so the prompt shows while the answer is on its way. */
        desk_rl_stop(d);
        desk_rl_start(d);
    }
}

/*
 * Only commands go to the history file, never scans, :patron or :override:
 * a file of card numbers next to the items lent to them would be a record of
 * who read what, which the library keeps nowhere (the server forgets returned
 * loans unless the patron asked). The session's history has every line.
 */
static bool desk_history_keepable(const char *line)
{
    return line[0] == ':' && strncasecmp(line, ":patron", 7) != 0 &&
           strncasecmp(line, ":override", 9) != 0;
}

/* ---- history file ---- */

static void desk_history_load(desk_t *d)
{
    const char *home = getenv("HOME");
    if (home == NULL || home[0] == '\0')
        return;
    if (asprintf(&d->history_path, "%s/.carrel_desk_history", home) < 0) {
        d->history_path = NULL;
        return;
    }
    stifle_history(DESK_HISTORY_KEEP);
    (void)read_history(d->history_path); /* none yet is fine */
}

static void desk_history_save(desk_t *d)
{
    if (d->history_path == NULL) {
        clear_history();
        return;
    }
    int n = history_length;
    char **keep = calloc((size_t)n + 1, sizeof(*keep));
    int kept = 0;
    for (int i = 0; keep && i < n; i++) {
        const HIST_ENTRY *e = history_get(history_base + i);
        if (e && e->line && desk_history_keepable(e->line))
            keep[kept++] = util_xstrdup(e->line);
    }
    clear_history();
    for (int i = 0; i < kept; i++) {
        add_history(keep[i]);
        free(keep[i]);
    }
    free(keep);
    mode_t old = umask(077);
    (void)write_history(d->history_path);
    umask(old);
    clear_history();
    free(d->history_path);
    d->history_path = NULL;
}

void desk_term_open(desk_t *d)
{
    d->tty = isatty(STDIN_FILENO) == 1;
    d->stdin_flags = fcntl(STDIN_FILENO, F_GETFL);
    d->eof_char = 4;
    if (d->tty) {
        struct termios t;
        if (tcgetattr(STDIN_FILENO, &t) == 0 && t.c_cc[VEOF] != 0)
            d->eof_char = t.c_cc[VEOF];
    }
}

void desk_term_start(desk_t *d)
{
    if (!d->tty)
        return;
    rl_readline_name = "carrel-desk";
    rl_catch_signals = 0; /* ours (desk_signal in desk.c) */
    rl_getc_function = desk_getc;
    desk_history_load(d);
    desk_rl_start(d);
}

void desk_term_stop(desk_t *d)
{
    if (!d->tty)
        return;
    desk_rl_stop(d);
    desk_history_save(d);
}

void desk_term_close(desk_t *d)
{
    if (d->stdin_flags != -1)
        (void)fcntl(STDIN_FILENO, F_SETFL, d->stdin_flags);
    desk_line_t *l;
    while ((l = desk_dequeue(d)) != NULL)
        free(l);
}

bool desk_term_interrupt(desk_t *d)
{
    if (!d->rl_active)
        return false;
    /* Ctrl-C at the prompt drops the line being typed, as in a shell. */
    desk_rl_stop(d);
    fputs("^C\n", stdout);
    fflush(stdout);
    desk_rl_start(d);
    return true;
}

void desk_input_watch(desk_t *d, uv_loop_t *loop)
{
    d->stdin_watched = false;
    if (d->input_eof || d->stdin_sync)
        return;
    int rc = uv_poll_init(loop, &d->stdin_poll, STDIN_FILENO);
    if (rc == 0) {
        d->stdin_poll.data = d;
        uv_poll_start(&d->stdin_poll, UV_READABLE | UV_DISCONNECT, desk_stdin_cb);
        d->stdin_watched = true;
    } else {
        /* A regular file (or /dev/null) cannot be polled; it never blocks either. */
        d->stdin_sync = true;
    }
}

void desk_input_unwatch(desk_t *d)
{
    if (d->stdin_watched && !uv_is_closing((uv_handle_t *)&d->stdin_poll))
        uv_close((uv_handle_t *)&d->stdin_poll, NULL);
    d->stdin_watched = false;
}
