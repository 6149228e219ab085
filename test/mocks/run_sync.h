// Runs a coroutine to completion on an io_context, for tests.
#pragma once

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <exception>
#include <optional>

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

}  // namespace burstlet::testing
