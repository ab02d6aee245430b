#pragma once
// A wake-up primitive for coroutines confined to one executor: waiters re-check their condition
// after every wake-up, so a Notify() before the wait begins is never lost as long as the waiter
// checks its condition first (which is atomic with starting the wait on a single executor).

#include <chrono>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace hearth {

class Notifier {
 public:
  explicit Notifier(boost::asio::any_io_executor ex) : timer_(ex) {}

  // Wakes every current waiter.
  void Notify() { timer_.cancel(); }

  // Suspends until Notify().
  boost::asio::awaitable<void> Wait() {
    timer_.expires_at(std::chrono::steady_clock::time_point::max());
    co_await timer_.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  }

  // Suspends until Notify() (returns true) or `deadline` (returns false). One waiter at a time.
  boost::asio::awaitable<bool> WaitUntil(std::chrono::steady_clock::time_point deadline) {
    timer_.expires_at(deadline);
    auto [ec] = co_await timer_.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    co_return static_cast<bool>(ec);  // operation_aborted means Notify()
  }

 private:
  boost::asio::steady_timer timer_;
};

}  // namespace hearth
