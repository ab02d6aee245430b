#pragma once
// The in-memory view of every function's configuration — $LATEST, every published version and
// every alias — so the invoke path never touches the store. Loaded from the store at start; the
// control plane updates it after each successful store write.
//
// Threading: loop-confined.

#include <charconv>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "config/alias_config.h"
#include "config/function_config.h"

namespace hearth::invoke {

// One published version: its immutable configuration, its unpacked code and its assembled
// layers (/opt; empty when it has none).
struct VersionEntry {
  config::FunctionConfig config;
  std::filesystem::path code_dir;
  std::filesystem::path opt_dir = {};

  // An immutable snapshot of `config` shared by the invocations that run it (made on first use;
  // a published version never changes), so an invoke takes a reference instead of a copy.
  std::shared_ptr<const config::FunctionConfig> Shared() const {
    if (!shared_cache) shared_cache = std::make_shared<const config::FunctionConfig>(config);
    return shared_cache;
  }
  mutable std::shared_ptr<const config::FunctionConfig> shared_cache = {};  // Shared()'s
};

struct FunctionEntry {
  config::FunctionConfig latest;      // $LATEST
  std::filesystem::path code_dir;     // its unpacked code
  std::filesystem::path opt_dir = {};  // its assembled layers (/opt); empty when it has none
  std::map<int64_t, VersionEntry> versions = {};  // published versions by number
  std::map<std::string, config::AliasConfig, std::less<>> aliases = {};  // by alias name

  // A published version by its number ("1", "2", ...); nullptr when absent or not a number.
  const VersionEntry* FindVersion(std::string_view v) const {
    int64_t n = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc() || p != v.data() + v.size()) return nullptr;
    auto it = versions.find(n);
    return it == versions.end() ? nullptr : &it->second;
  }
  // A snapshot of `latest` (see VersionEntry::Shared); FunctionRegistry::Put replaces it.
  std::shared_ptr<const config::FunctionConfig> LatestShared() const {
    if (!latest_shared_cache) latest_shared_cache = std::make_shared<const config::FunctionConfig>(latest);
    return latest_shared_cache;
  }

  const config::AliasConfig* FindAlias(std::string_view name) const {
    auto it = aliases.find(name);
    return it == aliases.end() ? nullptr : &it->second;
  }
  // The published version a qualifier runs: a version number, or an alias's primary version
  // (its routing version is not considered). nullptr for $LATEST, an alias on $LATEST, or
  // unknown qualifiers. Provisioned concurrency runs this.
  const VersionEntry* ResolvePublished(std::string_view qualifier) const {
    if (const config::AliasConfig* a = FindAlias(qualifier)) return FindVersion(a->function_version);
    return FindVersion(qualifier);
  }
  // The highest published version, nullptr when there is none.
  const VersionEntry* LastVersion() const {
    return versions.empty() ? nullptr : &versions.rbegin()->second;
  }
  mutable std::shared_ptr<const config::FunctionConfig> latest_shared_cache = {};  // LatestShared()'s
};

class FunctionRegistry {
 public:
  const FunctionEntry* Find(std::string_view name) const {
    auto it = functions_.find(name);
    return it == functions_.end() ? nullptr : &it->second;
  }
  // Adds a function or replaces its $LATEST (and code dir). Published versions and aliases the
  // registry already holds for it are kept; those carried by `entry` are added.
  void Put(FunctionEntry entry) {
    auto it = functions_.find(entry.latest.name);
    if (it == functions_.end()) {
      std::string name = entry.latest.name;
      functions_.emplace(std::move(name), std::move(entry));
      return;
    }
    it->second.latest = std::move(entry.latest);
    it->second.latest_shared_cache.reset();
    it->second.code_dir = std::move(entry.code_dir);
    it->second.opt_dir = std::move(entry.opt_dir);
    for (auto& [n, v] : entry.versions) it->second.versions.insert_or_assign(n, std::move(v));
    for (auto& [n, a] : entry.aliases) it->second.aliases.insert_or_assign(n, std::move(a));
  }
  // Adds a published version of an existing function (no-op for unknown functions or a
  // non-numeric version).
  void PutVersion(VersionEntry v) {
    auto it = functions_.find(v.config.name);
    if (it == functions_.end()) return;
    int64_t n = 0;
    const std::string& s = v.config.version;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec != std::errc() || p != s.data() + s.size()) return;
    it->second.versions.insert_or_assign(n, std::move(v));
  }
  void EraseVersion(std::string_view name, std::string_view version) {
    auto it = functions_.find(name);
    if (it == functions_.end()) return;
    int64_t n = 0;
    auto [p, ec] = std::from_chars(version.data(), version.data() + version.size(), n);
    if (ec == std::errc() && p == version.data() + version.size()) it->second.versions.erase(n);
  }
  // Adds or replaces an alias of an existing function.
  void PutAlias(config::AliasConfig a) {
    auto it = functions_.find(a.function_name);
    if (it == functions_.end()) return;
    std::string name = a.name;
    it->second.aliases.insert_or_assign(std::move(name), std::move(a));
  }
  void EraseAlias(std::string_view function, std::string_view alias) {
    auto it = functions_.find(function);
    if (it == functions_.end()) return;
    auto a = it->second.aliases.find(alias);
    if (a != it->second.aliases.end()) it->second.aliases.erase(a);
  }
  // Removes the function with every version and alias.
  void Erase(std::string_view name) {
    auto it = functions_.find(name);
    if (it != functions_.end()) functions_.erase(it);
  }
  size_t size() const { return functions_.size(); }

 private:
  std::map<std::string, FunctionEntry, std::less<>> functions_;
};

}  // namespace hearth::invoke
