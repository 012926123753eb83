#include "status.h"

#include "carrel.pb-c.h"

const char *status_name(int status)
{
    switch (status) {
#define X(suffix, name)                                                                            \
    case CARREL__STATUS__STATUS_##suffix:                                                          \
        return name;
        CARREL_STATUS_TABLE(X)
#undef X
    }
    return "unknown";
}
