#pragma once
// Weighted alias routing (lambda-reference.md §7): each request through an alias goes to the
// additional version with probability `additional_weight`, otherwise to the primary version.
// Pure; the randomness is injected so tests can drive it.

#include <functional>
#include <memory>
#include <random>
#include <string>

#include "config/alias_config.h"

namespace hearth::invoke {

// A source of doubles uniform in [0, 1).
using UniformSource = std::function<double()>;

// The version one request through `alias` runs, given `u` uniform in [0, 1).
inline const std::string& PickVersion(const config::AliasConfig& alias, double u) {
  if (!alias.additional_version.empty() && u < alias.additional_weight) {
    return alias.additional_version;
  }
  return alias.function_version;
}

// The default source: a 64-bit Mersenne Twister seeded from std::random_device. Not thread-safe:
// each returned source is meant for one thread (the invoker's, which is loop-confined).
inline UniformSource DefaultUniformSource() {
  std::random_device rd;
  std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
  auto gen = std::make_shared<std::mt19937_64>(seq);
  return [gen]() { return std::uniform_real_distribution<double>(0.0, 1.0)(*gen); };
}

}  // namespace hearth::invoke
