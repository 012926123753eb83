#include "migrate.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <openssl/evp.h>

#include "log.h"
#include "util.h"

#define MIGRATE_LOCK_KEY "74200001"
#define MIGRATE_MAX      999
#define RULES_MAX        256
#define SQL_FILE_MAX     (16 * 1024 * 1024)
/*
 * The oldest schema this daemon upgrades. Migrations before it were written
 * when functions lived in them; their data moves call rules (hold_release)
 * as they were then, which sql/rules/ no longer defines at that point. A
 * database those files left below it goes through the last carreld with
 * them first (its rows have no checksums; ours always do).
 */
#define MIGRATE_BASELINE 16

/* One file of sql/migrations/ or sql/rules/. */
typedef struct sql_file {
    int version; /* migrations only */
    char name[128];
} sql_file_t;

static int migration_cmp(const void *a, const void *b)
{
    return ((const sql_file_t *)a)->version - ((const sql_file_t *)b)->version;
}

static int rule_cmp(const void *a, const void *b)
{
    return strcmp(((const sql_file_t *)a)->name, ((const sql_file_t *)b)->name);
}

/* Names are "[a-z0-9_]+.sql"; anything else in the directory is ignored. */
static bool sql_name_ok(const char *file, size_t from)
{
    size_t n = strlen(file);
    if (n <= from + 4 || n >= sizeof(((sql_file_t *)0)->name) || strcmp(file + n - 4, ".sql") != 0)
        return false;
    for (size_t i = from; i < n - 4; i++)
        if (!((file[i] >= 'a' && file[i] <= 'z') || (file[i] >= '0' && file[i] <= '9') ||
              file[i] == '_'))
            return false;
    return true;
}

/* Parse "NNN_name.sql"; returns the version or -1. */
static int migrate_parse_name(const char *file)
{
    if (strlen(file) < 9 || file[3] != '_' || !sql_name_ok(file, 4))
        return -1;
    for (int i = 0; i < 3; i++)
        if (file[i] < '0' || file[i] > '9')
            return -1;
    return (file[0] - '0') * 100 + (file[1] - '0') * 10 + (file[2] - '0');
}

/* The .sql files of dir: migrations (numbered) or rules (any valid name). */
static int sql_list(const char *dir, bool numbered, sql_file_t *out, int max, int *count, char *err,
                    size_t errlen)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        snprintf(err, errlen, "cannot read %s: %s", dir, strerror(errno));
        return -1;
    }
    *count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int v = numbered ? migrate_parse_name(e->d_name) : (sql_name_ok(e->d_name, 0) ? 0 : -1);
        if (v < 0)
            continue;
        if (*count == max) {
            closedir(d);
            snprintf(err, errlen, "too many files in %s", dir);
            return -1;
        }
        out[*count].version = v;
        util_strlcpy(out[*count].name, e->d_name, sizeof(out[*count].name));
        (*count)++;
    }
    closedir(d);
    qsort(out, (size_t)*count, sizeof(*out), numbered ? migration_cmp : rule_cmp);
    for (int i = 1; numbered && i < *count; i++)
        if (out[i].version == out[i - 1].version) {
            snprintf(err, errlen, "two migrations share version %03d: %s and %s", out[i].version,
                     out[i - 1].name, out[i].name);
            return -1;
        }
    return 0;
}

/* The file's text (caller frees) or NULL with err set. */
static char *sql_read(const char *dir, const char *name, char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    char *sql = util_read_file(path, SQL_FILE_MAX);
    if (sql == NULL)
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
    return sql;
}

/* SHA-256 of text as 64 hex digits; what schema_migration.checksum holds. */
static int sql_checksum(const char *text, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(text, strlen(text), md, &len, EVP_sha256(), NULL) != 1 || len != 32)
        return -1;
    for (unsigned int i = 0; i < len; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
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

static int migrate_exec_params(PGconn *pg, const char *sql, int n, const char *const *values,
                               const char *what, char *err, size_t errlen)
{
    PGresult *r = PQexecParams(pg, sql, n, NULL, values, NULL, NULL, 0);
    int rc = 0;
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        snprintf(err, errlen, "%s: %s", what, PQresultErrorMessage(r));
        util_chomp(err);
        rc = -1;
    }
    PQclear(r);
    return rc;
}

