#include "cli.h"
const command_t offline_commands[] = {{.path = NULL}};
