#include "check.h"

#include <stdlib.h>

#include "log.h"

void check_failed(const char *expr, const char *file, int line, const char *func)
{
    log_error(0, "CHECK failed: %s at %s:%d (%s); aborting", expr, file, line, func);
    abort();
}
