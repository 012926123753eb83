#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "text.h"

/* Atomic: a reload sets it on the loop while worker threads log. */
static _Atomic int log_min_level = LOG_INFO;
static const char *const log_level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
/* The syslog priorities of the levels, as sd-daemon(3) prefixes: SD_DEBUG, SD_INFO,
 * SD_WARNING, SD_ERR. */
static const char *const log_level_prefixes[] = {"<7>", "<6>", "<4>", "<3>"};
/* -1 until the first line (or log_detect_stream) looks; then 1 when stderr is the
 * journal. Several threads may look at once: they find the same answer. */
static atomic_int log_to_journal = -1;

void log_detect_stream(void)
{
    /* systemd.exec(5): JOURNAL_STREAM is "DEVICE:INODE" of the stream it connected
     * stdout/stderr to; it counts only while stderr is still that stream (a child of
     * ours, or a shell redirection, may have inherited the variable but not the fd). */
    int journal = 0;
    const char *stream = getenv("JOURNAL_STREAM");
    struct stat st;
    if (stream != NULL && fstat(STDERR_FILENO, &st) == 0) {
        char mine[64];
        snprintf(mine, sizeof(mine), "%llu:%llu", (unsigned long long)st.st_dev,
                 (unsigned long long)st.st_ino);
        journal = strcmp(stream, mine) == 0;
    }
    atomic_store(&log_to_journal, journal);
}

void log_set_level(log_level_t level)
{
    atomic_store_explicit(&log_min_level, (int)level, memory_order_relaxed);
}

int log_level_parse(const char *name)
{
    static const char *const lower[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++)
        if (strcmp(name, lower[i]) == 0)
            return i;
    return -1;
}

/*
 * Under journald (stderr is the journal's stream) a line is
 *   <4>WARN  [c12] message
 * the sd-daemon(3) prefix giving journald the line's priority (so that
 * `journalctl -p warning` finds it) and no time, which journald records
 * itself. Anywhere else a line starts with its UTC time.
 *
 * The whole line is formatted first and written with one fprintf so lines
 * from the loop and from worker threads never interleave mid-line. Messages
 * quote what clients sent (user and workstation names, which as text may
 * hold line breaks and tabs) and database errors: line breaks, tabs and any
 * other control character or stray byte are written escaped (text_escape),
 * so that one event is one line and no client can forge a log line.
 */
void log_msg(log_level_t level, uint64_t conn_id, const char *fmt, ...)
{
    if ((int)level < atomic_load_explicit(&log_min_level, memory_order_relaxed))
        return;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    char who[32];
    if (conn_id)
        snprintf(who, sizeof(who), "c%llu", (unsigned long long)conn_id);
    else
        snprintf(who, sizeof(who), "-");
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    size_t n = strlen(text);
    while (n > 0 && text[n - 1] == '\n') /* libpq's messages end in one */
        text[--n] = '\0';
    struct buf safe = BUF_INIT;
    const char *line = text;
    if (text_escape(&safe, text, 0) == 0 && buf_append(&safe, "", 1) == 0)
        line = (const char *)safe.data;
    else
        text_sanitize(text, false); /* out of memory: '?' for what would be escaped */
    if (atomic_load(&log_to_journal) < 0)
        log_detect_stream();
    if (atomic_load(&log_to_journal) == 1)
        fprintf(stderr, "%s%-5s [%s] %s\n", log_level_prefixes[level], log_level_names[level], who,
                line);
    else
        fprintf(stderr, "%s.%03ldZ %-5s [%s] %s\n", when, (long)(tv.tv_usec / 1000),
                log_level_names[level], who, line);
    buf_free(&safe);
}
