/*
 * password: where the client gets a password: a file, an environment
 * variable, or a prompt on the terminal with echo off.
 */
#ifndef CARREL_CLIENT_PASSWORD_H
#define CARREL_CLIENT_PASSWORD_H

#include <stddef.h>

/* Prompt on /dev/tty without echo. Returns malloc'd text or NULL (no terminal). */
char *password_prompt(const char *prompt);
/* First line of a file, malloc'd, or NULL. */
char *password_from_file(const char *path);
/* Wipe and free. */
void password_free(char *password);

#endif
