#pragma once
// The metadata store's door. The embedded default is SQLite (sqlite_store.h); a PostgreSQL
// backend for clusters implements the same interface later.
//
// Thread safety: implementations are safe to call from several threads at once. Every call may
// block on disk: call it from a worker thread, never from the event loop.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "config/alias_config.h"
#include "config/function_config.h"

namespace hearth::store {

// One published layer version (lambda-reference.md §3.5, §4.4).
struct LayerVersion {
  std::string layer_name;
  int64_t version = 0;  // assigned by PublishLayerVersion; never reused
  std::string description;
  std::vector<std::string> compatible_runtimes;
  std::vector<std::string> compatible_architectures;
  std::string license_info;
  std::string code_sha256_hex;
  int64_t code_size = 0;      // zip bytes
  int64_t unzipped_size = 0;  // bytes once unpacked
  std::string created_date;   // "2018-11-14T23:03:52.894+0000"
  bool deleted = false;
};

// One provisioned concurrency configuration (lambda-reference.md section 6): the requested
// number of pre-initialized environments for a published version or an alias. Allocation status
// is live state of the daemon, not stored.
struct ProvisionedConcurrency {
  std::string function_name;
  std::string qualifier;  // a version number or an alias name (never $LATEST)
  int requested = 0;
  std::string last_modified;  // "2018-11-14T23:03:52.894+0000"
};

class MetadataStore {
 public:
  virtual ~MetadataStore() = default;

  // Adds a function whose $LATEST is `latest`. AlreadyExists if the name is taken.
  virtual Status CreateFunction(const config::FunctionConfig& latest) = 0;

  // $LATEST of the named function. NotFound if there is none.
  virtual Result<config::FunctionConfig> GetFunction(std::string_view name) = 0;

  // Replaces $LATEST. If `expected_revision_id` is non-empty and differs from the stored
  // revision, nothing changes and FailedPrecondition is returned. NotFound if absent.
  virtual Status UpdateFunction(const config::FunctionConfig& latest,
                                std::string_view expected_revision_id) = 0;

  // Removes the function and everything it owns. NotFound if absent.
  virtual Status DeleteFunction(std::string_view name) = 0;

  // Functions in name order, starting strictly after `after_name` ("" = from the start), at most
  // `limit` of them.
  virtual Result<std::vector<config::FunctionConfig>> ListFunctions(std::string_view after_name,
                                                                    int limit) = 0;

  // Number of functions and the total zip bytes they reference (GetAccountSettings).
  struct Usage {
    int64_t function_count = 0;
    int64_t total_code_size = 0;
  };
  virtual Result<Usage> GetUsage() = 0;

  // Every code digest (hex) still referenced: by some function version, by a layer version that
  // is not deleted, or by a deleted layer version some function version still uses. The code
  // store keeps these.
  virtual Result<std::vector<std::string>> ReferencedCode() = 0;

  // --- Published versions (immutable snapshots of $LATEST) ---

  // Stores `snapshot` as the function's next version number (the per-function counter, never
  // reused even after deletions) and returns it with `version` set. The stored config says that
  // version whatever `snapshot.version` held. NotFound if the function is absent.
  virtual Result<config::FunctionConfig> PublishVersion(const config::FunctionConfig& snapshot) = 0;

  // The published versions of a function (not $LATEST), in ascending numeric order. An unknown
  // function has none.
  virtual Result<std::vector<config::FunctionConfig>> ListVersions(std::string_view name) = 0;

  // Removes one published version. NotFound if absent. InvalidArgument for "$LATEST".
  virtual Status DeleteVersion(std::string_view name, std::string_view version) = 0;

  // --- Aliases ---

  // AlreadyExists if the function has an alias of that name; NotFound if the function is absent.
  virtual Status CreateAlias(const config::AliasConfig& alias) = 0;
  // Replaces an alias. FailedPrecondition when `expected_revision_id` is non-empty and differs
  // from the stored one; NotFound if absent.
  virtual Status UpdateAlias(const config::AliasConfig& alias,
                             std::string_view expected_revision_id) = 0;
  // NotFound if absent.
  virtual Status DeleteAlias(std::string_view function, std::string_view alias) = 0;
  // A function's aliases in name order.
  virtual Result<std::vector<config::AliasConfig>> ListAliases(std::string_view function) = 0;

  // --- Layers ---

  // Stores `lv` as the layer's next version number (a per-layer counter that survives deletes)
  // and returns it with `version` set (and `deleted` false).
  virtual Result<LayerVersion> PublishLayerVersion(const LayerVersion& lv) = 0;
  // One layer version. NotFound when absent, or when deleted unless `include_deleted`.
  virtual Result<LayerVersion> GetLayerVersion(std::string_view layer_name, int64_t version,
                                               bool include_deleted) = 0;
  // The versions of one layer that are not deleted, newest first.
  virtual Result<std::vector<LayerVersion>> ListLayerVersions(std::string_view layer_name) = 0;
  // Every layer version that is not deleted, by layer name, newest version first.
  virtual Result<std::vector<LayerVersion>> ListAllLayerVersions() = 0;
  // Marks a version deleted (its row stays for the functions using it). Ok when absent.
  virtual Status DeleteLayerVersion(std::string_view layer_name, int64_t version) = 0;

  // --- Concurrency (schema 4) ---

  // Sets the function's reserved concurrency. NotFound if the function is absent.
  virtual Status PutReservedConcurrency(std::string_view function, int reserved) = 0;
  // Removes it (Ok when there is none).
  virtual Status DeleteReservedConcurrency(std::string_view function) = 0;
  // Every function with reserved concurrency, in name order.
  virtual Result<std::vector<std::pair<std::string, int>>> ListReservedConcurrency() = 0;

  // Adds or replaces a provisioned concurrency config. NotFound if the function is absent.
  virtual Status PutProvisionedConcurrency(const ProvisionedConcurrency& pc) = 0;
  // NotFound when there is no such config.
  virtual Status DeleteProvisionedConcurrency(std::string_view function,
                                              std::string_view qualifier) = 0;
  // Every config (of one function, or of all when `function` is empty), by function then
  // qualifier.
  virtual Result<std::vector<ProvisionedConcurrency>> ListProvisionedConcurrency(
      std::string_view function) = 0;
  // Both kinds of concurrency settings go with DeleteFunction.
};

using MetadataStorePtr = std::unique_ptr<MetadataStore>;

}  // namespace hearth::store
