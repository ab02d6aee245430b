#include "store/sqlite_store.h"

#include <sqlite3.h>

#include <cstdint>
#include <exception>
#include <iterator>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
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

// One prepared statement with its parameters bound. Parameter indexes are 1-based and column
// indexes 0-based, as in SQLite. Every failure is a Status naming the statement's SQL.
class Stmt {
 public:
  // Prepares `sql` and binds `args` to ?1, ?2, ... in order: integers (and bool) as INTEGER,
  // floating point as REAL, anything a std::string_view takes as TEXT.
  template <class... Args>
  static Result<Stmt> Prepare(sqlite3* db, std::string_view sql, const Args&... args) {
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &raw, nullptr);
    StmtPtr stmt(raw);
    if (rc != SQLITE_OK) {
      return std::unexpected(SqliteError(db, rc, fmt::format("prepare \"{}\"", sql)));
    }
    if (!stmt) return std::unexpected(Status::Internal(fmt::format("empty SQL: \"{}\"", sql)));
    Stmt out(db, std::move(stmt));
    int index = 0;
    Status bound;
    (void)((bound = out.Bind(++index, args)).ok() && ...);  // stops at the first failure
    if (!bound.ok()) return std::unexpected(std::move(bound));
    return out;
  }

  // True when a row is ready for Column*, false when the statement has finished.
  Result<bool> Step() {
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

  // Steps to the statement's first row, for the Column* getters; `if_none` when it has none.
  Status StepRow(Status if_none) {
    auto row = Step();
    if (!row) return row.error();
    if (!*row) return if_none;
    return Status::Ok();
  }

  // Steps through every row, turning each into an element with `read(*this)`, which returns the
  // element or a Result of it (its error then ends the walk).
  template <class Read>
  auto Collect(Read&& read) {
    using Returned = std::invoke_result_t<Read&, Stmt&>;
    using Element = typename ElementOf<Returned>::type;
    Result<std::vector<Element>> out{std::in_place};
    while (true) {
      auto row = Step();
      if (!row) return decltype(out)(std::unexpected(row.error()));
      if (!*row) return out;
      if constexpr (ElementOf<Returned>::kIsResult) {
        Returned element = read(*this);
        if (!element) return decltype(out)(std::unexpected(element.error()));
        out->push_back(*std::move(element));
      } else {
        out->push_back(read(*this));
      }
    }
  }

  // After a failed Run: whether it broke a PRIMARY KEY or UNIQUE constraint (a taken name).
  bool ViolatedUniqueness() const {
    return rc_ == SQLITE_CONSTRAINT_PRIMARYKEY || rc_ == SQLITE_CONSTRAINT_UNIQUE;
  }

  std::string_view ColumnText(int col) {
    const auto* p = sqlite3_column_text(stmt_.get(), col);
    int n = sqlite3_column_bytes(stmt_.get(), col);  // after column_text, as SQLite requires
    if (p == nullptr) return {};
    return {reinterpret_cast<const char*>(p), static_cast<size_t>(n)};
  }
  std::string ColumnString(int col) { return std::string(ColumnText(col)); }
  int64_t ColumnInt(int col) { return sqlite3_column_int64(stmt_.get(), col); }
  double ColumnDouble(int col) { return sqlite3_column_double(stmt_.get(), col); }

 private:
  template <class T>
  struct ElementOf {
    using type = T;
    static constexpr bool kIsResult = false;
  };
  template <class T>
  struct ElementOf<Result<T>> {
    using type = T;
    static constexpr bool kIsResult = true;
  };

  Stmt(sqlite3* db, StmtPtr stmt) : db_(db), stmt_(std::move(stmt)) {}

  Status Bind(int index, std::string_view text) {
    return Check(sqlite3_bind_text64(stmt_.get(), index, text.data(), text.size(),
                                     SQLITE_TRANSIENT, SQLITE_UTF8),
                 index);
  }
  Status Bind(int index, int64_t value) {
    return Check(sqlite3_bind_int64(stmt_.get(), index, value), index);
  }
  Status Bind(int index, double value) {
    return Check(sqlite3_bind_double(stmt_.get(), index, value), index);
  }
  // Integers of other widths and bool are INTEGER; float is REAL.
  template <class T>
    requires std::is_arithmetic_v<T>
  Status Bind(int index, T value) {
    if constexpr (std::is_floating_point_v<T>) {
      return Bind(index, static_cast<double>(value));
    } else {
      return Bind(index, static_cast<int64_t>(value));
    }
  }

  Status Check(int rc, int index) {
    if (rc == SQLITE_OK) return Status::Ok();
    return SqliteError(db_, rc, fmt::format("bind ?{} of \"{}\"", index, Sql()));
  }

  std::string_view Sql() const {
    const char* sql = sqlite3_sql(stmt_.get());
    return sql ? sql : "";
  }

  sqlite3* db_;
  StmtPtr stmt_;
  int rc_ = SQLITE_OK;  // of the latest Step (extended result codes are on)
};

