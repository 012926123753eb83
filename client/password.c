#include "password.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "util.h"

char *password_prompt(const char *prompt)
{
    int fd = open("/dev/tty", O_RDWR | O_NOCTTY);
    if (fd < 0)
        return NULL;
    struct termios old, quiet;
    int have_term = tcgetattr(fd, &old) == 0;
    if (have_term) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        quiet.c_lflag |= ECHONL;
        tcsetattr(fd, TCSAFLUSH, &quiet);
    }
    if (write(fd, prompt, strlen(prompt)) < 0) {
        /* nothing useful to do: the read below still works */
    }
    char line[1024];
    size_t n = 0;
    char c;
    while (n + 1 < sizeof(line) && read(fd, &c, 1) == 1 && c != '\n')
        line[n++] = c;
    line[n] = '\0';
    if (have_term)
        tcsetattr(fd, TCSAFLUSH, &old);
    close(fd);
    char *out = util_xstrdup(line);
    OPENSSL_cleanse(line, sizeof(line));
    return out;
}

char *password_from_file(const char *path)
{
    char *text = util_read_file(path, 4096);
    if (text == NULL)
        return NULL;
    char *nl = strchr(text, '\n');
    if (nl)
        *nl = '\0';
    util_chomp(text);
    return text;
}

void password_free(char *password)
{
    if (password) {
        OPENSSL_cleanse(password, strlen(password));
        free(password);
    }
}