/* Roll back after a failure without losing the first error message. */
static void migrate_rollback(PGconn *pg)
{
    char ignored[64];
    (void)migrate_exec(pg, "ROLLBACK", "rollback", ignored, sizeof(ignored));
}

static int migrate_apply(PGconn *pg, const char *dir, const sql_file_t *m, char *err, size_t errlen)
{
    char *sql = sql_read(dir, m->name, err, errlen);
    if (sql == NULL)
        return -1;
    char sum[65];
    int rc = sql_checksum(sql, sum);
    if (rc != 0)
        snprintf(err, errlen, "cannot compute the checksum of %s", m->name);
    if (rc == 0)
        rc = migrate_exec(pg, "BEGIN", "begin", err, errlen);
    if (rc == 0)
        rc = migrate_exec(pg, sql, m->name, err, errlen);
    if (rc == 0) {
        char version[16];
        snprintf(version, sizeof(version), "%d", m->version);
        const char *values[3] = {version, m->name, sum};
        rc = migrate_exec_params(
            pg, "INSERT INTO schema_migration (version, name, checksum) VALUES ($1, $2, $3)", 3,
            values, "recording the migration", err, errlen);
    }
    if (rc == 0)
        rc = migrate_exec(pg, "COMMIT", "commit", err, errlen);
    else
        migrate_rollback(pg);
    free(sql);
    if (rc == 0)
        log_info(0, "applied migration %s", m->name);
    return rc;
}

/*
 * An applied migration must still read as it did when it was applied: the
 * schema it built is what the rules and the daemon's statements expect, and
 * an edit would silently differ between old and new databases. Rows recorded
 * before checksums existed get the file's checksum now.
 */
static int migrate_verify(PGconn *pg, const char *dir, const sql_file_t *m, const char *recorded,
                          FILE *plan, char *err, size_t errlen)
{
    char *sql = sql_read(dir, m->name, err, errlen);
    if (sql == NULL)
        return -1;
    char sum[65];
    int rc = sql_checksum(sql, sum);
    free(sql);
    if (rc != 0) {
        snprintf(err, errlen, "cannot compute the checksum of %s", m->name);
        return -1;
    }
    if (recorded == NULL && plan != NULL) {
        fprintf(plan, "would record the checksum of migration %s\n", m->name);
        return 0;
    }
    if (recorded == NULL) {
        char version[16];
        snprintf(version, sizeof(version), "%d", m->version);
        const char *values[2] = {sum, version};
        return migrate_exec_params(pg,
                                   "UPDATE schema_migration SET checksum = $1 WHERE version = $2",
                                   2, values, "recording a checksum", err, errlen);
    }
    if (strcmp(recorded, sum) != 0) {
        snprintf(err, errlen,
                 "migration %s was edited after it was applied (its checksum differs from the "
                 "one recorded); restore the file and make the change in a new migration",
                 m->name);
        return -1;
    }
    return 0;
}

/*
 * Functions, triggers and views live in sql/rules/, one file per domain.
 * Like a repeatable migration, the rule set is applied again whenever it
 * differs from the one last applied (schema_rules.checksum covers every
 * file's name and text), all in one transaction: a rule change is an edit
 * of one file, and a daemon never runs against half of a rule set. A start
 * with unchanged rules takes no locks on the tables their triggers sit on.
 */
/* Compiles every function of ours (not the extensions'), naming the one
 * that fails. */
