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

__attribute__((warn_unused_result)) int migrate_run(const char *conninfo, const char *sql_dir,
                                                    char *err, size_t errlen);

#endif
