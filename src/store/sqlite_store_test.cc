#include "store/sqlite_store.h"

#include <sqlite3.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "config/function_config.h"

namespace hearth::store {
namespace {

namespace fs = std::filesystem;
using config::FunctionConfig;

// A fresh directory per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::path(::testing::TempDir()) / "hearth_store_XXXXXX").string();
    if (mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// A config with every field away from its default, so a dropped field shows.
FunctionConfig MakeConfig(const std::string& name, int64_t code_size = 1234,
                          const std::string& sha = "") {
  FunctionConfig c;
  c.name = name;
  c.runtime = "provided.al2023";
  c.handler = "bootstrap";
  c.role = "arn:aws:iam::123456789012:role/lambda-role";
  c.description = "desc of " + name;
  c.memory_mb = 512;
  c.timeout_s = 30;
  c.ephemeral_storage_mb = 1024;
  c.environment = {{"A", "1"}, {"B", "two words"}, {"EMPTY", ""}};
  c.architecture = "arm64";
  c.package_type = "Zip";
  c.tracing_mode = "Active";
  c.code_sha256_hex = sha.empty() ? "sha-" + name : sha;
  c.code_size = code_size;
  c.code_size_unzipped = code_size * 3;
  c.last_modified = "2020-04-10T19:06:32.563+0000";
  c.revision_id = "rev-1";
  c.state = "Pending";
  c.last_update_status = "InProgress";
  c.layers = {"arn:aws:lambda:us-east-1:123456789012:layer:a:1",
              "arn:aws:lambda:us-east-1:123456789012:layer:b:2"};
  c.layer_code_sizes = {11, 22};
  return c;
}

void ExpectSameConfig(const FunctionConfig& want, const FunctionConfig& got) {
  EXPECT_EQ(want.name, got.name);
  EXPECT_EQ(want.version, got.version);
  EXPECT_EQ(want.runtime, got.runtime);
  EXPECT_EQ(want.handler, got.handler);
  EXPECT_EQ(want.role, got.role);
  EXPECT_EQ(want.description, got.description);
  EXPECT_EQ(want.memory_mb, got.memory_mb);
  EXPECT_EQ(want.timeout_s, got.timeout_s);
  EXPECT_EQ(want.ephemeral_storage_mb, got.ephemeral_storage_mb);
  EXPECT_EQ(want.environment, got.environment);
  EXPECT_EQ(want.architecture, got.architecture);
  EXPECT_EQ(want.package_type, got.package_type);
  EXPECT_EQ(want.tracing_mode, got.tracing_mode);
  EXPECT_EQ(want.code_sha256_hex, got.code_sha256_hex);
  EXPECT_EQ(want.code_size, got.code_size);
  EXPECT_EQ(want.code_size_unzipped, got.code_size_unzipped);
  EXPECT_EQ(want.last_modified, got.last_modified);
  EXPECT_EQ(want.revision_id, got.revision_id);
  EXPECT_EQ(want.state, got.state);
  EXPECT_EQ(want.last_update_status, got.last_update_status);
  EXPECT_EQ(want.layers, got.layers);
  EXPECT_EQ(want.layer_code_sizes, got.layer_code_sizes);
  EXPECT_EQ(want.layer_digests, got.layer_digests);
}

// Runs `sql` on the file through a separate raw connection (to plant or inspect state).
void RawExec(const fs::path& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_path.c_str(), &db), SQLITE_OK);
  std::unique_ptr<sqlite3, decltype(&sqlite3_close)> guard(db, &sqlite3_close);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  std::string msg = err ? err : "";
  sqlite3_free(err);
  ASSERT_EQ(rc, SQLITE_OK) << msg;
}

int64_t RawQueryInt(const fs::path& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  if (sqlite3_open(db_path.c_str(), &db) != SQLITE_OK) return -1;
  std::unique_ptr<sqlite3, decltype(&sqlite3_close)> guard(db, &sqlite3_close);
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) return -1;
  std::unique_ptr<sqlite3_stmt, decltype(&sqlite3_finalize)> sguard(stmt, &sqlite3_finalize);
  if (sqlite3_step(stmt) != SQLITE_ROW) return -1;
  return sqlite3_column_int64(stmt, 0);
}

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty()) << "mkdtemp failed";
    Reopen();
  }

  void Reopen() {
    store_.reset();  // close first: a restart never has two owners
    auto opened = OpenSqliteStore(db_path());
    ASSERT_TRUE(opened.has_value()) << opened.error().ToString();
    store_ = std::move(*opened);
  }

  fs::path db_path() const { return dir_.path() / "meta" / "hearth.db"; }

  void Create(const FunctionConfig& c) {
    Status st = store_->CreateFunction(c);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  TempDir dir_;
  MetadataStorePtr store_;
};

