// FakeClusterObjects: the cluster side the cci provider reads (provider/cci/cluster_objects.h),
// answered from tables the test fills, counting reads.
#pragma once

#include <fmt/format.h>

#include <boost/asio/awaitable.hpp>
#include <boost/json/value.hpp>
#include <map>
#include <string>
#include <string_view>

#include "provider/cci/cluster_objects.h"

namespace burstlet::testing {

// The cluster side: objects by "ns/name" (or name), and how often they were read.
class FakeClusterObjects final : public provider::cci::ClusterObjects {
 public:
  boost::asio::awaitable<Result<boost::json::value>> configMap(const std::string& ns,
                                                               const std::string& name) override {
    co_return find(configMaps, ns + "/" + name, "configmaps", name);
  }
  boost::asio::awaitable<Result<boost::json::value>> secret(const std::string& ns,
                                                            const std::string& name) override {
    co_return find(secrets, ns + "/" + name, "secrets", name);
  }
  boost::asio::awaitable<Result<boost::json::value>> persistentVolumeClaim(
      const std::string& ns, const std::string& name) override {
    co_return find(claims, ns + "/" + name, "persistentvolumeclaims", name);
  }
  boost::asio::awaitable<Result<boost::json::value>> persistentVolume(
      const std::string& name) override {
    co_return find(volumes, name, "persistentvolumes", name);
  }
  boost::asio::awaitable<Result<boost::json::value>> storageClass(
      const std::string& name) override {
    co_return find(classes, name, "storageclasses", name);
  }

  std::map<std::string, boost::json::value> configMaps, secrets, claims, volumes, classes;
  int reads = 0;

 private:
  Result<boost::json::value> find(const std::map<std::string, boost::json::value>& m,
                                  const std::string& key, std::string_view what,
                                  const std::string& name) {
    ++reads;
    auto it = m.find(key);
    if (it == m.end()) {
      return Error::make(ErrorCode::kNotFound, "NotFound",
                         fmt::format("{} \"{}\" not found", what, name));
    }
    return it->second;
  }
};

}  // namespace burstlet::testing