#define RULES_VALIDATE                                                                             \
    "DO $$ DECLARE f record; BEGIN"                                                                \
    " FOR f IN SELECT p.oid, l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang"     \
    "           WHERE p.pronamespace = 'public'::regnamespace AND l.lanname IN ('plpgsql', 'sql')" \
    "             AND NOT EXISTS (SELECT 1 FROM pg_depend d"                                       \
    "                              WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid"      \
    "                                AND d.deptype = 'e')"                                         \
    " LOOP BEGIN"                                                                                  \
    "   IF f.lanname = 'plpgsql' THEN PERFORM plpgsql_validator(f.oid);"                           \
    "   ELSE PERFORM fmgr_sql_validator(f.oid); END IF;"                                           \
    " EXCEPTION WHEN OTHERS THEN"                                                                  \
    "   RAISE EXCEPTION 'function %: %', f.oid::regprocedure, SQLERRM;"                            \
    " END; END LOOP; END $$"

/* The rule set's checksum: SHA-256 over each file's name and text, in order. */
static int rules_checksum(const char *dir, const sql_file_t *files, int count, char out[65],
                          char *err, size_t errlen)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int rc = (md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1) ? 0 : -1;
    for (int i = 0; rc == 0 && i < count; i++) {
        char *sql = sql_read(dir, files[i].name, err, errlen);
        if (sql == NULL) {
            EVP_MD_CTX_free(md);
            return -1;
        }
        /* The NULs keep "a" + "bc" apart from "ab" + "c". */
        if (EVP_DigestUpdate(md, files[i].name, strlen(files[i].name) + 1) != 1 ||
            EVP_DigestUpdate(md, sql, strlen(sql) + 1) != 1)
            rc = -1;
        free(sql);
    }
    unsigned char sum[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (rc == 0 && (EVP_DigestFinal_ex(md, sum, &len) != 1 || len != 32))
        rc = -1;
    EVP_MD_CTX_free(md);
    if (rc != 0) {
        snprintf(err, errlen, "cannot compute the checksum of the rules in %s", dir);
        return -1;
    }
    for (unsigned int i = 0; i < len; i++)
        snprintf(out + 2 * i, 3, "%02x", sum[i]);
    return 0;
}

/* true when schema_rules already holds sum (the rules need not be applied). */
static int rules_current(PGconn *pg, const char *sum, bool *current, char *err, size_t errlen)
{
    const char *values[1] = {sum};
    PGresult *r = PQexecParams(pg, "SELECT 1 FROM schema_rules WHERE checksum = $1", 1, NULL,
                               values, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "reading schema_rules: %s", PQresultErrorMessage(r));
        util_chomp(err);
        PQclear(r);
        return -1;
    }
    *current = PQntuples(r) > 0;
    PQclear(r);
    return 0;
}