TEST_F(SqliteStoreTest, CreateGetRoundTripsEveryField) {
  FunctionConfig c = MakeConfig("round-trip_1");
  c.layer_digests = {"layer-a-1", "layer-b-2"};
  Create(c);
  auto got = store_->GetFunction("round-trip_1");
  ASSERT_TRUE(got.has_value()) << got.error().ToString();
  ExpectSameConfig(c, *got);
}

TEST_F(SqliteStoreTest, CreateStoresLatestWhateverVersionTheConfigNames) {
  FunctionConfig c = MakeConfig("f");
  c.version = "7";
  Create(c);
  auto got = store_->GetFunction("f");
  ASSERT_TRUE(got.has_value()) << got.error().ToString();
  EXPECT_EQ(got->version, config::kLatest);
}

TEST_F(SqliteStoreTest, KeepsUnusualTextIntact) {
  FunctionConfig c = MakeConfig("f");
  c.description = "quote ' double \" backslash \\ nul-free unicode \xC3\xA9\xE2\x82\xAC newline\n";
  c.environment = {{"JSON", R"({"a":[1,2,{"b":null}]})"}, {"SQL", "'; DROP TABLE functions; --"}};
  Create(c);
  auto got = store_->GetFunction("f");
  ASSERT_TRUE(got.has_value()) << got.error().ToString();
  ExpectSameConfig(c, *got);
}

// Each case runs `op` on a store that holds one function, "existing", and checks the code.
struct ErrorCase {
  std::string name;
  std::function<Status(MetadataStore&)> op;
  StatusCode want;
};

TEST_F(SqliteStoreTest, ErrorCodes) {
  const std::vector<ErrorCase> cases = {
      {"duplicate create", [](MetadataStore& s) { return s.CreateFunction(MakeConfig("existing")); },
       StatusCode::kAlreadyExists},
      {"create with empty name", [](MetadataStore& s) { return s.CreateFunction(MakeConfig("")); },
       StatusCode::kInvalidArgument},
      {"get missing",
       [](MetadataStore& s) {
         auto r = s.GetFunction("missing");
         return r ? Status::Ok() : r.error();
       },
       StatusCode::kNotFound},
      {"get is case sensitive",
       [](MetadataStore& s) {
         auto r = s.GetFunction("EXISTING");
         return r ? Status::Ok() : r.error();
       },
       StatusCode::kNotFound},
      {"update missing", [](MetadataStore& s) { return s.UpdateFunction(MakeConfig("missing"), ""); },
       StatusCode::kNotFound},
      {"delete missing", [](MetadataStore& s) { return s.DeleteFunction("missing"); },
       StatusCode::kNotFound},
      {"list with zero limit",
       [](MetadataStore& s) {
         auto r = s.ListFunctions("", 0);
         return r ? Status::Ok() : r.error();
       },
       StatusCode::kInvalidArgument},
      {"list with negative limit",
       [](MetadataStore& s) {
         auto r = s.ListFunctions("", -1);
         return r ? Status::Ok() : r.error();
       },
       StatusCode::kInvalidArgument},
  };
  Create(MakeConfig("existing"));
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.name);
    Status st = tc.op(*store_);
    EXPECT_EQ(st.code(), tc.want) << st.ToString();
    EXPECT_FALSE(st.message().empty());
  }
  // None of the failures disturbed the one function.
  auto got = store_->GetFunction("existing");
  ASSERT_TRUE(got.has_value()) << got.error().ToString();
  ExpectSameConfig(MakeConfig("existing"), *got);
}

struct UpdateCase {
  std::string name;
  std::string expected_revision;
  StatusCode want;
};

TEST_F(SqliteStoreTest, UpdateChecksRevision) {
  const std::vector<UpdateCase> cases = {
      {"unconditional", "", StatusCode::kOk},
      {"matching revision", "rev-1", StatusCode::kOk},
      {"stale revision", "rev-0", StatusCode::kFailedPrecondition},
      {"revision prefix", "rev-", StatusCode::kFailedPrecondition},
  };
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.name);
    const std::string name = "upd-" + std::to_string(&tc - cases.data());
    FunctionConfig before = MakeConfig(name, 100);
    Create(before);

    FunctionConfig after = MakeConfig(name, 200, "sha-new");
    after.memory_mb = 2048;
    after.description = "changed";
    after.revision_id = "rev-2";
    Status st = store_->UpdateFunction(after, tc.expected_revision);
    EXPECT_EQ(st.code(), tc.want) << st.ToString();

    auto got = store_->GetFunction(name);
    ASSERT_TRUE(got.has_value()) << got.error().ToString();
    ExpectSameConfig(tc.want == StatusCode::kOk ? after : before, *got);
  }
}

