#include <sqlite3.h>

// sqlite3_config is variadic; Swift can only call functions with fixed arguments.
static inline int csqlite_config_memstatus(int enabled) {
    return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, enabled);
}