static int rules_run_files(PGconn *pg, const char *dir, const sql_file_t *files, int count,
                           char *err, size_t errlen)
{
    for (int i = 0; i < count; i++) {
        char *sql = sql_read(dir, files[i].name, err, errlen);
        if (sql == NULL)
            return -1;
        char what[160];
        snprintf(what, sizeof(what), "rules/%s", files[i].name);
        int rc = migrate_exec(pg, sql, what, err, errlen);
        free(sql);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/*
 * plan != NULL: a dry run (migrate_dry_run) that prints what would be
 * applied; have_table false there when schema_rules does not exist yet.
 */
static int rules_apply(PGconn *pg, const char *dir, FILE *plan, bool have_table, char *err,
                       size_t errlen)
{
    static sql_file_t files[RULES_MAX];
    int count = 0;
    char sum[65];
    bool current = false;
    if (sql_list(dir, false, files, RULES_MAX, &count, err, errlen) != 0 ||
        rules_checksum(dir, files, count, sum, err, errlen) != 0 ||
        (have_table && rules_current(pg, sum, &current, err, errlen) != 0))
        return -1;
    if (plan != NULL) {
        for (int i = 0; !current && i < count; i++)
            fprintf(plan, "would apply rules/%s\n", files[i].name);
        fprintf(plan,
                current ? "rules are current (%d file%s)\n"
                        : "rules would be applied again (%d file%s)\n",
                count, count == 1 ? "" : "s");
        return 0;
    }
    if (current) {
        log_info(0, "rules are current (%d file%s)", count, count == 1 ? "" : "s");
        return 0;
    }
    /* Bodies are checked once everything exists (the files come in any
     * order), before COMMIT: a rule that would fail to compile at a desk
     * stops the start instead. A table a running daemon keeps busy must not
     * hold the start forever. */
    int rc = migrate_exec(pg, "BEGIN", "begin", err, errlen);
    if (rc == 0)
        rc = migrate_exec(pg,
                          "SET LOCAL check_function_bodies = off; SET LOCAL lock_timeout = '60s'",
                          "settings", err, errlen);
    if (rc == 0)
        rc = rules_run_files(pg, dir, files, count, err, errlen);
    if (rc == 0)
        rc = migrate_exec(pg, "SET LOCAL check_function_bodies = on; " RULES_VALIDATE,
                          "checking the rules", err, errlen);
    if (rc == 0) {
        const char *values[1] = {sum};
        rc =
            migrate_exec_params(pg,
                                "INSERT INTO schema_rules (id, checksum) VALUES (1, $1)"
                                " ON CONFLICT (id) DO UPDATE SET checksum = $1, applied_at = now()",
                                1, values, "recording the rules", err, errlen);
    }
    if (rc == 0)
        rc = migrate_exec(pg, "COMMIT", "commit", err, errlen);
    else
        migrate_rollback(pg);
    if (rc == 0)
        log_info(0, "applied %d rule file%s", count, count == 1 ? "" : "s");
    return rc;
}

#define RECORDED_SQL "SELECT version, checksum FROM schema_migration ORDER BY version"

/* Reads schema_migration with sql (RECORDED_SQL, or a dry run's stand-in):
 * the highest version, which versions are recorded and their checksums
 * (NULL where none was recorded yet). */
static PGresult *migrate_recorded(PGconn *pg, const char *sql, char *err, size_t errlen)
{
    PGresult *r = PQexec(pg, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "reading schema_migration: %s", PQresultErrorMessage(r));
        util_chomp(err);
        PQclear(r);
        return NULL;
    }
    return r;
}

/*
 * Checks the recorded migrations against the files and applies the pending
 * ones. plan != NULL: a dry run that prints them instead, reading
 * schema_migration with recorded_sql; the same refusals apply.
 */
static int migrate_schema(PGconn *pg, const char *dir, FILE *plan, const char *recorded_sql,
                          char *err, size_t errlen)
{
    static sql_file_t files[MIGRATE_MAX];
    int count = 0;
    if (sql_list(dir, true, files, MIGRATE_MAX, &count, err, errlen) != 0)
        return -1;
    if (count == 0) {
        snprintf(err, errlen, "no migrations found in %s", dir);
        return -1;
    }
    PGresult *rec = migrate_recorded(pg, recorded_sql, err, errlen);
    if (rec == NULL)
        return -1;
    static int row_of[MIGRATE_MAX + 1];
    for (int v = 0; v <= MIGRATE_MAX; v++)
        row_of[v] = -1;
    int applied = 0;
    bool by_old_files = false; /* rows recorded by a carreld without checksums */
    for (int i = 0; i < PQntuples(rec); i++) {
        int v = atoi(PQgetvalue(rec, i, 0));
        by_old_files = by_old_files || PQgetisnull(rec, i, 1);
        if (v > applied)
            applied = v;
        if (v >= 0 && v <= MIGRATE_MAX)
            row_of[v] = i;
    }
    int rc = 0;
    int newest = files[count - 1].version;
    if (by_old_files && applied < MIGRATE_BASELINE) {
        snprintf(err, errlen,
                 "the database schema is at version %03d; this carreld upgrades databases from "
                 "version %03d (or empty ones): first start a carreld from commit 5f0ecc9, which "
                 "brings it to %03d",
                 applied, MIGRATE_BASELINE, MIGRATE_BASELINE);
        rc = -1;
    } else if (applied > newest) {
        snprintf(err, errlen,
                 "the database schema is at version %03d, newer than this carreld knows "
                 "(%03d); run a carreld at least as new as the one that upgraded it",
                 applied, newest);
        rc = -1;
    }
    /* A file numbered below what is applied but never applied itself was
     * added out of order; applying it late could be wrong, skipping it is. */
    for (int i = 0; rc == 0 && i < count; i++) {
        int row = row_of[files[i].version];
        if (files[i].version < applied && row < 0) {
            snprintf(err, errlen,
                     "migration %s is numbered below the applied version %03d but was never "
                     "applied; give it a number above %03d",
                     files[i].name, applied, applied);
            rc = -1;
        } else if (row >= 0) {
            const char *sum = PQgetisnull(rec, row, 1) ? NULL : PQgetvalue(rec, row, 1);
            rc = migrate_verify(pg, dir, &files[i], sum, plan, err, errlen);
        }
    }
    PQclear(rec);
    int pending = 0;
    for (int i = 0; rc == 0 && i < count; i++) {
        if (files[i].version <= applied)
            continue;
        pending++;
        if (plan != NULL)
            fprintf(plan, "would apply migration %s\n", files[i].name);
        else
            rc = migrate_apply(pg, dir, &files[i], err, errlen);
    }
    if (rc == 0 && plan != NULL)
        fprintf(plan,
                "database schema is at version %03d, this carreld's newest is %03d: %d migration%s "
                "to apply\n",
                applied, newest, pending, pending == 1 ? "" : "s");
    else if (rc == 0 && applied == newest)
        log_info(0, "database schema is current (version %03d)", newest);
    return rc;
}

int migrate_run(const char *conninfo, const char *sql_dir, char *err, size_t errlen)
{
    char migrations[4096], rules[4096];
    snprintf(migrations, sizeof(migrations), "%s/migrations", sql_dir);
    snprintf(rules, sizeof(rules), "%s/rules", sql_dir);
    PGconn *pg = PQconnectdb(conninfo);
    if (PQstatus(pg) != CONNECTION_OK) {
        snprintf(err, errlen, "cannot connect to the database: %s", PQerrorMessage(pg));
        util_chomp(err);
        PQfinish(pg);
        return -1;
    }
    int rc = migrate_exec(pg, "SET client_min_messages = warning", "settings", err, errlen);
    /* Two daemons starting at once must not both migrate, nor one apply
     * rules while the other changes the tables under them. */
    if (rc == 0)
        rc = migrate_exec(pg, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", "lock", err, errlen);
    if (rc == 0)
        rc = migrate_exec(pg,
                          "CREATE TABLE IF NOT EXISTS schema_migration ("
                          " version integer PRIMARY KEY,"
                          " name text NOT NULL,"
                          " applied_at timestamptz NOT NULL DEFAULT now());"
                          "ALTER TABLE schema_migration ADD COLUMN IF NOT EXISTS checksum text;"
                          "CREATE TABLE IF NOT EXISTS schema_rules ("
                          " id integer PRIMARY KEY CHECK (id = 1),"
                          " checksum text NOT NULL,"
                          " applied_at timestamptz NOT NULL DEFAULT now())",
                          "schema_migration", err, errlen);
    if (rc == 0)
        rc = migrate_schema(pg, migrations, NULL, RECORDED_SQL, err, errlen);
    if (rc == 0)
        rc = rules_apply(pg, rules, NULL, true, err, errlen);
    PQfinish(pg); /* also releases the advisory lock */
    return rc;
}

/*
 * The dry run reads in one read-only transaction (one snapshot, and the
 * server refuses any write, so nothing here can change the database). It
 * takes no advisory lock: it must not wait behind a daemon that is starting,
 * and what it prints is a plan, not a promise. A database that has never
 * been migrated has neither bookkeeping table; one migrated by a carreld
 * from before checksums has no checksum column.
 */
int migrate_dry_run(const char *conninfo, const char *sql_dir, FILE *plan, char *err, size_t errlen)
{
    char migrations[4096], rules[4096];
    snprintf(migrations, sizeof(migrations), "%s/migrations", sql_dir);
    snprintf(rules, sizeof(rules), "%s/rules", sql_dir);
    PGconn *pg = PQconnectdb(conninfo);
    if (PQstatus(pg) != CONNECTION_OK) {
        snprintf(err, errlen, "cannot connect to the database: %s", PQerrorMessage(pg));
        util_chomp(err);
        PQfinish(pg);
        return -1;
    }
    int rc = migrate_exec(pg,
                          "SET client_min_messages = warning;"
                          " SET default_transaction_read_only = on;"
                          " BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
                          "settings", err, errlen);
    PGresult *r = NULL;
    if (rc == 0) {
        r = PQexec(pg, "SELECT to_regclass('schema_migration') IS NOT NULL,"
                       " EXISTS (SELECT 1 FROM pg_attribute"
                       "          WHERE attrelid = to_regclass('schema_migration')"
                       "            AND attname = 'checksum' AND NOT attisdropped),"
                       " to_regclass('schema_rules') IS NOT NULL");
        if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
            snprintf(err, errlen, "reading the catalog: %s", PQresultErrorMessage(r));
            util_chomp(err);
            rc = -1;
        }
    }
    bool have_migrations = rc == 0 && PQgetvalue(r, 0, 0)[0] == 't';
    bool have_checksums = rc == 0 && PQgetvalue(r, 0, 1)[0] == 't';
    bool have_rules = rc == 0 && PQgetvalue(r, 0, 2)[0] == 't';
    PQclear(r);
    const char *recorded_sql =
        !have_migrations  ? "SELECT 0, NULL::text WHERE false"
        : !have_checksums ? "SELECT version, NULL::text FROM schema_migration ORDER BY version"
                          : RECORDED_SQL;
    if (rc == 0)
        rc = migrate_schema(pg, migrations, plan, recorded_sql, err, errlen);
    if (rc == 0)
        rc = rules_apply(pg, rules, plan, have_rules, err, errlen);
    if (rc == 0)
        rc = migrate_exec(pg, "ROLLBACK", "rollback", err, errlen);
    PQfinish(pg);
    return rc;
}

/*
 * The steps a start would take, counted from the dry run's plan (the same
 * reading and refusals): the one-shot modes that use the schema
 * (--init-admin, --issue-cert) refuse to run ahead of an upgrade.
 */
int migrate_pending(const char *conninfo, const char *sql_dir, int *steps, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    FILE *plan = open_memstream(&text, &len);
    if (plan == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = migrate_dry_run(conninfo, sql_dir, plan, err, errlen);
    if (fclose(plan) != 0 && rc == 0) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
    }
    *steps = 0;
    for (const char *line = text; rc == 0 && line && *line;) {
        if (strncmp(line, "would apply ", 12) == 0)
            (*steps)++;
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    free(text);
    return rc;
}

int migrate_require_current(const char *conninfo, const char *sql_dir, const char *mode)
{
    char err[1024];
    int steps = 0;
    if (migrate_pending(conninfo, sql_dir, &steps, err, sizeof(err)) != 0) {
        fprintf(stderr, "carreld: %s\n", err);
        return -1;
    }
    if (steps > 0) {
        fprintf(stderr,
                "carreld: the database schema is behind this carreld (%d step%s pending: see "
                "carreld --migrate-only --dry-run); %s changes no schema: run carreld "
                "--migrate-only first (OPERATIONS.md, upgrading)\n",
                steps, steps == 1 ? "" : "s", mode);
        return -1;
    }
    return 0;
}
