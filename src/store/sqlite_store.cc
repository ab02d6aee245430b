#include "store/sqlite_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <iterator>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "config/function_config.h"

namespace hearth::store {
namespace {

using config::AliasConfig;
using config::FunctionConfig;

// Long enough to ride out another process's checkpoint or write, short enough that a wedged
// lock holder surfaces as an error instead of a hang.
constexpr int kBusyTimeoutMs = 5000;

// ---------------------------------------------------------------------------------------------
// Errors

// Failures of the file, its locks or its contents are IOError; everything else (misuse, bad SQL,
// constraint violations nobody expected) is Internal.
StatusCode CodeFor(int rc) {
  switch (rc & 0xff) {
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_PERM:
    case SQLITE_PROTOCOL:
    case SQLITE_NOLFS:
      return StatusCode::kIOError;
    default:
      return StatusCode::kInternal;
  }
}

// "sqlite: <context>: <sqlite3_errmsg> (code N)". The connection's errmsg describes its latest
// failure, which is this one because callers hold the store mutex; if the connection has moved
// on (or there is none), SQLite's generic text for `rc` stands in.
Status SqliteError(sqlite3* db, int rc, std::string_view context) {
  const char* text = nullptr;
  if (db != nullptr && (sqlite3_extended_errcode(db) & 0xff) == (rc & 0xff)) {
    text = sqlite3_errmsg(db);
  } else {
    text = sqlite3_errstr(rc);
  }
  return Status(CodeFor(rc), fmt::format("sqlite: {}: {} (code {})", context, text, rc));
}

// ---------------------------------------------------------------------------------------------
// RAII handles

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;

struct StmtFinalizer {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

// One prepared statement. Bind indexes are 1-based and Column indexes 0-based, as in SQLite.
// Bind chains and records the first failure, which Step then reports, so call sites stay flat.
class Stmt {
 public:
  static Result<Stmt> Prepare(sqlite3* db, std::string_view sql) {
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &raw, nullptr);
    StmtPtr stmt(raw);
    if (rc != SQLITE_OK) {
      return std::unexpected(SqliteError(db, rc, fmt::format("prepare \"{}\"", sql)));
    }
    if (!stmt) return std::unexpected(Status::Internal(fmt::format("empty SQL: \"{}\"", sql)));
    return Stmt(db, std::move(stmt));
  }

  Stmt& Bind(int index, std::string_view text) {
    return Check(sqlite3_bind_text64(stmt_.get(), index, text.data(), text.size(),
                                     SQLITE_TRANSIENT, SQLITE_UTF8),
                 index);
  }
  Stmt& Bind(int index, int64_t value) {
    return Check(sqlite3_bind_int64(stmt_.get(), index, value), index);
  }
  Stmt& BindDouble(int index, double value) {
    return Check(sqlite3_bind_double(stmt_.get(), index, value), index);
  }

  // True when a row is ready for Column*, false when the statement has finished.
  Result<bool> Step() {
    if (!bind_status_.ok()) return std::unexpected(bind_status_);
    rc_ = sqlite3_step(stmt_.get());
    if (rc_ == SQLITE_ROW) return true;
    if (rc_ == SQLITE_DONE) return false;
    return std::unexpected(SqliteError(db_, rc_, Sql()));
  }

  // Steps a statement that returns no rows (INSERT, UPDATE, DELETE).
  Status Run() {
    auto row = Step();
    if (!row) return row.error();
    return Status::Ok();
  }

  // The result code of the latest Step (extended result codes are on).
  int last_rc() const { return rc_; }

  std::string_view ColumnText(int col) {
    const auto* p = sqlite3_column_text(stmt_.get(), col);
    int n = sqlite3_column_bytes(stmt_.get(), col);  // after column_text, as SQLite requires
    if (p == nullptr) return {};
    return {reinterpret_cast<const char*>(p), static_cast<size_t>(n)};
  }
  int64_t ColumnInt(int col) { return sqlite3_column_int64(stmt_.get(), col); }
  double ColumnDouble(int col) { return sqlite3_column_double(stmt_.get(), col); }

 private:
  Stmt(sqlite3* db, StmtPtr stmt) : db_(db), stmt_(std::move(stmt)) {}

  Stmt& Check(int rc, int index) {
    if (rc != SQLITE_OK && bind_status_.ok()) {
      bind_status_ = SqliteError(db_, rc, fmt::format("bind ?{} of \"{}\"", index, Sql()));
    }
    return *this;
  }
  std::string_view Sql() const {
    const char* sql = sqlite3_sql(stmt_.get());
    return sql ? sql : "";
  }

  sqlite3* db_;
  StmtPtr stmt_;
  Status bind_status_;
  int rc_ = SQLITE_OK;
};

// Runs SQL that returns no rows; it may hold several statements (migrations).
Status Exec(sqlite3* db, const char* sql, std::string_view context) {
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return SqliteError(db, rc, context);
  return Status::Ok();
}

// The single integer a PRAGMA query (or any one-value SELECT) returns.
Result<int64_t> QueryInt(sqlite3* db, std::string_view sql) {
  auto stmt = Stmt::Prepare(db, sql);
  if (!stmt) return std::unexpected(stmt.error());
  auto row = stmt->Step();
  if (!row) return std::unexpected(row.error());
  if (!*row) return std::unexpected(Status::Internal(fmt::format("no row from \"{}\"", sql)));
  return stmt->ColumnInt(0);
}

// A write transaction, rolled back unless Commit succeeds. BEGIN IMMEDIATE takes the write lock
// up front: a read-then-write transaction can then never fail half-way on the lock upgrade when
// another process holds the file (busy_timeout only applies to waiting for the first lock).
class Transaction {
 public:
  static Result<Transaction> Begin(sqlite3* db) {
    Status st = Exec(db, "BEGIN IMMEDIATE", "begin transaction");
    if (!st.ok()) return std::unexpected(std::move(st));
    return Transaction(db);
  }
  Transaction(Transaction&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction() {
    // A failed COMMIT may already have rolled back; only roll back what is still open.
    if (db_ != nullptr && sqlite3_get_autocommit(db_) == 0) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    }
  }