TEST_F(SqliteStoreTest, UpdateRevisionCheckIsAtomicUnderContention) {
  Create(MakeConfig("contended"));
  constexpr int kThreads = 8;
  std::atomic<int> won{0}, lost{0}, other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      FunctionConfig c = MakeConfig("contended");
      c.revision_id = "rev-from-" + std::to_string(i);
      Status st = store_->UpdateFunction(c, "rev-1");
      if (st.ok()) {
        ++won;
      } else if (st.code() == StatusCode::kFailedPrecondition) {
        ++lost;
      } else {
        ++other;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(won.load(), 1);
  EXPECT_EQ(lost.load(), kThreads - 1);
  EXPECT_EQ(other.load(), 0);
}

TEST_F(SqliteStoreTest, DeleteRemovesEverythingAndNameCanBeReused) {
  Create(MakeConfig("gone", 10, "sha-old"));
  ASSERT_TRUE(store_->DeleteFunction("gone").ok());
  auto got = store_->GetFunction("gone");
  ASSERT_FALSE(got.has_value());
  EXPECT_EQ(got.error().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->DeleteFunction("gone").code(), StatusCode::kNotFound);
  // The cascade dropped the $LATEST row: nothing references the old code any more.
  auto code = store_->ReferencedCode();
  ASSERT_TRUE(code.has_value());
  EXPECT_TRUE(code->empty());
  EXPECT_EQ(RawQueryInt(db_path(), "SELECT count(*) FROM function_versions"), 0);

  Create(MakeConfig("gone", 20, "sha-new"));
  got = store_->GetFunction("gone");
  ASSERT_TRUE(got.has_value()) << got.error().ToString();
  EXPECT_EQ(got->code_sha256_hex, "sha-new");
}

TEST_F(SqliteStoreTest, ListPagesInNameOrderWithoutDuplicates) {
  constexpr int kCount = 120;
  std::vector<std::string> want;
  // Created out of order, so order must come from the query.
  for (int i = kCount - 1; i >= 0; --i) {
    std::string name = fmt::format("fn-{:03}", (i * 7) % kCount);
    Create(MakeConfig(name));
  }
  for (int i = 0; i < kCount; ++i) want.push_back(fmt::format("fn-{:03}", i));

  std::vector<std::string> seen;
  std::vector<size_t> page_sizes;
  std::string after;
  while (true) {
    auto page = store_->ListFunctions(after, 50);
    ASSERT_TRUE(page.has_value()) << page.error().ToString();
    if (page->empty()) break;
    page_sizes.push_back(page->size());
    for (const auto& c : *page) seen.push_back(c.name);
    after = page->back().name;
    ASSERT_LE(page_sizes.size(), 4u) << "paging does not terminate";
  }
  EXPECT_EQ(page_sizes, (std::vector<size_t>{50, 50, 20}));
  EXPECT_EQ(seen, want);
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), seen.size());

  // Each listed config is the full stored config.
  auto first = store_->ListFunctions("", 1);
  ASSERT_TRUE(first.has_value());
  ASSERT_EQ(first->size(), 1u);
  ExpectSameConfig(MakeConfig("fn-000"), first->front());
}

struct ListCase {
  std::string after;
  int limit;
  std::vector<std::string> want;
};

TEST_F(SqliteStoreTest, ListStartsStrictlyAfterName) {
  for (const char* n : {"a", "b", "bb", "c"}) Create(MakeConfig(n));
  const std::vector<ListCase> cases = {
      {"", 10, {"a", "b", "bb", "c"}},
      {"", 2, {"a", "b"}},
      {"a", 10, {"b", "bb", "c"}},
      {"b", 10, {"bb", "c"}},
      {"ba", 10, {"bb", "c"}},  // a marker that is no function still works
      {"c", 10, {}},
      {"zzz", 10, {}},
  };
  for (const auto& tc : cases) {
    SCOPED_TRACE(fmt::format("after={} limit={}", tc.after, tc.limit));
    auto page = store_->ListFunctions(tc.after, tc.limit);
    ASSERT_TRUE(page.has_value()) << page.error().ToString();
    std::vector<std::string> names;
    for (const auto& c : *page) names.push_back(c.name);
    EXPECT_EQ(names, tc.want);
  }
}

