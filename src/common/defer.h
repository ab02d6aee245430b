#pragma once
// Defer: run a callable when the scope ends (for one-off cleanups that have no RAII type).

#include <utility>

namespace hearth {

template <class F>
class Defer {
 public:
  explicit Defer(F f) : f_(std::move(f)) {}
  ~Defer() {
    if (active_) f_();
  }
  Defer(const Defer&) = delete;
  Defer& operator=(const Defer&) = delete;
  void Cancel() { active_ = false; }

 private:
  F f_;
  bool active_ = true;
};

}  // namespace hearth
