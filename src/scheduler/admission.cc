#include "scheduler/admission.h"

#include <algorithm>

#include <fmt/format.h>

namespace hearth::scheduler {

std::optional<int> ConcurrencyLimits::reserved(std::string_view function) const {
  auto it = entries_.find(function);
  return it == entries_.end() ? std::nullopt : it->second.reserved;
}

int ConcurrencyLimits::provisioned(std::string_view function) const {
  auto it = entries_.find(function);
  return it == entries_.end() ? 0 : it->second.provisioned;
}

int ConcurrencyLimits::in_flight(std::string_view function) const {
  auto it = entries_.find(function);
  return it == entries_.end() ? 0 : it->second.in_flight;
}

Status ConcurrencyLimits::CheckReserved(std::string_view function, int n) const {
  int current = 0;
  int provisioned = 0;
  if (auto it = entries_.find(function); it != entries_.end()) {
    current = Guarantee(it->second);
    provisioned = it->second.provisioned;
  }
  if (limit_ - (guaranteed_ - current) - n < kMinimumUnreserved) {
    return Status::InvalidArgument(fmt::format(
        "Specified ReservedConcurrentExecutions for function decreases account's "
        "UnreservedConcurrentExecution below its minimum value of [{}].",
        kMinimumUnreserved));
  }
  if (n < provisioned) {
    return Status::InvalidArgument(fmt::format(
        "Specified ReservedConcurrentExecutions for function is less than the function's "
        "provisioned concurrency [{}]. Reduce provisioned concurrency first.",
        provisioned));
  }
  return Status::Ok();
}

Status ConcurrencyLimits::CheckProvisioned(std::string_view function, int total) const {
  auto it = entries_.find(function);
  if (it != entries_.end() && it->second.reserved) {
    if (total > *it->second.reserved) {
      return Status::InvalidArgument(fmt::format(
          "Requested Provisioned Concurrency should not be greater than the "
          "reservedConcurrentExecution for function [{}].",
          *it->second.reserved));
    }
    return Status::Ok();
  }
  const int current = it == entries_.end() ? 0 : it->second.provisioned;
  if (limit_ - (guaranteed_ - current) - total < kMinimumUnreserved) {
    return Status::InvalidArgument(fmt::format(
        "Requested Provisioned Concurrency decreases account's UnreservedConcurrentExecution "
        "below its minimum value of [{}].",
        kMinimumUnreserved));
  }
  return Status::Ok();
}

void ConcurrencyLimits::SetReserved(const std::string& function, std::optional<int> n) {
  auto it = entries_.try_emplace(function).first;
  it->second.reserved = n;
  Recompute();
  Prune(it);
}

void ConcurrencyLimits::SetProvisioned(const std::string& function, int total) {
  auto it = entries_.try_emplace(function).first;
  it->second.provisioned = std::max(total, 0);
  Recompute();
  Prune(it);
}

void ConcurrencyLimits::Forget(std::string_view function) {
  auto it = entries_.find(function);
  if (it == entries_.end()) return;
  it->second.reserved.reset();
  it->second.provisioned = 0;
  Recompute();
  Prune(it);
}

Status ConcurrencyLimits::TryAcquire(const std::string& function) {
  auto it = entries_.try_emplace(function).first;
  Entry& e = it->second;
  if (e.reserved) {
    if (e.in_flight >= *e.reserved) {
      Prune(it);
      return Status::ResourceExhausted("Rate Exceeded.", kReasonReservedLimit);
    }
  } else if (e.in_flight >= e.provisioned && pool_in_use_ >= unreserved()) {
    Prune(it);
    return Status::ResourceExhausted("Rate Exceeded.", kReasonAccountLimit);
  }
  pool_in_use_ -= PoolUse(e);
  ++e.in_flight;
  pool_in_use_ += PoolUse(e);
  ++total_in_flight_;
  return Status::Ok();
}

void ConcurrencyLimits::Release(const std::string& function) {
  auto it = entries_.find(function);
  if (it == entries_.end() || it->second.in_flight == 0) return;
  pool_in_use_ -= PoolUse(it->second);
  --it->second.in_flight;
  pool_in_use_ += PoolUse(it->second);
  --total_in_flight_;
  Prune(it);
}

void ConcurrencyLimits::Recompute() {
  guaranteed_ = 0;
  pool_in_use_ = 0;
  for (const auto& [name, e] : entries_) {
    guaranteed_ += Guarantee(e);
    pool_in_use_ += PoolUse(e);
  }
}

void ConcurrencyLimits::Prune(std::map<std::string, Entry, std::less<>>::iterator it) {
  const Entry& e = it->second;
  if (!e.reserved && e.provisioned == 0 && e.in_flight == 0) entries_.erase(it);
}

double TokenBucket::tokens(std::chrono::steady_clock::time_point now) const {
  if (now <= last_) return tokens_;
  const double elapsed = std::chrono::duration<double>(now - last_).count();
  const double period = std::chrono::duration<double>(period_).count();
  return std::min(capacity_, tokens_ + (period > 0 ? elapsed * capacity_ / period : capacity_));
}

bool TokenBucket::TryTake(std::chrono::steady_clock::time_point now) {
  tokens_ = tokens(now);
  if (now > last_) last_ = now;
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
}

int64_t MemoryGate::Estimate(std::string_view function, int memory_mb) const {
  int64_t e = policy_.default_estimate_bytes;
  if (auto it = learned_.find(function); it != learned_.end()) e = it->second;
  const int64_t configured = int64_t{memory_mb} << 20;
  if (configured > 0) e = std::min(e, configured);
  return std::max<int64_t>(e, 1);
}

void MemoryGate::Learn(const std::string& function, int64_t peak_bytes) {
  if (peak_bytes <= 0) return;
  auto [it, inserted] = learned_.try_emplace(function, peak_bytes);
  if (!inserted) it->second = std::max(it->second, peak_bytes);
}

void MemoryGate::Forget(std::string_view function) {
  if (auto it = learned_.find(function); it != learned_.end()) learned_.erase(it);
}

int64_t MemoryGate::TryReserve(std::string_view function, int memory_mb) {
  const int64_t need = Estimate(function, memory_mb);
  if (available_() - pending_ - policy_.reserve_bytes < need) return 0;
  pending_ += need;
  return need;
}

void MemoryGate::Unreserve(int64_t bytes) { pending_ = std::max<int64_t>(0, pending_ - bytes); }

}  // namespace hearth::scheduler
