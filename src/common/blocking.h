#pragma once
// Runs blocking work (disk, SQLite, process creation) on the worker pool and resumes the calling
// coroutine on its own executor with the result. The event loop never blocks on it.

#include <type_traits>
#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace hearth {

//
// g++ 12 mishandles by-value parameters and class temporaries inside co_await expressions
// (destroying them twice). Hence `F&&`, and callers pass a named callable:
//   auto work = [..]() { ... };
//   auto r = co_await RunBlocking(pool, std::move(work));
template <class F>
boost::asio::awaitable<std::invoke_result_t<F>> RunBlocking(boost::asio::thread_pool& pool, F&& f) {
  using R = std::invoke_result_t<F>;
  auto task = [fn = std::forward<F>(f)]() mutable -> boost::asio::awaitable<R> { co_return fn(); };
  co_return co_await boost::asio::co_spawn(pool.get_executor(), std::move(task),
                                           boost::asio::use_awaitable);
}

}  // namespace hearth
