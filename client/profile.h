/*
 * profile: a desk client's connection settings, read from a "key = value"
 * file (keys: see profile.c; example: var/demo-client.conf). One profile per workstation.
 */
#ifndef CARREL_PROFILE_H
#define CARREL_PROFILE_H

#include "config.h"

typedef struct profile {
    char *host;
    long port;
    char *server_name; /* the name the server certificate must carry; default: host */
    char *ca_file;
    char *cert_file; /* the workstation's client certificate, if the server asks */
    char *key_file;
    char *workstation;
    char *user;
    char *password_file; /* for scripts: the password is the first line */
    char *password_env;  /* for scripts: name of an environment variable holding it */
    long timeout_s;
    char *keep_session; /* "yes", "no" or "auto" (yes when the password comes from the prompt) */
    char *service_desk; /* desk mode: the service desk inquiry tallies (:q) go to */
    char *offline_dir;  /* desk mode: the offline journal and cache (offline.h); "off": none */
} profile_t;

extern const conf_entry_t profile_table[];

/* Load defaults, then the file (relative paths in it are taken relative to the file). */
__attribute__((warn_unused_result)) int profile_load(profile_t *p, const char *path, char *err,
                                                     size_t errlen);
void profile_free(profile_t *p);

#endif
