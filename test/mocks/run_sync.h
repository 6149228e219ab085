// Drives an io_context in tests: a coroutine to completion, or until a condition holds.
#pragma once

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <exception>
#include <functional>
#include <optional>
#include <stdexcept>

namespace burstlet::testing {

template <typename T>
T runSync(boost::asio::io_context& io, boost::asio::awaitable<T> work) {
  std::optional<T> out;
  std::exception_ptr error;
  // Results need not be default-constructible: the wrapper stores the value itself.
  auto wrapper = [&out](boost::asio::awaitable<T> w) -> boost::asio::awaitable<void> {
    out.emplace(co_await std::move(w));
  };
  boost::asio::co_spawn(io, wrapper(std::move(work)),
                        [&error](std::exception_ptr e) { error = e; });
  io.restart();
  io.run();
  if (error) {
    std::rethrow_exception(error);
  }
  return std::move(*out);
}

inline void runSync(boost::asio::io_context& io, boost::asio::awaitable<void> work) {
  std::exception_ptr error;
  boost::asio::co_spawn(io, std::move(work), [&error](std::exception_ptr e) { error = e; });
  io.restart();
  io.run();
  if (error) {
    std::rethrow_exception(error);
  }
}

// Runs the io_context until pred() holds or `limit` passes; returns pred().
inline bool runUntil(boost::asio::io_context& io, const std::function<bool()>& pred,
                     std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred() && std::chrono::steady_clock::now() < deadline) {
    if (io.stopped()) {
      io.restart();
    }
    io.run_one_for(std::chrono::milliseconds(10));
  }
  return pred();
}

// Runs `work` to completion like runSync, but returns as soon as it is done, even when other
// work stays pending on the io_context (the timers of an open WebSocket, a server's loop).
template <typename T>
T runDone(boost::asio::io_context& io, boost::asio::awaitable<T> work,
          std::chrono::milliseconds limit = std::chrono::seconds(30)) {
  std::optional<T> out;
  std::exception_ptr error;
  bool done = false;
  auto wrapper = [&out](boost::asio::awaitable<T> w) -> boost::asio::awaitable<void> {
    out.emplace(co_await std::move(w));
  };
  boost::asio::co_spawn(io, wrapper(std::move(work)), [&](std::exception_ptr e) {
    error = e;
    done = true;
  });
  if (!runUntil(
          io, [&done] { return done; }, limit)) {
    throw std::runtime_error("runDone: the work did not finish in time");
  }
  if (error) {
    std::rethrow_exception(error);
  }
  return std::move(*out);
}

}  // namespace burstlet::testing