TEST_F(SqliteStoreTest, UsageCountsFunctionsAndSumsCodeSize) {
  auto usage = store_->GetUsage();
  ASSERT_TRUE(usage.has_value()) << usage.error().ToString();
  EXPECT_EQ(usage->function_count, 0);
  EXPECT_EQ(usage->total_code_size, 0);

  Create(MakeConfig("a", 100));
  Create(MakeConfig("b", 250));
  Create(MakeConfig("c", 4'000'000'000));  // beyond 32 bits
  usage = store_->GetUsage();
  ASSERT_TRUE(usage.has_value());
  EXPECT_EQ(usage->function_count, 3);
  EXPECT_EQ(usage->total_code_size, 100 + 250 + 4'000'000'000);

  ASSERT_TRUE(store_->UpdateFunction(MakeConfig("b", 50), "").ok());
  ASSERT_TRUE(store_->DeleteFunction("c").ok());
  usage = store_->GetUsage();
  ASSERT_TRUE(usage.has_value());
  EXPECT_EQ(usage->function_count, 2);
  EXPECT_EQ(usage->total_code_size, 150);
}

TEST_F(SqliteStoreTest, ReferencedCodeIsDistinctAndSkipsCodeless) {
  Create(MakeConfig("a", 1, "bbbb"));
  Create(MakeConfig("b", 1, "aaaa"));
  Create(MakeConfig("c", 1, "aaaa"));  // shared package
  FunctionConfig codeless = MakeConfig("d");
  codeless.code_sha256_hex.clear();
  Create(codeless);

  auto code = store_->ReferencedCode();
  ASSERT_TRUE(code.has_value()) << code.error().ToString();
  EXPECT_EQ(*code, (std::vector<std::string>{"aaaa", "bbbb"}));

  // Repointing "a" drops "bbbb" from the set.
  ASSERT_TRUE(store_->UpdateFunction(MakeConfig("a", 1, "cccc"), "").ok());
  code = store_->ReferencedCode();
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, (std::vector<std::string>{"aaaa", "cccc"}));
}

TEST_F(SqliteStoreTest, DataSurvivesReopen) {
  Create(MakeConfig("kept"));
  Create(MakeConfig("updated", 10));
  Create(MakeConfig("deleted"));
  FunctionConfig updated = MakeConfig("updated", 20, "sha-2");
  updated.revision_id = "rev-2";
  ASSERT_TRUE(store_->UpdateFunction(updated, "rev-1").ok());
  ASSERT_TRUE(store_->DeleteFunction("deleted").ok());

  Reopen();

  auto kept = store_->GetFunction("kept");
  ASSERT_TRUE(kept.has_value()) << kept.error().ToString();
  ExpectSameConfig(MakeConfig("kept"), *kept);
  auto got = store_->GetFunction("updated");
  ASSERT_TRUE(got.has_value()) << got.error().ToString();
  ExpectSameConfig(updated, *got);
  EXPECT_EQ(store_->GetFunction("deleted").error().code(), StatusCode::kNotFound);
  // The revision survives too: a stale one is still refused after the restart.
  EXPECT_EQ(store_->UpdateFunction(MakeConfig("updated"), "rev-1").code(),
            StatusCode::kFailedPrecondition);
  // A reopened store keeps working.
  Create(MakeConfig("after-restart"));
  auto usage = store_->GetUsage();
  ASSERT_TRUE(usage.has_value());
  EXPECT_EQ(usage->function_count, 3);
}

TEST_F(SqliteStoreTest, StampsSchemaVersionAndUsesWal) {
  EXPECT_EQ(RawQueryInt(db_path(), "PRAGMA user_version"), kSqliteSchemaVersion);
  EXPECT_EQ(RawQueryInt(db_path(), "PRAGMA application_id"), kSqliteApplicationId);
  // journal_mode=WAL is persistent in the file; 1 means the query answered "wal".
  EXPECT_EQ(RawQueryInt(db_path(), "SELECT journal_mode = 'wal' FROM pragma_journal_mode"), 1);
  Reopen();  // reopening an up-to-date file migrates nothing and changes nothing
  EXPECT_EQ(RawQueryInt(db_path(), "PRAGMA user_version"), kSqliteSchemaVersion);
}

TEST_F(SqliteStoreTest, TwoConnectionsOnOneFileSeeEachOther) {
  auto other = OpenSqliteStore(db_path());
  ASSERT_TRUE(other.has_value()) << other.error().ToString();
  Create(MakeConfig("from-first"));
  ASSERT_TRUE((*other)->CreateFunction(MakeConfig("from-second")).ok());
  EXPECT_TRUE((*other)->GetFunction("from-first").has_value());
  EXPECT_TRUE(store_->GetFunction("from-second").has_value());
  EXPECT_EQ((*other)->CreateFunction(MakeConfig("from-first")).code(),
            StatusCode::kAlreadyExists);
}

TEST_F(SqliteStoreTest, UnreadableStoredConfigIsInternal) {
  Create(MakeConfig("broken"));
  RawExec(db_path(), "UPDATE function_versions SET config = '{not json' WHERE function_name = 'broken'");
  auto got = store_->GetFunction("broken");
  ASSERT_FALSE(got.has_value());
  EXPECT_EQ(got.error().code(), StatusCode::kInternal);
  EXPECT_NE(got.error().message().find("broken"), std::string::npos) << got.error().message();

  RawExec(db_path(),
          "UPDATE function_versions SET config = '{\"name\":\"broken\",\"memory_mb\":1.5}' "
          "WHERE function_name = 'broken'");
  got = store_->GetFunction("broken");
  ASSERT_FALSE(got.has_value());
  EXPECT_EQ(got.error().code(), StatusCode::kInternal);
}

TEST_F(SqliteStoreTest, ConcurrentWritersAllSucceed) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 25;
  std::vector<std::vector<Status>> results(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string name = fmt::format("t{}-f{:02}", t, i);
        results[t].push_back(store_->CreateFunction(MakeConfig(name, 1)));
        // Reads interleave with the writes of the other threads.
        auto got = store_->GetFunction(name);
        results[t].push_back(got ? Status::Ok() : got.error());
      }
    });
  }
  for (auto& th : threads) th.join();
  for (const auto& per_thread : results) {
    for (const auto& st : per_thread) EXPECT_TRUE(st.ok()) << st.ToString();
  }
  auto usage = store_->GetUsage();
  ASSERT_TRUE(usage.has_value());
  EXPECT_EQ(usage->function_count, kThreads * kPerThread);
  EXPECT_EQ(usage->total_code_size, kThreads * kPerThread);
  auto all = store_->ListFunctions("", 1000);
  ASSERT_TRUE(all.has_value());
  EXPECT_EQ(all->size(), static_cast<size_t>(kThreads * kPerThread));
}

