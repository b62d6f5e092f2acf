// The system's SQLite (Debian: libsqlite3-dev to build, libsqlite3-0 to run).
#include <sqlite3.h>
