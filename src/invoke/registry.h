#pragma once
// The in-memory view of every function's current configuration, so the invoke path never touches
// the store. Loaded from the store at start; the control plane updates it after each successful
// store write.
//
// Threading: loop-confined.

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "config/function_config.h"

namespace hearth::invoke {

struct FunctionEntry {
  config::FunctionConfig latest;      // $LATEST
  std::filesystem::path code_dir;     // its unpacked code
};

class FunctionRegistry {
 public:
  const FunctionEntry* Find(std::string_view name) const {
    auto it = functions_.find(name);
    return it == functions_.end() ? nullptr : &it->second;
  }
  void Put(FunctionEntry entry) {
    std::string name = entry.latest.name;
    functions_.insert_or_assign(std::move(name), std::move(entry));
  }
  void Erase(std::string_view name) {
    auto it = functions_.find(name);
    if (it != functions_.end()) functions_.erase(it);
  }
  size_t size() const { return functions_.size(); }

 private:
  std::map<std::string, FunctionEntry, std::less<>> functions_;
};

}  // namespace hearth::invoke