// Opening files that are not (this version's) Hearth metadata databases.
struct OpenCase {
  std::string name;
  std::function<void(const fs::path&)> plant;
  StatusCode want;
};

TEST(SqliteStoreOpenTest, RefusesFilesItCannotOwn) {
  const std::vector<OpenCase> cases = {
      {"newer schema",
       [](const fs::path& p) {
         RawExec(p, fmt::format("PRAGMA application_id = {}; PRAGMA user_version = {};",
                                kSqliteApplicationId, kSqliteSchemaVersion + 1));
       },
       StatusCode::kFailedPrecondition},
      {"another application's database",
       [](const fs::path& p) { RawExec(p, "CREATE TABLE other (x INTEGER);"); },
       StatusCode::kFailedPrecondition},
      {"versioned but another application id",
       [](const fs::path& p) { RawExec(p, "PRAGMA application_id = 7; PRAGMA user_version = 1;"); },
       StatusCode::kFailedPrecondition},
      {"not a database",
       [](const fs::path& p) {
         std::ofstream(p) << std::string(4096, 'x');
       },
       StatusCode::kIOError},
      {"a directory", [](const fs::path& p) { fs::create_directories(p); },
       StatusCode::kIOError},
  };
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.name);
    TempDir dir;
    ASSERT_FALSE(dir.path().empty());
    fs::path db = dir.path() / "hearth.db";
    tc.plant(db);
    auto opened = OpenSqliteStore(db);
    ASSERT_FALSE(opened.has_value());
    EXPECT_EQ(opened.error().code(), tc.want) << opened.error().ToString();
    EXPECT_FALSE(opened.error().message().empty());
  }
}

TEST(SqliteStoreOpenTest, EmptyExistingFileBecomesAStore) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  fs::path db = dir.path() / "hearth.db";
  std::ofstream{db};  // zero bytes: SQLite treats it as an empty database
  auto opened = OpenSqliteStore(db);
  ASSERT_TRUE(opened.has_value()) << opened.error().ToString();
  EXPECT_TRUE((*opened)->CreateFunction(MakeConfig("f")).ok());
}


// --- Versions (schema 1) and aliases (schema 2) -----------------------------------------------

