/*
 * admin status: the daemon's metrics for a person (ServerStatus), the same
 * samples the Prometheus endpoint serves. Text groups them: connections,
 * queues, the database, logins, events and notices, then one row per
 * request type with its count, failures and latency. --json prints the
 * reply as it is (every sample, with its labels).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "output.h"

static int build_status(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    (void)argv;
    if (argc > 1)
        return cmd_usage(cli, call);
    CMD_BODY(call, server_status, SERVER_STATUS, carrel__server_status__init);
    return EXIT_OK;
}

/* The value of a label of a sample, or "" when it has none of that name. */
static const char *status_label(const Carrel__MetricSample *s, const char *name)
{
    for (size_t i = 0; i < s->n_label_names && i < s->n_label_values; i++)
        if (strcmp(s->label_names[i], name) == 0)
            return s->label_values[i];
    return "";
}

static void status_number(char *out, size_t n, double v)
{
    if (v > -1e15 && v < 1e15 && v == (double)(long long)v)
        snprintf(out, n, "%lld", (long long)v);
    else
        snprintf(out, n, "%.3f", v);
}

/* The families shown as one line each: "Title: label value, label value". */
static const struct {
    const char *family, *title, *label;
} status_lines[] = {
    {"carrel_connections", "Connections", "state"},
    {"carrel_requests_in_flight", "Requests in flight", NULL},
    {"carrel_logins_waiting", "Logins waiting", NULL},
    {"carrel_password_checks", "Password checks", "state"},
    {"carrel_db_connections", "Database connections", NULL},
    {"carrel_db_queries_waiting", "Queries waiting", NULL},
    {"carrel_logins_failed_total", "Logins failed", "reason"},
    {"carrel_logins_dropped_total", "Logins dropped", "reason"},
    {"carrel_logins_throttled_total", "Logins throttled", "key"},
    {"carrel_events_pushed_total", "Events pushed", "kind"},
    {"carrel_notices_sent_total", "Notices sent", "channel"},
    {"carrel_notices_failed_total", "Notices failed", "channel"},
    {"carrel_notice_relay_failures_total", "Relay unreachable", "channel"},
    {"carrel_notices_pending", "Notices pending", "channel"},
    {"carrel_replica_lag_seconds", "Replica lag (s)", NULL},
    {"carrel_replica_lag_bytes", "Replica lag (bytes)", NULL},
};

/* One line of a family: each sample as "labels value", comma-separated. */
static void status_line(const Carrel__ServerStatusReply *r, size_t k)
{
    char line[1024] = "";
    size_t used = 0;
    bool any = false, cut = false;
    for (size_t i = 0; i < r->n_samples && !cut; i++) {
        const Carrel__MetricSample *s = r->samples[i];
        if (s->name == NULL || strcmp(s->name, status_lines[k].family) != 0)
            continue;
        char value[32], what[160] = "";
        status_number(value, sizeof(value), s->value);
        if (status_lines[k].label) {
            snprintf(what, sizeof(what), "%s ", status_label(s, status_lines[k].label));
        } else {
            for (size_t j = 0; j < s->n_label_values; j++) {
                size_t w = strlen(what);
                snprintf(what + w, sizeof(what) - w, "%s ", s->label_values[j]);
            }
        }
        int n = snprintf(line + used, sizeof(line) - used, "%s%s%s", any ? ", " : "", what, value);
        if (n < 0 || (size_t)n >= sizeof(line) - used) {
            /* Full: end on the last whole sample, and say there is more. */
            line[used] = '\0';
            cut = true;
        } else {
            used += (size_t)n;
        }
        any = true;
    }
    if (!any)
        return;
    char title[64];
    snprintf(title, sizeof(title), "%s:", status_lines[k].title);
    printf("%-22s ", title);
    out_safe(stdout, line);
    printf("%s\n", cut ? (used > 0 ? ", ..." : "...") : "");
}

/* Request types: count, failures (any status but ok), mean and a bucket bound
 * at or above the 95th percentile, from the histogram. */
typedef struct status_route {
    const char *type;
    double total, failed, sum, count;
    double bounds[32], cum[32];
    int nb;
} status_route_t;