// Prepares, binds and runs one statement that returns no rows (see Stmt::Prepare).
template <class... Args>
Status Execute(sqlite3* db, std::string_view sql, const Args&... args) {
  auto stmt = Stmt::Prepare(db, sql, args...);
  if (!stmt) return stmt.error();
  return stmt->Run();
}

// Execute for an INSERT of a new key: `if_taken` when the key is taken (the statement breaks a
// PRIMARY KEY or UNIQUE constraint).
template <class... Args>
Status InsertNew(sqlite3* db, Status if_taken, std::string_view sql, const Args&... args) {
  auto stmt = Stmt::Prepare(db, sql, args...);
  if (!stmt) return stmt.error();
  Status st = stmt->Run();
  if (!st.ok() && stmt->ViolatedUniqueness()) return if_taken;
  return st;
}

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
  HEARTH_RETURN_IF_ERROR(
      stmt->StepRow(Status::Internal(fmt::format("no row from \"{}\"", sql))));
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

    HEARTH_RETURN_IF_ERROR(
        InsertNew(db, Status::AlreadyExists(fmt::format("Function already exist: {}", latest.name)),
                  "INSERT INTO functions (name) VALUES (?1)", latest.name));
    HEARTH_RETURN_IF_ERROR(InsertVersion(db, latest, config::kLatest, json));
    return tx->Commit();
  }

  Result<FunctionConfig> GetFunction(std::string_view name) override {
    std::lock_guard lock(mu_);
    auto stmt = Stmt::Prepare(
        db_.get(), "SELECT config FROM function_versions WHERE function_name = ?1 AND version = ?2",
        name, config::kLatest);
    if (!stmt) return std::unexpected(stmt.error());
    HEARTH_RETURN_IF_ERROR(stmt->StepRow(NotFound(name)));
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
        "SELECT revision_id FROM function_versions WHERE function_name = ?1 AND version = ?2",
        latest.name, config::kLatest);
    if (!select) return select.error();
    HEARTH_RETURN_IF_ERROR(select->StepRow(NotFound(latest.name)));
    if (!expected_revision_id.empty() && select->ColumnText(0) != expected_revision_id) {
      return Status::FailedPrecondition(fmt::format(
          "The revision ID {} does not match the latest revision ID {} of function {}",
          expected_revision_id, select->ColumnText(0), latest.name));
    }

    HEARTH_RETURN_IF_ERROR(Execute(
        db,
        "UPDATE function_versions SET config = ?3, revision_id = ?4, code_sha256 = ?5, "
        "code_size = ?6 WHERE function_name = ?1 AND version = ?2",
        latest.name, config::kLatest, json, latest.revision_id, latest.code_sha256_hex,
        latest.code_size));
    return tx->Commit();
  }

  Status DeleteFunction(std::string_view name) override {
    std::lock_guard lock(mu_);
    // One statement, so autocommit makes it atomic; ON DELETE CASCADE drops every version.
    HEARTH_RETURN_IF_ERROR(Execute(db_.get(), "DELETE FROM functions WHERE name = ?1", name));
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
                              "ORDER BY function_name LIMIT ?3",
                              config::kLatest, after_name, limit);
    if (!stmt) return std::unexpected(stmt.error());
    return stmt->Collect([](Stmt& row) {
      return DecodeConfig(row.ColumnText(0), config::kLatest, row.ColumnText(1));
    });
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
    HEARTH_RETURN_IF_ERROR(stmt->StepRow(Status::Internal("usage query returned no row")));
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
    return stmt->Collect([](Stmt& row) { return row.ColumnString(0); });
  }

  Result<FunctionConfig> PublishVersion(const FunctionConfig& snapshot) override {
    std::lock_guard lock(mu_);
    sqlite3* db = db_.get();
    auto tx = Transaction::Begin(db);
    if (!tx) return std::unexpected(tx.error());
    auto next = TakeNextVersion(db, "functions", snapshot.name, NotFound(snapshot.name));
    if (!next) return std::unexpected(next.error());
    FunctionConfig v = snapshot;
    v.version = std::to_string(*next);
    HEARTH_RETURN_IF_ERROR(InsertVersion(db, v, v.version, EncodeConfig(v)));
    HEARTH_RETURN_IF_ERROR(tx->Commit());
    return v;
  }

  Result<std::vector<FunctionConfig>> ListVersions(std::string_view name) override {
    std::lock_guard lock(mu_);
    auto stmt = Stmt::Prepare(db_.get(),
                              "SELECT version, config FROM function_versions "
                              "WHERE function_name = ?1 AND version <> ?2 "
                              "ORDER BY CAST(version AS INTEGER)",
                              name, config::kLatest);
    if (!stmt) return std::unexpected(stmt.error());
    return stmt->Collect([name](Stmt& row) {
      return DecodeConfig(name, row.ColumnText(0), row.ColumnText(1));
    });
  }

  Status DeleteVersion(std::string_view name, std::string_view version) override {
    if (version == config::kLatest) {
      return Status::InvalidArgument(
          "$LATEST version cannot be deleted without deleting the function.");
    }
    std::lock_guard lock(mu_);
    HEARTH_RETURN_IF_ERROR(
        Execute(db_.get(), "DELETE FROM function_versions WHERE function_name = ?1 AND version = ?2",
                name, version));
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
    auto fn = Stmt::Prepare(db, "SELECT 1 FROM functions WHERE name = ?1", a.function_name);
    if (!fn) return fn.error();
    HEARTH_RETURN_IF_ERROR(fn->StepRow(NotFound(a.function_name)));
    HEARTH_RETURN_IF_ERROR(InsertNew(
        db,
        Status::AlreadyExists(fmt::format("Alias already exists: {}:{}", a.function_name, a.name)),
        "INSERT INTO function_aliases (function_name, name, function_version, description, "
        "routing_version, routing_weight, revision_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        a.function_name, a.name, a.function_version, a.description, a.additional_version,
        a.additional_weight, a.revision_id));
    return tx->Commit();
  }

  Status UpdateAlias(const AliasConfig& a, std::string_view expected_revision_id) override {
    std::lock_guard lock(mu_);
    sqlite3* db = db_.get();
    auto tx = Transaction::Begin(db);
    if (!tx) return tx.error();
    auto select = Stmt::Prepare(
        db, "SELECT revision_id FROM function_aliases WHERE function_name = ?1 AND name = ?2",
        a.function_name, a.name);
    if (!select) return select.error();
    HEARTH_RETURN_IF_ERROR(select->StepRow(AliasNotFound(a.function_name, a.name)));
    if (!expected_revision_id.empty() && select->ColumnText(0) != expected_revision_id) {
      return Status::FailedPrecondition(fmt::format(
          "The revision ID {} does not match the latest revision ID {} of alias {}:{}",
          expected_revision_id, select->ColumnText(0), a.function_name, a.name));
    }
    HEARTH_RETURN_IF_ERROR(Execute(
        db,
        "UPDATE function_aliases SET function_version = ?3, description = ?4, "
        "routing_version = ?5, routing_weight = ?6, revision_id = ?7 "
        "WHERE function_name = ?1 AND name = ?2",
        a.function_name, a.name, a.function_version, a.description, a.additional_version,
        a.additional_weight, a.revision_id));
    return tx->Commit();
  }

  Status DeleteAlias(std::string_view function, std::string_view alias) override {
    std::lock_guard lock(mu_);
    HEARTH_RETURN_IF_ERROR(
        Execute(db_.get(), "DELETE FROM function_aliases WHERE function_name = ?1 AND name = ?2",
                function, alias));
    if (sqlite3_changes(db_.get()) == 0) return AliasNotFound(function, alias);
    return Status::Ok();
  }

  Result<std::vector<AliasConfig>> ListAliases(std::string_view function) override {
    std::lock_guard lock(mu_);
    auto stmt = Stmt::Prepare(db_.get(),
                              "SELECT name, function_version, description, routing_version, "
                              "routing_weight, revision_id FROM function_aliases "
                              "WHERE function_name = ?1 ORDER BY name",
                              function);
    if (!stmt) return std::unexpected(stmt.error());
    return stmt->Collect([function](Stmt& row) {
      AliasConfig a;
      a.function_name = std::string(function);
      a.name = row.ColumnString(0);
      a.function_version = row.ColumnString(1);
      a.description = row.ColumnString(2);
      a.additional_version = row.ColumnString(3);
      a.additional_weight = row.ColumnDouble(4);
      a.revision_id = row.ColumnString(5);
      return a;
    });
  }


  // --- Layers ---

  Result<LayerVersion> PublishLayerVersion(const LayerVersion& lv) override {
    std::lock_guard lock(mu_);
    sqlite3* db = db_.get();
    auto tx = Transaction::Begin(db);
    if (!tx) return std::unexpected(tx.error());
    HEARTH_RETURN_IF_ERROR(
        Execute(db, "INSERT OR IGNORE INTO layers (name) VALUES (?1)", lv.layer_name));
    auto next = TakeNextVersion(db, "layers", lv.layer_name,
                                Status::Internal("layer counter row vanished"));
    if (!next) return std::unexpected(next.error());
    LayerVersion out = lv;
    out.version = *next;
    out.deleted = false;
    HEARTH_RETURN_IF_ERROR(Execute(
        db,
        "INSERT INTO layer_versions (layer_name, version, description, compatible_runtimes, "
        "compatible_architectures, license_info, code_sha256, code_size, unzipped_size, "
        "created_date, deleted) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 0)",
        out.layer_name, out.version, out.description, EncodeList(out.compatible_runtimes),
        EncodeList(out.compatible_architectures), out.license_info, out.code_sha256_hex,
        out.code_size, out.unzipped_size, out.created_date));
    HEARTH_RETURN_IF_ERROR(tx->Commit());
    return out;
  }

  Result<LayerVersion> GetLayerVersion(std::string_view layer_name, int64_t version,
                                       bool include_deleted) override {
    std::lock_guard lock(mu_);
    auto stmt = Stmt::Prepare(db_.get(),
                              std::string(kLayerColumns) +
                                  " WHERE layer_name = ?1 AND version = ?2 AND "
                                  "(deleted = 0 OR ?3 = 1)",
                              layer_name, version, include_deleted);
    if (!stmt) return std::unexpected(stmt.error());
    HEARTH_RETURN_IF_ERROR(stmt->StepRow(Status::NotFound(
        fmt::format("Layer version {}:{} does not exist.", layer_name, version))));
    return ReadLayer(*stmt);
  }

  Result<std::vector<LayerVersion>> ListLayerVersions(std::string_view layer_name) override {
    std::lock_guard lock(mu_);
    auto stmt = Stmt::Prepare(db_.get(),
                              std::string(kLayerColumns) +
                                  " WHERE layer_name = ?1 AND deleted = 0 "
                                  "ORDER BY version DESC",
                              layer_name);
    if (!stmt) return std::unexpected(stmt.error());
    return stmt->Collect(ReadLayer);
  }

  Result<std::vector<LayerVersion>> ListAllLayerVersions() override {
    std::lock_guard lock(mu_);
    auto stmt = Stmt::Prepare(db_.get(), std::string(kLayerColumns) +
                                             " WHERE deleted = 0 "
                                             "ORDER BY layer_name, version DESC");
    if (!stmt) return std::unexpected(stmt.error());
    return stmt->Collect(ReadLayer);
  }

  Status DeleteLayerVersion(std::string_view layer_name, int64_t version) override {
    std::lock_guard lock(mu_);
    return Execute(db_.get(),
                   "UPDATE layer_versions SET deleted = 1 WHERE layer_name = ?1 AND version = ?2",
                   layer_name, version);
  }

  // --- Concurrency ---

  Status PutReservedConcurrency(std::string_view function, int reserved) override {
    std::lock_guard lock(mu_);
    HEARTH_RETURN_IF_ERROR(Execute(
        db_.get(),
        "INSERT INTO function_concurrency (function_name, reserved) "
        "SELECT name, ?2 FROM functions WHERE name = ?1 "
        "ON CONFLICT(function_name) DO UPDATE SET reserved = excluded.reserved",
        function, reserved));
    if (sqlite3_changes(db_.get()) == 0) return NotFound(function);
    return Status::Ok();
  }

  Status DeleteReservedConcurrency(std::string_view function) override {
    std::lock_guard lock(mu_);
    return Execute(db_.get(), "DELETE FROM function_concurrency WHERE function_name = ?1",
                   function);
  }

  Result<std::vector<std::pair<std::string, int>>> ListReservedConcurrency() override {
    std::lock_guard lock(mu_);
    auto stmt = Stmt::Prepare(
        db_.get(), "SELECT function_name, reserved FROM function_concurrency ORDER BY function_name");
    if (!stmt) return std::unexpected(stmt.error());
    return stmt->Collect([](Stmt& row) {
      return std::pair{row.ColumnString(0), static_cast<int>(row.ColumnInt(1))};
    });
  }

  Status PutProvisionedConcurrency(const ProvisionedConcurrency& pc) override {
    std::lock_guard lock(mu_);
    HEARTH_RETURN_IF_ERROR(Execute(
        db_.get(),
        "INSERT INTO provisioned_concurrency (function_name, qualifier, requested, last_modified) "
        "SELECT name, ?2, ?3, ?4 FROM functions WHERE name = ?1 "
        "ON CONFLICT(function_name, qualifier) DO UPDATE SET requested = excluded.requested, "
        "last_modified = excluded.last_modified",
        pc.function_name, pc.qualifier, pc.requested, pc.last_modified));
    if (sqlite3_changes(db_.get()) == 0) return NotFound(pc.function_name);
    return Status::Ok();
  }

  Status DeleteProvisionedConcurrency(std::string_view function,
                                      std::string_view qualifier) override {
    std::lock_guard lock(mu_);
    HEARTH_RETURN_IF_ERROR(Execute(
        db_.get(),
        "DELETE FROM provisioned_concurrency WHERE function_name = ?1 AND qualifier = ?2",
        function, qualifier));
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
                              "ORDER BY function_name, qualifier",
                              function);
    if (!stmt) return std::unexpected(stmt.error());
    return stmt->Collect([](Stmt& row) {
      ProvisionedConcurrency pc;
      pc.function_name = row.ColumnString(0);
      pc.qualifier = row.ColumnString(1);
      pc.requested = static_cast<int>(row.ColumnInt(2));
      pc.last_modified = row.ColumnString(3);
      return pc;
    });
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
  static LayerVersion ReadLayer(Stmt& row) {
    LayerVersion lv;
    lv.layer_name = row.ColumnString(0);
    lv.version = row.ColumnInt(1);
    lv.description = row.ColumnString(2);
    lv.compatible_runtimes = DecodeList(row.ColumnText(3));
    lv.compatible_architectures = DecodeList(row.ColumnText(4));
    lv.license_info = row.ColumnString(5);
    lv.code_sha256_hex = row.ColumnString(6);
    lv.code_size = row.ColumnInt(7);
    lv.unzipped_size = row.ColumnInt(8);
    lv.created_date = row.ColumnString(9);
    lv.deleted = row.ColumnInt(10) != 0;
    return lv;
  }

  // The row of `c` as `version` of its function, `json` its stored config.
  static Status InsertVersion(sqlite3* db, const FunctionConfig& c, std::string_view version,
                              std::string_view json) {
    return Execute(db,
                   "INSERT INTO function_versions "
                   "(function_name, version, config, revision_id, code_sha256, code_size) "
                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                   c.name, version, json, c.revision_id, c.code_sha256_hex, c.code_size);
  }

  // Hands out `name`'s next version number from `counters` (functions or layers: a table with
  // name and next_version columns) and moves the counter on; `if_none` when `name` has no row.
  static Result<int64_t> TakeNextVersion(sqlite3* db, std::string_view counters,
                                         std::string_view name, Status if_none) {
    auto next = Stmt::Prepare(
        db, fmt::format("SELECT next_version FROM {} WHERE name = ?1", counters), name);
    if (!next) return std::unexpected(next.error());
    HEARTH_RETURN_IF_ERROR(next->StepRow(std::move(if_none)));
    const int64_t version = next->ColumnInt(0);
    HEARTH_RETURN_IF_ERROR(Execute(
        db, fmt::format("UPDATE {} SET next_version = next_version + 1 WHERE name = ?1", counters),
        name));
    return version;
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
