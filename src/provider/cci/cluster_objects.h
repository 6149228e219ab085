// ClusterObjects: what the backend provider reads from the cluster besides the pod itself: the
// ConfigMaps, Secrets and SFS claims a pod depends on, which it copies into the backend
// namespace. An interface so the provider does not care whether answers come from informer
// caches (the daemon) or a table (unit tests).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/json/value.hpp>
#include <string>

#include "common/result.h"

namespace burstlet::provider::cci {

// Arguments are references: callers pass named objects they keep until the call completes
// (GCC 12 mishandles class-type temporaries inside co_await expressions).
class ClusterObjects {
 public:
  virtual ~ClusterObjects() = default;
  // The object as the API returns it; kNotFound when it does not exist.
  virtual boost::asio::awaitable<Result<boost::json::value>> configMap(const std::string& ns,
                                                                       const std::string& name) = 0;
  virtual boost::asio::awaitable<Result<boost::json::value>> secret(const std::string& ns,
                                                                    const std::string& name) = 0;
  virtual boost::asio::awaitable<Result<boost::json::value>> persistentVolumeClaim(
      const std::string& ns, const std::string& name) = 0;
  virtual boost::asio::awaitable<Result<boost::json::value>> persistentVolume(
      const std::string& name) = 0;
  virtual boost::asio::awaitable<Result<boost::json::value>> storageClass(
      const std::string& name) = 0;
};

}  // namespace burstlet::provider::cci