TEST_F(SqliteStoreTest, PublishedVersionsAreNumberedAndNeverReused) {
  FunctionConfig c = MakeConfig("f", 100);
  Create(c);
  auto v1 = store_->PublishVersion(c);
  ASSERT_TRUE(v1.has_value()) << v1.error().ToString();
  EXPECT_EQ(v1->version, "1");
  auto v2 = store_->PublishVersion(c);
  ASSERT_TRUE(v2.has_value());
  EXPECT_EQ(v2->version, "2");
  ASSERT_TRUE(store_->DeleteVersion("f", "2").ok());
  auto v3 = store_->PublishVersion(c);
  ASSERT_TRUE(v3.has_value());
  EXPECT_EQ(v3->version, "3");  // 2 is gone but never handed out again
  Reopen();
  auto v4 = store_->PublishVersion(c);
  ASSERT_TRUE(v4.has_value());
  EXPECT_EQ(v4->version, "4");
  auto list = store_->ListVersions("f");
  ASSERT_TRUE(list.has_value());
  std::vector<std::string> got;
  for (const auto& v : *list) got.push_back(v.version);
  EXPECT_EQ(got, (std::vector<std::string>{"1", "3", "4"}));
  FunctionConfig want = c;
  want.version = "3";
  ExpectSameConfig(want, (*list)[1]);
  // $LATEST is untouched, and every version's package counts in the usage.
  auto latest = store_->GetFunction("f");
  ASSERT_TRUE(latest.has_value());
  EXPECT_EQ(latest->version, config::kLatest);
  auto usage = store_->GetUsage();
  ASSERT_TRUE(usage.has_value());
  EXPECT_EQ(usage->total_code_size, 400);
  EXPECT_EQ(usage->function_count, 1);
}

TEST_F(SqliteStoreTest, VersionErrors) {
  FunctionConfig c = MakeConfig("f");
  EXPECT_EQ(store_->PublishVersion(c).error().code(), StatusCode::kNotFound);
  Create(c);
  EXPECT_EQ(store_->DeleteVersion("f", "1").code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->DeleteVersion("f", config::kLatest).code(), StatusCode::kInvalidArgument);
  auto none = store_->ListVersions("nobody");
  ASSERT_TRUE(none.has_value());
  EXPECT_TRUE(none->empty());
}

TEST_F(SqliteStoreTest, VersionCodeIsReferencedUntilTheVersionGoes) {
  FunctionConfig c = MakeConfig("f", 10, "old");
  Create(c);
  ASSERT_TRUE(store_->PublishVersion(c).has_value());
  FunctionConfig next = c;
  next.code_sha256_hex = "new";
  next.revision_id = "rev-2";
  ASSERT_TRUE(store_->UpdateFunction(next, "rev-1").ok());
  auto refs = store_->ReferencedCode();
  ASSERT_TRUE(refs.has_value());
  EXPECT_EQ(*refs, (std::vector<std::string>{"new", "old"}));
  ASSERT_TRUE(store_->DeleteVersion("f", "1").ok());
  refs = store_->ReferencedCode();
  EXPECT_EQ(*refs, (std::vector<std::string>{"new"}));
}

TEST_F(SqliteStoreTest, AliasesRoundTripAndFollowTheirFunction) {
  Create(MakeConfig("f"));
  config::AliasConfig a{.function_name = "f",
                        .name = "live",
                        .function_version = "1",
                        .description = "d",
                        .additional_version = "2",
                        .additional_weight = 0.125,
                        .revision_id = "ra"};
  ASSERT_TRUE(store_->CreateAlias(a).ok());
  EXPECT_EQ(store_->CreateAlias(a).code(), StatusCode::kAlreadyExists);
  config::AliasConfig orphan = a;
  orphan.function_name = "nobody";
  EXPECT_EQ(store_->CreateAlias(orphan).code(), StatusCode::kNotFound);
  Reopen();
  auto list = store_->ListAliases("f");
  ASSERT_TRUE(list.has_value());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].function_version, "1");
  EXPECT_EQ((*list)[0].description, "d");
  EXPECT_EQ((*list)[0].additional_version, "2");
  EXPECT_DOUBLE_EQ((*list)[0].additional_weight, 0.125);
  EXPECT_EQ((*list)[0].revision_id, "ra");

  config::AliasConfig moved = a;
  moved.function_version = "3";
  moved.additional_version.clear();
  moved.revision_id = "rb";
  EXPECT_EQ(store_->UpdateAlias(moved, "wrong").code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(store_->UpdateAlias(moved, "ra").ok());
  list = store_->ListAliases("f");
  EXPECT_EQ((*list)[0].function_version, "3");
  EXPECT_TRUE((*list)[0].additional_version.empty());

  EXPECT_EQ(store_->DeleteAlias("f", "other").code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_->CreateAlias(config::AliasConfig{.function_name = "f", .name = "b",
                                                       .function_version = "1"})
                  .ok());
  ASSERT_TRUE(store_->DeleteAlias("f", "live").ok());
  list = store_->ListAliases("f");
  ASSERT_EQ(list->size(), 1u);
  // Deleting the function drops its aliases.
  ASSERT_TRUE(store_->DeleteFunction("f").ok());
  EXPECT_EQ(RawQueryInt(db_path(), "SELECT count(*) FROM function_aliases"), 0);
}

