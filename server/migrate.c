#include "migrate.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "log.h"
#include "util.h"

#define MIGRATE_LOCK_KEY "74200001"
#define MIGRATE_MAX      999

typedef struct migration {
    int version;
    char name[128];
} migration_t;

static int migration_cmp(const void *a, const void *b)
{
    return ((const migration_t *)a)->version - ((const migration_t *)b)->version;
}

/* Parse "NNN_name.sql"; returns the version or -1. */
static int migrate_parse_name(const char *file)
{
    size_t n = strlen(file);
    if (n < 9 || strcmp(file + n - 4, ".sql") != 0 || file[3] != '_')
        return -1;
    for (int i = 0; i < 3; i++)
        if (file[i] < '0' || file[i] > '9')
            return -1;
    for (size_t i = 4; i < n - 4; i++)
        if (!((file[i] >= 'a' && file[i] <= 'z') || (file[i] >= '0' && file[i] <= '9') ||
              file[i] == '_'))
            return -1;
    return (file[0] - '0') * 100 + (file[1] - '0') * 10 + (file[2] - '0');
}

static int migrate_list(const char *dir, migration_t *out, int *count, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        snprintf(err, errlen, "cannot read migrations in %s: %s", dir, strerror(errno));
        return -1;
    }
    *count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int v = migrate_parse_name(e->d_name);
        if (v < 0)
            continue;
        if (*count == MIGRATE_MAX) {
            closedir(d);
            snprintf(err, errlen, "too many migrations in %s", dir);
            return -1;
        }
        out[*count].version = v;
        util_strlcpy(out[*count].name, e->d_name, sizeof(out[*count].name));
        (*count)++;
    }
    closedir(d);
    qsort(out, (size_t)*count, sizeof(*out), migration_cmp);
    for (int i = 1; i < *count; i++)
        if (out[i].version == out[i - 1].version) {
            snprintf(err, errlen, "two migrations share version %03d: %s and %s", out[i].version,
                     out[i - 1].name, out[i].name);
            return -1;
        }
    return 0;
}

static int migrate_exec(PGconn *pg, const char *sql, const char *what, char *err, size_t errlen)
{
    PGresult *r = PQexec(pg, sql);
    ExecStatusType st = PQresultStatus(r);
    int rc = 0;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "%s: %s", what, PQresultErrorMessage(r));
        util_chomp(err);
        rc = -1;
    }
    PQclear(r);
    return rc;
}

static int migrate_apply(PGconn *pg, const char *dir, const migration_t *m, char *err,
                         size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, m->name);
    char *sql = util_read_file(path, 16 * 1024 * 1024);
    if (sql == NULL) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    int rc = migrate_exec(pg, "BEGIN", "begin", err, errlen);
    if (rc == 0)
        rc = migrate_exec(pg, sql, m->name, err, errlen);
    if (rc == 0) {
        char version[16];
        snprintf(version, sizeof(version), "%d", m->version);
        const char *values[2] = {version, m->name};
        PGresult *r =
            PQexecParams(pg, "INSERT INTO schema_migration (version, name) VALUES ($1, $2)", 2,
                         NULL, values, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            snprintf(err, errlen, "recording %s: %s", m->name, PQresultErrorMessage(r));
            rc = -1;
        }
        PQclear(r);
    }
    if (rc == 0)
        rc = migrate_exec(pg, "COMMIT", "commit", err, errlen);
    else {
        char ignored[64];
        (void)migrate_exec(pg, "ROLLBACK", "rollback", ignored, sizeof(ignored));
    }
    free(sql);
    if (rc == 0)
        log_info(0, "applied migration %s", m->name);
    return rc;
}

int migrate_run(const char *conninfo, const char *sql_dir, char *err, size_t errlen)
{
    static migration_t files[MIGRATE_MAX];
    int count = 0;
    if (migrate_list(sql_dir, files, &count, err, errlen) != 0)
        return -1;
    if (count == 0) {
        snprintf(err, errlen, "no migrations found in %s", sql_dir);
        return -1;
    }
    PGconn *pg = PQconnectdb(conninfo);
    if (PQstatus(pg) != CONNECTION_OK) {
        snprintf(err, errlen, "cannot connect to the database: %s", PQerrorMessage(pg));
        util_chomp(err);
        PQfinish(pg);
        return -1;
    }
    int rc = migrate_exec(pg, "SET client_min_messages = warning", "settings", err, errlen);
    /* Two daemons starting at once must not both migrate. */
    if (rc == 0)
        rc = migrate_exec(pg, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", "lock", err, errlen);
    if (rc == 0)
        rc = migrate_exec(pg,
                          "CREATE TABLE IF NOT EXISTS schema_migration ("
                          " version integer PRIMARY KEY,"
                          " name text NOT NULL,"
                          " applied_at timestamptz NOT NULL DEFAULT now())",
                          "schema_migration", err, errlen);
    int applied = 0;
    static bool recorded[MIGRATE_MAX + 1];
    memset(recorded, 0, sizeof(recorded));
    if (rc == 0) {
        PGresult *r = PQexec(pg, "SELECT version FROM schema_migration");
        if (PQresultStatus(r) == PGRES_TUPLES_OK) {
            for (int i = 0; i < PQntuples(r); i++) {
                int v = atoi(PQgetvalue(r, i, 0));
                if (v > applied)
                    applied = v;
                if (v >= 0 && v <= MIGRATE_MAX)
                    recorded[v] = true;
            }
        } else {
            snprintf(err, errlen, "reading schema_migration: %s", PQresultErrorMessage(r));
            rc = -1;
        }
        PQclear(r);
    }
    /* A file numbered below what is applied but never applied itself was
     * added out of order; applying it late could be wrong, skipping it is. */
    for (int i = 0; rc == 0 && i < count; i++)
        if (files[i].version < applied && !recorded[files[i].version]) {
            snprintf(err, errlen,
                     "migration %s is numbered below the applied version %03d but was never "
                     "applied; give it a number above %03d",
                     files[i].name, applied, applied);
            rc = -1;
        }
    int newest = files[count - 1].version;
    if (rc == 0 && applied > newest) {
        snprintf(err, errlen,
                 "the database schema is at version %03d, newer than this carreld knows "
                 "(%03d); run a carreld at least as new as the one that upgraded it",
                 applied, newest);
        rc = -1;
    }
    for (int i = 0; rc == 0 && i < count; i++)
        if (files[i].version > applied)
            rc = migrate_apply(pg, sql_dir, &files[i], err, errlen);
    if (rc == 0 && applied == newest)
        log_info(0, "database schema is current (version %03d)", newest);
    PQfinish(pg); /* also releases the advisory lock */
    return rc;
}
