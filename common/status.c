#include "status.h"

#include "carrel.pb-c.h"

const char *status_name(int status)
{
    switch (status) {
#define X(suffix, name, exit_code)                                                                 \
    case CARREL__STATUS__STATUS_##suffix:                                                          \
        return name;
        CARREL_STATUS_TABLE(X)
#undef X
    }
    return "unknown";
}

int status_exit_code(int status)
{
    switch (status) {
#define X(suffix, name, exit_code)                                                                 \
    case CARREL__STATUS__STATUS_##suffix:                                                          \
        return exit_code;
        CARREL_STATUS_TABLE(X)
#undef X
    }
    return CARREL_EXIT_SERVER;
}
