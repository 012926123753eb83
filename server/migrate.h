/*
 * migrate: applies sql/migrations/NNN_name.sql files in order, each in its
 * own transaction, and records them with their checksums in
 * schema_migration; then, when they differ from the set last applied,
 * applies every .sql file of sql/rules/ (functions, triggers, views) again,
 * all in one transaction, and compiles every function. Runs once at start, before
 * the event loop, on its own blocking connection (nothing else is being
 * served yet). Refuses a database whose schema is newer than the newest file
 * this daemon knows, and an applied migration whose file was edited.
 */
#ifndef CARREL_MIGRATE_H
#define CARREL_MIGRATE_H

#include <stddef.h>
#include <stdio.h>

__attribute__((warn_unused_result)) int migrate_run(const char *conninfo, const char *sql_dir,
                                                    char *err, size_t errlen);

/*
 * What migrate_run would do, printed to plan one line per step ("would
 * apply migration NNN_name.sql", "would apply rules/x.sql", then a summary),
 * without changing the database (carreld --migrate-only --dry-run). Refuses
 * what migrate_run refuses (a newer schema, an edited migration). Returns 0,
 * or -1 with err set.
 */
__attribute__((warn_unused_result)) int migrate_dry_run(const char *conninfo, const char *sql_dir,
                                                        FILE *plan, char *err, size_t errlen);

/*
 * How many steps (migrations and rule files) a start would apply, read as
 * migrate_dry_run reads them; 0 when the schema is current. 0, or -1 with err
 * set (what migrate_dry_run refuses).
 */
__attribute__((warn_unused_result)) int migrate_pending(const char *conninfo, const char *sql_dir,
                                                        int *steps, char *err, size_t errlen);

/*
 * For the one-shot modes that use the schema (--init-admin, --issue-cert):
 * 0 when it is current; otherwise -1, said on stderr ("run carreld
 * --migrate-only first", naming mode), the database unchanged.
 */
__attribute__((warn_unused_result)) int
migrate_require_current(const char *conninfo, const char *sql_dir, const char *mode);

#endif