TEST(SqliteStoreMigrationTest, SchemaOneUpgradesInPlace) {
  TempDir dir;
  const fs::path p = dir.path() / "hearth.db";
  // A data dir written by a Hearth with schema 1 (functions and $LATEST only).
  RawExec(p, fmt::format(R"sql(
    PRAGMA application_id = {};
    CREATE TABLE functions (name TEXT PRIMARY KEY NOT NULL,
      next_version INTEGER NOT NULL DEFAULT 1,
      created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')));
    CREATE TABLE function_versions (
      function_name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
      version TEXT NOT NULL, config TEXT NOT NULL, revision_id TEXT NOT NULL,
      code_sha256 TEXT NOT NULL, code_size INTEGER NOT NULL,
      PRIMARY KEY (function_name, version));
    CREATE INDEX function_versions_by_code ON function_versions(code_sha256);
    PRAGMA user_version = 1;)sql",
                         kSqliteApplicationId));
  {
    auto store = OpenSqliteStore(p);
    ASSERT_TRUE(store.has_value()) << store.error().ToString();
    ASSERT_TRUE((*store)->CreateFunction(MakeConfig("old")).ok());
  }
  RawExec(p,
          "PRAGMA user_version = 1; DROP TABLE function_aliases; DROP TABLE layer_versions; "
          "DROP TABLE layers; DROP TABLE function_concurrency; DROP TABLE provisioned_concurrency;");
  auto store = OpenSqliteStore(p);
  ASSERT_TRUE(store.has_value()) << store.error().ToString();
  EXPECT_EQ(RawQueryInt(p, "PRAGMA user_version"), kSqliteSchemaVersion);
  auto got = (*store)->GetFunction("old");
  ASSERT_TRUE(got.has_value());  // data kept
  EXPECT_TRUE((*store)
                  ->CreateAlias(config::AliasConfig{.function_name = "old", .name = "a",
                                                    .function_version = "$LATEST"})
                  .ok());
}

LayerVersion MakeLayer(const std::string& name, const std::string& sha, int64_t size = 100) {
  LayerVersion lv;
  lv.layer_name = name;
  lv.description = "layer " + name;
  lv.compatible_runtimes = {"python3.11", "provided.al2023"};
  lv.compatible_architectures = {"x86_64"};
  lv.license_info = "MIT";
  lv.code_sha256_hex = sha;
  lv.code_size = size;
  lv.unzipped_size = size * 2;
  lv.created_date = "2018-11-14T23:03:52.894+0000";
  return lv;
}

TEST_F(SqliteStoreTest, LayerVersionsRoundTripAndAreNeverReused) {
  auto v1 = store_->PublishLayerVersion(MakeLayer("L", "s1"));
  ASSERT_TRUE(v1.has_value()) << v1.error().ToString();
  EXPECT_EQ(v1->version, 1);
  auto v2 = store_->PublishLayerVersion(MakeLayer("L", "s2"));
  ASSERT_TRUE(v2.has_value());
  EXPECT_EQ(v2->version, 2);
  auto other = store_->PublishLayerVersion(MakeLayer("M", "s3"));
  ASSERT_TRUE(other.has_value());
  EXPECT_EQ(other->version, 1);

  auto got = store_->GetLayerVersion("L", 1, false);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->description, "layer L");
  EXPECT_EQ(got->compatible_runtimes, (std::vector<std::string>{"python3.11", "provided.al2023"}));
  EXPECT_EQ(got->compatible_architectures, (std::vector<std::string>{"x86_64"}));
  EXPECT_EQ(got->license_info, "MIT");
  EXPECT_EQ(got->code_sha256_hex, "s1");
  EXPECT_EQ(got->code_size, 100);
  EXPECT_EQ(got->unzipped_size, 200);
  EXPECT_EQ(got->created_date, "2018-11-14T23:03:52.894+0000");
  EXPECT_FALSE(got->deleted);

  auto list = store_->ListLayerVersions("L");
  ASSERT_TRUE(list.has_value());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].version, 2);  // newest first
  EXPECT_EQ((*list)[1].version, 1);

  // Delete the newest: the number is not handed out again, even after a reopen.
  ASSERT_TRUE(store_->DeleteLayerVersion("L", 2).ok());
  ASSERT_TRUE(store_->DeleteLayerVersion("L", 99).ok());  // absent: still Ok
  EXPECT_EQ(store_->GetLayerVersion("L", 2, false).error().code(), StatusCode::kNotFound);
  auto kept = store_->GetLayerVersion("L", 2, true);
  ASSERT_TRUE(kept.has_value());
  EXPECT_TRUE(kept->deleted);
  Reopen();
  auto v3 = store_->PublishLayerVersion(MakeLayer("L", "s4"));
  ASSERT_TRUE(v3.has_value());
  EXPECT_EQ(v3->version, 3);

  auto all = store_->ListAllLayerVersions();
  ASSERT_TRUE(all.has_value());
  std::vector<std::string> seen;
  for (const auto& lv : *all) seen.push_back(fmt::format("{}:{}", lv.layer_name, lv.version));
  EXPECT_EQ(seen, (std::vector<std::string>{"L:3", "L:1", "M:1"}));
}