  Status Commit() {
    Status st = Exec(db_, "COMMIT", "commit");
    if (st.ok()) db_ = nullptr;
    return st;
  }

 private:
  explicit Transaction(sqlite3* db) : db_(db) {}
  sqlite3* db_;
};

// ---------------------------------------------------------------------------------------------
// Schema

struct Migration {
  int version;      // user_version once applied
  const char* sql;  // may hold several statements; runs inside one transaction
};

// Append only: data dirs in the wild have already run every released entry, so an entry is never
// edited. A migration that rebuilds a table (SQLite's 12-step ALTER) must switch foreign_keys off
// around it, which cannot happen inside a transaction: teach Migrate that when it is needed.
constexpr Migration kMigrations[] = {
    {1, R"sql(
-- One row per function: what every version shares.
CREATE TABLE functions (
  name         TEXT PRIMARY KEY NOT NULL,
  next_version INTEGER NOT NULL DEFAULT 1,  -- the number PublishVersion hands out next
  created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- One row per version of a function; $LATEST is the version '$LATEST'.
CREATE TABLE function_versions (
  function_name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
  version       TEXT NOT NULL,
  config        TEXT NOT NULL,     -- config::ToJson, serialised
  revision_id   TEXT NOT NULL,     -- copy of the config's, for the UpdateFunction check
  code_sha256   TEXT NOT NULL,     -- hex key into the code store; '' when there is no code
  code_size     INTEGER NOT NULL,  -- zip bytes, for GetAccountSettings
  PRIMARY KEY (function_name, version)
);
CREATE INDEX function_versions_by_code ON function_versions(code_sha256);
)sql"},
    {2, R"sql(
-- One row per alias of a function (section 7): a pointer to one version, optionally routing a
-- fraction of requests to one additional version.
CREATE TABLE function_aliases (
  function_name    TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
  name             TEXT NOT NULL,
  function_version TEXT NOT NULL,
  description      TEXT NOT NULL,
  routing_version  TEXT NOT NULL,  -- AdditionalVersionWeights key; '' when none
  routing_weight   REAL NOT NULL,  -- its weight in [0, 1]
  revision_id      TEXT NOT NULL,
  PRIMARY KEY (function_name, name)
);
)sql"},
    {3, R"sql(
-- One row per layer name: the counter PublishLayerVersion hands out (survives deletes).
CREATE TABLE layers (
  name         TEXT PRIMARY KEY NOT NULL,
  next_version INTEGER NOT NULL DEFAULT 1
);

-- One row per published layer version. A deleted version keeps its row (deleted = 1): functions
-- that use it keep working, and its code stays while a function version references it.
CREATE TABLE layer_versions (
  layer_name               TEXT NOT NULL REFERENCES layers(name),
  version                  INTEGER NOT NULL,
  description              TEXT NOT NULL,
  compatible_runtimes      TEXT NOT NULL,  -- JSON array of strings
  compatible_architectures TEXT NOT NULL,  -- JSON array of strings
  license_info             TEXT NOT NULL,
  code_sha256              TEXT NOT NULL,  -- hex key into the code store
  code_size                INTEGER NOT NULL,
  unzipped_size            INTEGER NOT NULL,
  created_date             TEXT NOT NULL,
  deleted                  INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (layer_name, version)
);
CREATE INDEX layer_versions_by_code ON layer_versions(code_sha256);
)sql"},
    {4, R"sql(
-- Reserved concurrency (PutFunctionConcurrency): one row per function that has it.
CREATE TABLE function_concurrency (
  function_name TEXT PRIMARY KEY NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
  reserved      INTEGER NOT NULL
);

-- Provisioned concurrency configs: one per published version or alias of a function.
CREATE TABLE provisioned_concurrency (
  function_name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
  qualifier     TEXT NOT NULL,
  requested     INTEGER NOT NULL,
  last_modified TEXT NOT NULL,
  PRIMARY KEY (function_name, qualifier)
);
)sql"},
};

constexpr bool MigrationsAreDense() {
  for (size_t i = 0; i < std::size(kMigrations); ++i) {
    if (kMigrations[i].version != static_cast<int>(i) + 1) return false;
  }
  return true;
}
static_assert(MigrationsAreDense(), "kMigrations must be versions 1, 2, 3, ... in order");
static_assert(std::size(kMigrations) == kSqliteSchemaVersion,
              "kSqliteSchemaVersion must name the last migration");

// Brings the schema up to kSqliteSchemaVersion, one migration per transaction. Versions are
// re-read under the write lock, so two processes opening one file at once migrate it once.
Status Migrate(sqlite3* db) {
  auto version = QueryInt(db, "PRAGMA user_version");
  if (!version) return version.error();
  while (true) {
    auto app_id = QueryInt(db, "PRAGMA application_id");
    if (!app_id) return app_id.error();
    if (*version > kSqliteSchemaVersion) {
      return Status::FailedPrecondition(fmt::format(
          "schema version {} is newer than this Hearth supports ({}); "
          "upgrade Hearth or use another data dir",
          *version, kSqliteSchemaVersion));
    }
    if (*version > 0 && *app_id != kSqliteApplicationId) {
      return Status::FailedPrecondition(
          fmt::format("not a Hearth metadata database (application_id {:#x})", *app_id));
    }
    if (*version == kSqliteSchemaVersion) return Status::Ok();

    auto tx = Transaction::Begin(db);
    if (!tx) return tx.error();
    version = QueryInt(db, "PRAGMA user_version");
    if (!version) return version.error();
    if (*version >= kSqliteSchemaVersion) continue;  // someone else migrated; re-check above
    if (*version == 0) {
      // A file another program made must not be taken over just because it has no version.
      auto tables = QueryInt(db, "SELECT count(*) FROM sqlite_master");
      if (!tables) return tables.error();
      app_id = QueryInt(db, "PRAGMA application_id");
      if (!app_id) return app_id.error();
      if (*tables != 0 || (*app_id != 0 && *app_id != kSqliteApplicationId)) {
        return Status::FailedPrecondition(fmt::format(
            "not a Hearth metadata database ({} tables, application_id {:#x})", *tables, *app_id));
      }
      HEARTH_RETURN_IF_ERROR(
          Exec(db, fmt::format("PRAGMA application_id = {}", kSqliteApplicationId).c_str(),
               "set application_id"));
    }
    const Migration& m = kMigrations[*version];
    HEARTH_RETURN_IF_ERROR(Exec(db, m.sql, fmt::format("migration to schema {}", m.version)));
    HEARTH_RETURN_IF_ERROR(Exec(db, fmt::format("PRAGMA user_version = {}", m.version).c_str(),
                                "set user_version"));
    HEARTH_RETURN_IF_ERROR(tx->Commit());
    *version = m.version;
  }
}

// Connection settings, then the schema. Runs before the store exists, so no mutex is needed.
Status Configure(sqlite3* db) {
  // The first statement reads the file, so a non-database file fails here, as IOError.
  {
    auto stmt = Stmt::Prepare(db, "PRAGMA journal_mode = WAL");
    if (!stmt) return stmt.error();
    auto row = stmt->Step();
    if (!row) return row.error();
    std::string mode = *row ? std::string(stmt->ColumnText(0)) : std::string();
    if (mode != "wal") {
      return Status::IOError(fmt::format(
          "sqlite: cannot enable WAL journal mode (got \"{}\"); is the file system local?", mode));
    }
  }
  HEARTH_RETURN_IF_ERROR(Exec(db, "PRAGMA synchronous = NORMAL", "synchronous"));
  HEARTH_RETURN_IF_ERROR(Exec(db, "PRAGMA foreign_keys = ON", "foreign_keys"));
  auto fk = QueryInt(db, "PRAGMA foreign_keys");
  if (!fk) return fk.error();
  if (*fk != 1) return Status::Internal("sqlite: library built without foreign key support");
  return Migrate(db);
}

// ---------------------------------------------------------------------------------------------
// Rows

std::string EncodeConfig(const FunctionConfig& c) {
  return boost::json::serialize(config::ToJson(c));
}

// Catches because Boost.JSON throws on bad_alloc and on numbers it cannot convert, and no
// exception may leave the store.
Result<FunctionConfig> DecodeConfig(std::string_view name, std::string_view version,
                                    std::string_view text) {
  try {
    std::error_code ec;
    boost::json::value v = boost::json::parse(text, ec);
    if (ec) {
      return std::unexpected(Status::Internal(fmt::format(
          "stored config of {}:{} is not JSON: {}", name, version, ec.message())));
    }
    auto c = config::FromJson(v);
    if (!c) {
      return std::unexpected(Status::Internal(fmt::format(
          "stored config of {}:{} is unusable: {}", name, version, c.error().message())));
    }
    return c;
  } catch (const std::exception& e) {
    return std::unexpected(Status::Internal(
        fmt::format("stored config of {}:{} is unusable: {}", name, version, e.what())));
  }
}

// ---------------------------------------------------------------------------------------------
// The store

class SqliteStore final : public MetadataStore {
 public:
  explicit SqliteStore(DbPtr db) : db_(std::move(db)) {}

  Status CreateFunction(const FunctionConfig& latest) override {
    if (latest.name.empty()) return Status::InvalidArgument("function name is empty");
    std::string json = EncodeLatest(latest);
    std::lock_guard lock(mu_);
    sqlite3* db = db_.get();
    auto tx = Transaction::Begin(db);
    if (!tx) return tx.error();

    auto insert_fn = Stmt::Prepare(db, "INSERT INTO functions (name) VALUES (?1)");
    if (!insert_fn) return insert_fn.error();
    insert_fn->Bind(1, latest.name);
    if (Status st = insert_fn->Run(); !st.ok()) {
      int rc = insert_fn->last_rc();
      if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE) {
        return Status::AlreadyExists(fmt::format("Function already exist: {}", latest.name));
      }
      return st;
    }

    auto insert_version = Stmt::Prepare(
        db,
        "INSERT INTO function_versions "
        "(function_name, version, config, revision_id, code_sha256, code_size) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    if (!insert_version) return insert_version.error();
    insert_version->Bind(1, latest.name)
        .Bind(2, config::kLatest)
        .Bind(3, json)
        .Bind(4, latest.revision_id)
        .Bind(5, latest.code_sha256_hex)
        .Bind(6, latest.code_size);
    HEARTH_RETURN_IF_ERROR(insert_version->Run());
    return tx->Commit();
  }

  Result<FunctionConfig> GetFunction(std::string_view name) override {
    std::lock_guard lock(mu_);
    auto stmt = Stmt::Prepare(
        db_.get(), "SELECT config FROM function_versions WHERE function_name = ?1 AND version = ?2");
    if (!stmt) return std::unexpected(stmt.error());
    stmt->Bind(1, name).Bind(2, config::kLatest);
    auto row = stmt->Step();
    if (!row) return std::unexpected(row.error());
    if (!*row) return std::unexpected(NotFound(name));
    return DecodeConfig(name, config::kLatest, stmt->ColumnText(0));
  }

  Status UpdateFunction(const FunctionConfig& latest,
                        std::string_view expected_revision_id) override {
    std::string json = EncodeLatest(latest);
    std::lock_guard lock(mu_);
    sqlite3* db = db_.get();
    auto tx = Transaction::Begin(db);
    if (!tx) return tx.error();

    auto select = Stmt::Prepare(
        db,
        "SELECT revision_id FROM function_versions WHERE function_name = ?1 AND version = ?2");
    if (!select) return select.error();
    select->Bind(1, latest.name).Bind(2, config::kLatest);
    auto row = select->Step();
    if (!row) return row.error();
    if (!*row) return NotFound(latest.name);
    if (!expected_revision_id.empty() && select->ColumnText(0) != expected_revision_id) {
      return Status::FailedPrecondition(fmt::format(
          "The revision ID {} does not match the latest revision ID {} of function {}",
          expected_revision_id, select->ColumnText(0), latest.name));
    }

    auto update = Stmt::Prepare(
        db,
        "UPDATE function_versions SET config = ?3, revision_id = ?4, code_sha256 = ?5, "
        "code_size = ?6 WHERE function_name = ?1 AND version = ?2");
    if (!update) return update.error();
    update->Bind(1, latest.name)
        .Bind(2, config::kLatest)
        .Bind(3, json)
        .Bind(4, latest.revision_id)
        .Bind(5, latest.code_sha256_hex)
        .Bind(6, latest.code_size);
    HEARTH_RETURN_IF_ERROR(update->Run());
    return tx->Commit();
  }

  Status DeleteFunction(std::string_view name) override {
    std::lock_guard lock(mu_);
    // One statement, so autocommit makes it atomic; ON DELETE CASCADE drops every version.
    auto stmt = Stmt::Prepare(db_.get(), "DELETE FROM functions WHERE name = ?1");
    if (!stmt) return stmt.error();
    stmt->Bind(1, name);
    HEARTH_RETURN_IF_ERROR(stmt->Run());
    if (sqlite3_changes(db_.get()) == 0) return NotFound(name);
    return Status::Ok();
  }

  Result<std::vector<FunctionConfig>> ListFunctions(std::string_view after_name,
                                                    int limit) override {
    if (limit <= 0) {
      return std::unexpected(
          Status::InvalidArgument(fmt::format("list limit must be positive, got {}", limit)));
    }
    std::lock_guard lock(mu_);
    auto stmt = Stmt::Prepare(db_.get(),
                              "SELECT function_name, config FROM function_versions "
                              "WHERE version = ?1 AND function_name > ?2 "
                              "ORDER BY function_name LIMIT ?3");
    if (!stmt) return std::unexpected(stmt.error());
    stmt->Bind(1, config::kLatest).Bind(2, after_name).Bind(3, static_cast<int64_t>(limit));
    std::vector<FunctionConfig> out;
    out.reserve(std::min(limit, 1000));
    while (true) {
      auto row = stmt->Step();
      if (!row) return std::unexpected(row.error());
      if (!*row) break;
      auto c = DecodeConfig(stmt->ColumnText(0), config::kLatest, stmt->ColumnText(1));
      if (!c) return std::unexpected(c.error());
      out.push_back(*std::move(c));
    }
    return out;
  }

  Result<Usage> GetUsage() override {
    std::lock_guard lock(mu_);
    // One statement reads both numbers from one snapshot.
    auto stmt = Stmt::Prepare(db_.get(),
                              "SELECT (SELECT count(*) FROM functions), "
                              "(SELECT coalesce(sum(code_size), 0) FROM function_versions) + "
                              "(SELECT coalesce(sum(code_size), 0) FROM layer_versions "
                              "WHERE deleted = 0)");
    if (!stmt) return std::unexpected(stmt.error());
    auto row = stmt->Step();
    if (!row) return std::unexpected(row.error());
    if (!*row) return std::unexpected(Status::Internal("usage query returned no row"));
    return Usage{.function_count = stmt->ColumnInt(0), .total_code_size = stmt->ColumnInt(1)};
  }

  Result<std::vector<std::string>> ReferencedCode() override {
    std::lock_guard lock(mu_);
    auto stmt = Stmt::Prepare(db_.get(),
                              "SELECT code_sha256 FROM function_versions "
                              "WHERE code_sha256 <> '' "
                              "UNION SELECT code_sha256 FROM layer_versions WHERE deleted = 0 "
                              "UNION SELECT j.value FROM function_versions, "
                              "json_each(function_versions.config, '$.layer_digests') AS j "
                              "WHERE j.type = 'text' AND j.value <> '' "
                              "ORDER BY 1");
    if (!stmt) return std::unexpected(stmt.error());
    std::vector<std::string> out;
    while (true) {
      auto row = stmt->Step();
      if (!row) return std::unexpected(row.error());
      if (!*row) break;
      out.emplace_back(stmt->ColumnText(0));
    }
    return out;
  }

  Result<FunctionConfig> PublishVersion(const FunctionConfig& snapshot) override {
    std::lock_guard lock(mu_);
    sqlite3* db = db_.get();
    auto tx = Transaction::Begin(db);
    if (!tx) return std::unexpected(tx.error());
    auto next = Stmt::Prepare(db, "SELECT next_version FROM functions WHERE name = ?1");
    if (!next) return std::unexpected(next.error());
    next->Bind(1, snapshot.name);
    auto row = next->Step();
    if (!row) return std::unexpected(row.error());
    if (!*row) return std::unexpected(NotFound(snapshot.name));
    FunctionConfig v = snapshot;
    v.version = std::to_string(next->ColumnInt(0));
    auto bump = Stmt::Prepare(db, "UPDATE functions SET next_version = next_version + 1 WHERE name = ?1");
    if (!bump) return std::unexpected(bump.error());
    bump->Bind(1, v.name);
    if (Status st = bump->Run(); !st.ok()) return std::unexpected(st);
    auto insert = Stmt::Prepare(
        db,
        "INSERT INTO function_versions "
        "(function_name, version, config, revision_id, code_sha256, code_size) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    if (!insert) return std::unexpected(insert.error());
    insert->Bind(1, v.name)
        .Bind(2, v.version)
        .Bind(3, EncodeConfig(v))
        .Bind(4, v.revision_id)
        .Bind(5, v.code_sha256_hex)
        .Bind(6, v.code_size);
    if (Status st = insert->Run(); !st.ok()) return std::unexpected(st);
    if (Status st = tx->Commit(); !st.ok()) return std::unexpected(st);
    return v;
  }

  Result<std::vector<FunctionConfig>> ListVersions(std::string_view name) override {
    std::lock_guard lock(mu_);
    auto stmt = Stmt::Prepare(db_.get(),
                              "SELECT version, config FROM function_versions "
                              "WHERE function_name = ?1 AND version <> ?2 "
                              "ORDER BY CAST(version AS INTEGER)");
    if (!stmt) return std::unexpected(stmt.error());
    stmt->Bind(1, name).Bind(2, config::kLatest);
    std::vector<FunctionConfig> out;
    while (true) {
      auto row = stmt->Step();
      if (!row) return std::unexpected(row.error());
      if (!*row) break;
      auto c = DecodeConfig(name, stmt->ColumnText(0), stmt->ColumnText(1));
      if (!c) return std::unexpected(c.error());
      out.push_back(*std::move(c));
    }
    return out;
  }

  Status DeleteVersion(std::string_view name, std::string_view version) override {
    if (version == config::kLatest) {
      return Status::InvalidArgument(
          "$LATEST version cannot be deleted without deleting the function.");
    }
    std::lock_guard lock(mu_);
    auto stmt = Stmt::Prepare(
        db_.get(), "DELETE FROM function_versions WHERE function_name = ?1 AND version = ?2");
    if (!stmt) return stmt.error();
    stmt->Bind(1, name).Bind(2, version);
    HEARTH_RETURN_IF_ERROR(stmt->Run());
    if (sqlite3_changes(db_.get()) == 0) {
      return Status::NotFound(fmt::format("Function not found: {}:{}", name, version));
    }
    return Status::Ok();
  }

  Status CreateAlias(const AliasConfig& a) override {
    std::lock_guard lock(mu_);
    sqlite3* db = db_.get();
    auto tx = Transaction::Begin(db);
    if (!tx) return tx.error();
    auto fn = Stmt::Prepare(db, "SELECT 1 FROM functions WHERE name = ?1");
    if (!fn) return fn.error();
    fn->Bind(1, a.function_name);
    auto row = fn->Step();
    if (!row) return row.error();
    if (!*row) return NotFound(a.function_name);
    auto insert = Stmt::Prepare(
        db,
        "INSERT INTO function_aliases (function_name, name, function_version, description, "
        "routing_version, routing_weight, revision_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    if (!insert) return insert.error();
    insert->Bind(1, a.function_name)
        .Bind(2, a.name)
        .Bind(3, a.function_version)
        .Bind(4, a.description)
        .Bind(5, a.additional_version)
        .BindDouble(6, a.additional_weight)
        .Bind(7, a.revision_id);
    if (Status st = insert->Run(); !st.ok()) {
      int rc = insert->last_rc();
      if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE) {
        return Status::AlreadyExists(
            fmt::format("Alias already exists: {}:{}", a.function_name, a.name));
      }
      return st;
    }
    return tx->Commit();
  }

  Status UpdateAlias(const AliasConfig& a, std::string_view expected_revision_id) override {
    std::lock_guard lock(mu_);
    sqlite3* db = db_.get();
    auto tx = Transaction::Begin(db);
    if (!tx) return tx.error();
    auto select = Stmt::Prepare(
        db, "SELECT revision_id FROM function_aliases WHERE function_name = ?1 AND name = ?2");
    if (!select) return select.error();
    select->Bind(1, a.function_name).Bind(2, a.name);
    auto row = select->Step();
    if (!row) return row.error();
    if (!*row) return AliasNotFound(a.function_name, a.name);
    if (!expected_revision_id.empty() && select->ColumnText(0) != expected_revision_id) {
      return Status::FailedPrecondition(fmt::format(
          "The revision ID {} does not match the latest revision ID {} of alias {}:{}",
          expected_revision_id, select->ColumnText(0), a.function_name, a.name));
    }
    auto update = Stmt::Prepare(
        db,
        "UPDATE function_aliases SET function_version = ?3, description = ?4, "
        "routing_version = ?5, routing_weight = ?6, revision_id = ?7 "
        "WHERE function_name = ?1 AND name = ?2");
    if (!update) return update.error();
    update->Bind(1, a.function_name)
        .Bind(2, a.name)
        .Bind(3, a.function_version)
        .Bind(4, a.description)
        .Bind(5, a.additional_version)
        .BindDouble(6, a.additional_weight)
        .Bind(7, a.revision_id);
    HEARTH_RETURN_IF_ERROR(update->Run());
    return tx->Commit();
  }

  Status DeleteAlias(std::string_view function, std::string_view alias) override {
    std::lock_guard lock(mu_);
    auto stmt = Stmt::Prepare(db_.get(),
                              "DELETE FROM function_aliases WHERE function_name = ?1 AND name = ?2");
    if (!stmt) return stmt.error();
    stmt->Bind(1, function).Bind(2, alias);
    HEARTH_RETURN_IF_ERROR(stmt->Run());
    if (sqlite3_changes(db_.get()) == 0) return AliasNotFound(function, alias);
    return Status::Ok();
  }

  Result<std::vector<AliasConfig>> ListAliases(std::string_view function) override {
    std::lock_guard lock(mu_);
    auto stmt = Stmt::Prepare(db_.get(),
                              "SELECT name, function_version, description, routing_version, "
                              "routing_weight, revision_id FROM function_aliases "
                              "WHERE function_name = ?1 ORDER BY name");
    if (!stmt) return std::unexpected(stmt.error());
    stmt->Bind(1, function);
    std::vector<AliasConfig> out;
    while (true) {
      auto row = stmt->Step();
      if (!row) return std::unexpected(row.error());
      if (!*row) break;
      AliasConfig a;
      a.function_name = std::string(function);
      a.name = std::string(stmt->ColumnText(0));
      a.function_version = std::string(stmt->ColumnText(1));
      a.description = std::string(stmt->ColumnText(2));
      a.additional_version = std::string(stmt->ColumnText(3));
      a.additional_weight = stmt->ColumnDouble(4);
      a.revision_id = std::string(stmt->ColumnText(5));
      out.push_back(std::move(a));
    }
    return out;
  }


  // --- Layers ---

  Result<LayerVersion> PublishLayerVersion(const LayerVersion& lv) override {
    std::lock_guard lock(mu_);
    sqlite3* db = db_.get();
    auto tx = Transaction::Begin(db);
    if (!tx) return std::unexpected(tx.error());
    auto upsert = Stmt::Prepare(db, "INSERT OR IGNORE INTO layers (name) VALUES (?1)");
    if (!upsert) return std::unexpected(upsert.error());
    upsert->Bind(1, lv.layer_name);
    if (Status st = upsert->Run(); !st.ok()) return std::unexpected(st);
    auto next = Stmt::Prepare(db, "SELECT next_version FROM layers WHERE name = ?1");
    if (!next) return std::unexpected(next.error());
    next->Bind(1, lv.layer_name);
    auto row = next->Step();
    if (!row) return std::unexpected(row.error());
    if (!*row) return std::unexpected(Status::Internal("layer counter row vanished"));
    LayerVersion out = lv;
    out.version = next->ColumnInt(0);
    out.deleted = false;
    auto bump = Stmt::Prepare(db, "UPDATE layers SET next_version = next_version + 1 WHERE name = ?1");
    if (!bump) return std::unexpected(bump.error());
    bump->Bind(1, lv.layer_name);
    if (Status st = bump->Run(); !st.ok()) return std::unexpected(st);
    auto insert = Stmt::Prepare(
        db,
        "INSERT INTO layer_versions (layer_name, version, description, compatible_runtimes, "
        "compatible_architectures, license_info, code_sha256, code_size, unzipped_size, "
        "created_date, deleted) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 0)");
    if (!insert) return std::unexpected(insert.error());
    insert->Bind(1, out.layer_name)
        .Bind(2, out.version)
        .Bind(3, out.description)
        .Bind(4, EncodeList(out.compatible_runtimes))
        .Bind(5, EncodeList(out.compatible_architectures))
        .Bind(6, out.license_info)
        .Bind(7, out.code_sha256_hex)
        .Bind(8, out.code_size)
        .Bind(9, out.unzipped_size)
        .Bind(10, out.created_date);
    if (Status st = insert->Run(); !st.ok()) return std::unexpected(st);
    if (Status st = tx->Commit(); !st.ok()) return std::unexpected(st);
    return out;
  }

  Result<LayerVersion> GetLayerVersion(std::string_view layer_name, int64_t version,
                                       bool include_deleted) override {
    std::lock_guard lock(mu_);
    auto stmt = Stmt::Prepare(db_.get(), std::string(kLayerColumns) +
                                             " WHERE layer_name = ?1 AND version = ?2 AND "
                                             "(deleted = 0 OR ?3 = 1)");
    if (!stmt) return std::unexpected(stmt.error());
    stmt->Bind(1, layer_name).Bind(2, version).Bind(3, int64_t{include_deleted ? 1 : 0});
    auto row = stmt->Step();
    if (!row) return std::unexpected(row.error());
    if (!*row) {
      return std::unexpected(Status::NotFound(
          fmt::format("Layer version {}:{} does not exist.", layer_name, version)));
    }
    return ReadLayer(*stmt);
  }

  Result<std::vector<LayerVersion>> ListLayerVersions(std::string_view layer_name) override {
    std::lock_guard lock(mu_);
    auto stmt = Stmt::Prepare(db_.get(), std::string(kLayerColumns) +
                                             " WHERE layer_name = ?1 AND deleted = 0 "
                                             "ORDER BY version DESC");
    if (!stmt) return std::unexpected(stmt.error());
    stmt->Bind(1, layer_name);
    return ReadLayers(*stmt);
  }

  Result<std::vector<LayerVersion>> ListAllLayerVersions() override {
    std::lock_guard lock(mu_);
    auto stmt = Stmt::Prepare(db_.get(), std::string(kLayerColumns) +
                                             " WHERE deleted = 0 "
                                             "ORDER BY layer_name, version DESC");
    if (!stmt) return std::unexpected(stmt.error());
    return ReadLayers(*stmt);
  }

  Status DeleteLayerVersion(std::string_view layer_name, int64_t version) override {
    std::lock_guard lock(mu_);
    auto stmt = Stmt::Prepare(
        db_.get(), "UPDATE layer_versions SET deleted = 1 WHERE layer_name = ?1 AND version = ?2");
    if (!stmt) return stmt.error();
    stmt->Bind(1, layer_name).Bind(2, version);
    return stmt->Run();
  }

  // --- Concurrency ---

  Status PutReservedConcurrency(std::string_view function, int reserved) override {
    std::lock_guard lock(mu_);
    auto stmt = Stmt::Prepare(db_.get(),
                              "INSERT INTO function_concurrency (function_name, reserved) "
                              "SELECT name, ?2 FROM functions WHERE name = ?1 "
                              "ON CONFLICT(function_name) DO UPDATE SET reserved = excluded.reserved");
    if (!stmt) return stmt.error();
    stmt->Bind(1, function).Bind(2, int64_t{reserved});
    HEARTH_RETURN_IF_ERROR(stmt->Run());
    if (sqlite3_changes(db_.get()) == 0) return NotFound(function);
    return Status::Ok();
  }

  Status DeleteReservedConcurrency(std::string_view function) override {
    std::lock_guard lock(mu_);
    auto stmt = Stmt::Prepare(db_.get(), "DELETE FROM function_concurrency WHERE function_name = ?1");
    if (!stmt) return stmt.error();
    stmt->Bind(1, function);
    return stmt->Run();
  }

  Result<std::vector<std::pair<std::string, int>>> ListReservedConcurrency() override {
    std::lock_guard lock(mu_);
    auto stmt = Stmt::Prepare(
        db_.get(), "SELECT function_name, reserved FROM function_concurrency ORDER BY function_name");
    if (!stmt) return std::unexpected(stmt.error());
    std::vector<std::pair<std::string, int>> out;
    while (true) {
      auto row = stmt->Step();
      if (!row) return std::unexpected(row.error());
      if (!*row) break;
      out.emplace_back(std::string(stmt->ColumnText(0)), static_cast<int>(stmt->ColumnInt(1)));
    }
    return out;
  }

  Status PutProvisionedConcurrency(const ProvisionedConcurrency& pc) override {
    std::lock_guard lock(mu_);
    auto stmt = Stmt::Prepare(
        db_.get(),
        "INSERT INTO provisioned_concurrency (function_name, qualifier, requested, last_modified) "
        "SELECT name, ?2, ?3, ?4 FROM functions WHERE name = ?1 "
        "ON CONFLICT(function_name, qualifier) DO UPDATE SET requested = excluded.requested, "
        "last_modified = excluded.last_modified");
    if (!stmt) return stmt.error();
    stmt->Bind(1, pc.function_name)
        .Bind(2, pc.qualifier)
        .Bind(3, int64_t{pc.requested})
        .Bind(4, pc.last_modified);
    HEARTH_RETURN_IF_ERROR(stmt->Run());
    if (sqlite3_changes(db_.get()) == 0) return NotFound(pc.function_name);
    return Status::Ok();
  }

  Status DeleteProvisionedConcurrency(std::string_view function,
                                      std::string_view qualifier) override {
    std::lock_guard lock(mu_);
    auto stmt = Stmt::Prepare(
        db_.get(),
        "DELETE FROM provisioned_concurrency WHERE function_name = ?1 AND qualifier = ?2");
    if (!stmt) return stmt.error();
    stmt->Bind(1, function).Bind(2, qualifier);
    HEARTH_RETURN_IF_ERROR(stmt->Run());
    if (sqlite3_changes(db_.get()) == 0) {
      return Status::NotFound(fmt::format("No Provisioned Concurrency Config found for {}:{}",
                                          function, qualifier));
    }
    return Status::Ok();
  }

  Result<std::vector<ProvisionedConcurrency>> ListProvisionedConcurrency(
      std::string_view function) override {
    std::lock_guard lock(mu_);
    auto stmt = Stmt::Prepare(db_.get(),
                              "SELECT function_name, qualifier, requested, last_modified "
                              "FROM provisioned_concurrency WHERE ?1 = '' OR function_name = ?1 "
                              "ORDER BY function_name, qualifier");
    if (!stmt) return std::unexpected(stmt.error());
    stmt->Bind(1, function);
    std::vector<ProvisionedConcurrency> out;
    while (true) {
      auto row = stmt->Step();
      if (!row) return std::unexpected(row.error());
      if (!*row) break;
      ProvisionedConcurrency pc;
      pc.function_name = std::string(stmt->ColumnText(0));
      pc.qualifier = std::string(stmt->ColumnText(1));
      pc.requested = static_cast<int>(stmt->ColumnInt(2));
      pc.last_modified = std::string(stmt->ColumnText(3));
      out.push_back(std::move(pc));
    }
    return out;
  }

 private:
  static constexpr std::string_view kLayerColumns =
      "SELECT layer_name, version, description, compatible_runtimes, compatible_architectures, "
      "license_info, code_sha256, code_size, unzipped_size, created_date, deleted "
      "FROM layer_versions";

  static std::string EncodeList(const std::vector<std::string>& items) {
    boost::json::array a;
    for (const auto& i : items) a.emplace_back(i);
    return boost::json::serialize(a);
  }
  static std::vector<std::string> DecodeList(std::string_view text) {
    std::vector<std::string> out;
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(text, ec);
    if (ec || !v.is_array()) return out;
    for (const auto& i : v.as_array()) {
      if (i.is_string()) out.emplace_back(i.as_string());
    }
    return out;
  }
  static LayerVersion ReadLayer(Stmt& stmt) {
    LayerVersion lv;
    lv.layer_name = std::string(stmt.ColumnText(0));
    lv.version = stmt.ColumnInt(1);
    lv.description = std::string(stmt.ColumnText(2));
    lv.compatible_runtimes = DecodeList(stmt.ColumnText(3));
    lv.compatible_architectures = DecodeList(stmt.ColumnText(4));
    lv.license_info = std::string(stmt.ColumnText(5));
    lv.code_sha256_hex = std::string(stmt.ColumnText(6));
    lv.code_size = stmt.ColumnInt(7);
    lv.unzipped_size = stmt.ColumnInt(8);
    lv.created_date = std::string(stmt.ColumnText(9));
    lv.deleted = stmt.ColumnInt(10) != 0;
    return lv;
  }
  static Result<std::vector<LayerVersion>> ReadLayers(Stmt& stmt) {
    std::vector<LayerVersion> out;
    while (true) {
      auto row = stmt.Step();
      if (!row) return std::unexpected(row.error());
      if (!*row) break;
      out.push_back(ReadLayer(stmt));
    }
    return out;
  }

  static Status AliasNotFound(std::string_view function, std::string_view alias) {
    return Status::NotFound(fmt::format("Alias not found: {}:{}", function, alias));
  }
  static Status NotFound(std::string_view name) {
    return Status::NotFound(fmt::format("Function not found: {}", name));
  }

  // The stored JSON of $LATEST always says version "$LATEST", whatever the caller left in it.
  static std::string EncodeLatest(const FunctionConfig& latest) {
    if (latest.version == config::kLatest) return EncodeConfig(latest);
    FunctionConfig copy = latest;
    copy.version = config::kLatest;
    return EncodeConfig(copy);
  }

  std::mutex mu_;
  DbPtr db_;  // GUARDED_BY(mu_): opened NOMUTEX, so every use must hold mu_
};

}  // namespace

Result<MetadataStorePtr> OpenSqliteStore(const std::filesystem::path& db_path) {
  // NOMUTEX below relies on SQLite's own global locking, absent only in single-thread builds.
  if (sqlite3_threadsafe() == 0) {
    return std::unexpected(Status::Internal("sqlite: library built without thread support"));
  }
  const std::string path = db_path.string();
  // Every failure names the file: the operator has to find it.
  auto fail = [&path](const Status& st) {
    return std::unexpected(
        Status(st.code(), fmt::format("metadata store {}: {}", path, st.message()), st.detail(),
               st.err()));
  };
  if (db_path.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(db_path.parent_path(), ec);
    if (ec) {
      return fail(PosixError(fmt::format("create directory {}", db_path.parent_path().string()),
                             ec.value()));
    }
  }

  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  DbPtr db(raw);  // closed on every path below, even when open failed
  if (rc != SQLITE_OK) return fail(SqliteError(db.get(), rc, "open"));
  sqlite3_extended_result_codes(db.get(), 1);
  rc = sqlite3_busy_timeout(db.get(), kBusyTimeoutMs);
  if (rc != SQLITE_OK) return fail(SqliteError(db.get(), rc, "busy_timeout"));

  if (Status st = Configure(db.get()); !st.ok()) return fail(st);
  return std::make_unique<SqliteStore>(std::move(db));
}

}  // namespace hearth::store
