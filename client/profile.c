#include "profile.h"

#include <libgen.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define P(field) offsetof(profile_t, field)

const conf_entry_t profile_table[] = {
    {"host", CONF_STRING, P(host), "127.0.0.1", 0, 0, "carreld host name or address", 0},
    {"port", CONF_INT, P(port), "7420", 1, 65535, "carreld port", 0},
    {"server_name", CONF_STRING, P(server_name), NULL, 0, 0,
     "name in the server certificate (default: host)", 0},
    {"ca_file", CONF_STRING, P(ca_file), NULL, 0, 0, "CA certificate that signed the server's", 0},
    {"cert_file", CONF_STRING, P(cert_file), NULL, 0, 0, "this workstation's client certificate",
     0},
    {"key_file", CONF_STRING, P(key_file), NULL, 0, 0, "its private key", 0},
    {"workstation", CONF_STRING, P(workstation), NULL, 0, 0, "registered workstation name", 0},
    {"user", CONF_STRING, P(user), NULL, 0, 0, "staff user name", 0},
    {"password_file", CONF_STRING, P(password_file), NULL, 0, 0,
     "file whose first line is the password (scripts only)", 0},
    {"password_env", CONF_STRING, P(password_env), NULL, 0, 0,
     "environment variable holding the password (scripts only)", 0},
    {"timeout_s", CONF_INT, P(timeout_s), "30", 1, 3600, "seconds to wait for an answer", 0},
    {"keep_session", CONF_STRING, P(keep_session), "auto", 0, 0,
     "keep a session token in PROFILE.session (mode 0600) so that the next commands need no "
     "password: yes, no, or auto (yes when the password is asked for on the terminal)",
     0},
    {"service_desk", CONF_STRING, P(service_desk), NULL, 0, 0,
     "desk mode: the service desk (its code) the inquiry tallies typed with :q go to", 0},
    {"offline_dir", CONF_STRING, P(offline_dir), NULL, 0, 0,
     "desk mode: the directory of the offline journal and cache (default "
     "$XDG_STATE_HOME/carrel, else ~/.local/state/carrel); off: no offline mode",
     0},
    CONF_END,
};

/* Make a path from the profile relative to the profile's own directory. */
static int profile_resolve(char **path, const char *profile_path)
{
    if (*path == NULL || (*path)[0] == '/')
        return 0;
    char *copy = strdup(profile_path);
    if (copy == NULL)
        return -1;
    const char *dir = dirname(copy);
    size_t n = strlen(dir) + strlen(*path) + 2;
    char *full = malloc(n);
    if (full == NULL) {
        free(copy);
        return -1;
    }
    snprintf(full, n, "%s/%s", dir, *path);
    free(copy);
    free(*path);
    *path = full;
    return 0;
}

int profile_load(profile_t *p, const char *path, char *err, size_t errlen)
{
    memset(p, 0, sizeof(*p));
    if (conf_defaults(profile_table, p) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (path == NULL)
        return 0;
    if (conf_load_file(profile_table, p, path, err, errlen) != 0)
        return -1;
    if (strcmp(p->keep_session, "auto") != 0 && strcmp(p->keep_session, "yes") != 0 &&
        strcmp(p->keep_session, "no") != 0) {
        snprintf(err, errlen, "%s: keep_session must be yes, no or auto", path);
        return -1;
    }
    if (profile_resolve(&p->ca_file, path) != 0 || profile_resolve(&p->cert_file, path) != 0 ||
        profile_resolve(&p->key_file, path) != 0 || profile_resolve(&p->password_file, path) != 0 ||
        (p->offline_dir && strcmp(p->offline_dir, "off") != 0 &&
         profile_resolve(&p->offline_dir, path) != 0)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

void profile_free(profile_t *p)
{
    conf_free(profile_table, p);
}