TEST_F(SqliteStoreTest, LayerCodeIsReferencedWhileLiveOrUsed) {
  ASSERT_TRUE(store_->PublishLayerVersion(MakeLayer("L", "layer-a", 7)).has_value());
  ASSERT_TRUE(store_->PublishLayerVersion(MakeLayer("L", "layer-b", 9)).has_value());
  FunctionConfig c = MakeConfig("f", 10, "fn");
  c.layers = {"arn:aws:lambda:us-east-1:123456789012:layer:L:1"};
  c.layer_code_sizes = {7};
  c.layer_digests = {"layer-a"};
  Create(c);
  auto usage = store_->GetUsage();
  ASSERT_TRUE(usage.has_value());
  EXPECT_EQ(usage->total_code_size, 10 + 7 + 9);
  EXPECT_EQ(*store_->ReferencedCode(), (std::vector<std::string>{"fn", "layer-a", "layer-b"}));
  // Deleted but used by f: kept. Deleted and unused: dropped.
  ASSERT_TRUE(store_->DeleteLayerVersion("L", 1).ok());
  ASSERT_TRUE(store_->DeleteLayerVersion("L", 2).ok());
  EXPECT_EQ(*store_->ReferencedCode(), (std::vector<std::string>{"fn", "layer-a"}));
  EXPECT_EQ(store_->GetUsage()->total_code_size, 10);
  ASSERT_TRUE(store_->DeleteFunction("f").ok());
  EXPECT_EQ(*store_->ReferencedCode(), (std::vector<std::string>{}));
}

TEST_F(SqliteStoreTest, ConcurrencySettingsPersistAndGoWithTheFunction) {
  Create(MakeConfig("f"));
  Create(MakeConfig("g"));
  EXPECT_EQ(store_->PutReservedConcurrency("nope", 5).code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_->PutReservedConcurrency("f", 5).ok());
  ASSERT_TRUE(store_->PutReservedConcurrency("f", 7).ok());  // replaces
  ASSERT_TRUE(store_->PutReservedConcurrency("g", 0).ok());
  ProvisionedConcurrency pc{.function_name = "f", .qualifier = "live", .requested = 3,
                            .last_modified = "2024-01-01T00:00:00.000+0000"};
  ASSERT_TRUE(store_->PutProvisionedConcurrency(pc).ok());
  pc.qualifier = "1";
  pc.requested = 2;
  ASSERT_TRUE(store_->PutProvisionedConcurrency(pc).ok());
  pc.requested = 4;
  ASSERT_TRUE(store_->PutProvisionedConcurrency(pc).ok());  // replaces
  pc.function_name = "nope";
  EXPECT_EQ(store_->PutProvisionedConcurrency(pc).code(), StatusCode::kNotFound);
  Reopen();  // survives a restart
  auto reserved = store_->ListReservedConcurrency();
  ASSERT_TRUE(reserved.has_value()) << reserved.error().ToString();
  EXPECT_EQ(*reserved, (std::vector<std::pair<std::string, int>>{{"f", 7}, {"g", 0}}));
  auto all = store_->ListProvisionedConcurrency("");
  ASSERT_TRUE(all.has_value()) << all.error().ToString();
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].qualifier, "1");
  EXPECT_EQ((*all)[0].requested, 4);
  EXPECT_EQ((*all)[1].qualifier, "live");
  EXPECT_EQ((*all)[1].last_modified, "2024-01-01T00:00:00.000+0000");
  EXPECT_TRUE(store_->ListProvisionedConcurrency("g")->empty());
  EXPECT_EQ(store_->DeleteProvisionedConcurrency("f", "9").code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_->DeleteProvisionedConcurrency("f", "1").ok());
  EXPECT_EQ(store_->ListProvisionedConcurrency("f")->size(), 1u);
  ASSERT_TRUE(store_->DeleteReservedConcurrency("g").ok());
  ASSERT_TRUE(store_->DeleteReservedConcurrency("g").ok());  // absent: still Ok
  ASSERT_TRUE(store_->DeleteFunction("f").ok());
  EXPECT_TRUE(store_->ListReservedConcurrency()->empty());
  EXPECT_TRUE(store_->ListProvisionedConcurrency("")->empty());
}

}  // namespace
}  // namespace hearth::store
