#pragma once
// The embedded metadata store: one SQLite database file (WAL mode) behind MetadataStore.
//
// On disk: `db_path` plus SQLite's `<db_path>-wal` and `<db_path>-shm` beside it while open.
// The schema carries a version (PRAGMA user_version) and an application id; OpenSqliteStore
// applies every pending migration, each in its own transaction, so a data dir written by an older
// Hearth is upgraded in place and never loses data. A later schema change appends a migration in
// sqlite_store.cc and bumps kSqliteSchemaVersion; existing migrations are never edited.
//
// Durability: journal_mode=WAL with synchronous=NORMAL. A committed call survives a process
// crash; a power loss may drop the last few commits but never corrupts the file.
//
// Thread safety: the returned store is safe to use from several threads at once (one connection,
// serialised by a mutex). Another process may open the same file (e.g. a CLI); SQLite's file locks
// and a busy timeout arbitrate. Every call blocks on disk: call from a worker thread.
//
// Errors: every SQLite failure becomes IOError (disk, locking, corruption, not a database) or
// Internal (anything else), with sqlite3_errmsg in the message. CreateFunction on a taken name
// is AlreadyExists; missing functions are NotFound; an UpdateFunction revision mismatch is
// FailedPrecondition. ListFunctions with limit <= 0 is InvalidArgument.

#include <filesystem>

#include "common/status.h"
#include "store/metadata_store.h"

namespace hearth::store {

// The schema version this build writes (PRAGMA user_version after OpenSqliteStore).
inline constexpr int kSqliteSchemaVersion = 4;

// The PRAGMA application_id stamped into every Hearth metadata database ("HRTH").
inline constexpr int kSqliteApplicationId = 0x48525448;

// Opens (creating if absent, with any missing parent directories) the metadata database at
// `db_path` and brings its schema up to kSqliteSchemaVersion.
// Every error message names `db_path`. Fails with FailedPrecondition if the file belongs to
// another application or was written by a newer Hearth (schema version above
// kSqliteSchemaVersion); IOError if it cannot be opened, is not a SQLite database, or WAL mode
// cannot be enabled; PosixError's code if the parent directory cannot be created.
Result<MetadataStorePtr> OpenSqliteStore(const std::filesystem::path& db_path);

}  // namespace hearth::store