static status_route_t *status_route(status_route_t *rs, size_t *n, size_t max, const char *type)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(rs[i].type, type) == 0)
            return &rs[i];
    if (*n == max)
        return NULL;
    rs[*n] = (status_route_t){.type = type};
    return &rs[(*n)++];
}

static void status_requests(const Carrel__ServerStatusReply *r)
{
    size_t max = r->n_samples + 1, n = 0;
    status_route_t *rs = calloc(max, sizeof(*rs));
    if (rs == NULL)
        return;
    for (size_t i = 0; i < r->n_samples; i++) {
        const Carrel__MetricSample *s = r->samples[i];
        if (s->name == NULL)
            continue;
        bool total = strcmp(s->name, "carrel_requests_total") == 0;
        bool bucket = strcmp(s->name, "carrel_request_duration_seconds_bucket") == 0;
        bool sum = strcmp(s->name, "carrel_request_duration_seconds_sum") == 0;
        bool count = strcmp(s->name, "carrel_request_duration_seconds_count") == 0;
        if (!total && !bucket && !sum && !count)
            continue;
        status_route_t *x = status_route(rs, &n, max, status_label(s, "type"));
        if (x == NULL)
            continue;
        if (total) {
            x->total += s->value;
            if (strcmp(status_label(s, "status"), "ok") != 0)
                x->failed += s->value;
        } else if (bucket && x->nb < 32) {
            const char *le = status_label(s, "le");
            x->bounds[x->nb] = strcmp(le, "+Inf") == 0 ? -1 : strtod(le, NULL);
            x->cum[x->nb++] = s->value;
        } else if (sum) {
            x->sum = s->value;
        } else if (count) {
            x->count = s->value;
        }
    }
    static const char *const headers[] = {"Request", "Count", "Not ok", "Mean ms", "95% under ms"};
    table_t *t = table_new(5, headers);
    for (size_t i = 0; i < n; i++) {
        status_route_t *x = &rs[i];
        char total[24], failed[24], mean[24] = "", p95[24] = "";
        snprintf(total, sizeof(total), "%.0f", x->total);
        snprintf(failed, sizeof(failed), "%.0f", x->failed);
        if (x->count > 0) {
            snprintf(mean, sizeof(mean), "%.1f", x->sum / x->count * 1000.0);
            for (int b = 0; b < x->nb; b++)
                if (x->cum[b] >= 0.95 * x->count) {
                    if (x->bounds[b] < 0)
                        snprintf(p95, sizeof(p95), "over %g", x->bounds[b > 0 ? b - 1 : 0] * 1000);
                    else
                        snprintf(p95, sizeof(p95), "%g", x->bounds[b] * 1000.0);
                    break;
                }
        }
        const char *row[] = {x->type, total, failed, mean, p95};
        table_add(t, row);
    }
    if (n > 0) {
        printf("\nRequests since the daemon started (counts, mean and 95%% under: not a recent "
               "window):\n");
        table_print(t, stdout);
    }
    table_free(t);
    free(rs);
}

static void print_status(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    const Carrel__ServerStatusReply *s = r->server_status;
    if (s == NULL)
        return;
    char started[64] = "?";
    if (s->has_started_ms) {
        time_t t = (time_t)(s->started_ms / 1000);
        struct tm tm;
        if (gmtime_r(&t, &tm))
            strftime(started, sizeof(started), "%Y-%m-%d %H:%M:%S UTC", &tm);
    }
    printf("Server:                ");
    out_safe(stdout, s->server_name ? s->server_name : "?");
    printf(" (carreld ");
    out_safe(stdout, s->version ? s->version : "?");
    printf("), started %s\n", started);
    for (size_t k = 0; k < sizeof(status_lines) / sizeof(status_lines[0]); k++)
        status_line(s, k);
    status_requests(s);
}

const command_t status_commands[] = {
    {.path = "admin status",
     .build = build_status,
     .print_text = print_status,
     .needs_login = true,
     .usage = "",
     .summary = "the daemon's connections, queues, database pool and request counts "
                "(administrators; --json: every metric sample)"},
    {.path = NULL},
};
