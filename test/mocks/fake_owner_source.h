// An OwnerSource over a map: the objects a test puts, kNotFound for others; reads are counted.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/json/value.hpp>
#include <map>
#include <string>

#include "admission/webhook.h"

namespace burstlet::testing {

class FakeOwnerSource final : public admission::OwnerSource {
 public:
  // `kind` as in ownerReferences ("ReplicaSet").
  void put(const std::string& kind, const std::string& ns, const std::string& name,
           boost::json::value object) {
    objects_[kind + "/" + ns + "/" + name] = std::move(object);
  }
  // The next reads fail with `error` (kUnavailable: an API server outage).
  void failWith(Error error) { failure_ = std::move(error); }
  int reads() const { return reads_; }

  boost::asio::awaitable<Result<boost::json::value>> read(const kube::ResourceRef& resource,
                                                          std::string ns,
                                                          std::string name) override {
    ++reads_;
    if (failure_) {
      co_return *failure_;
    }
    auto it = objects_.find(resource.kind + "/" + ns + "/" + name);
    if (it == objects_.end()) {
      co_return Error::make(ErrorCode::kNotFound, "NotFound", resource.kind + " " + name);
    }
    co_return it->second;
  }

 private:
  std::map<std::string, boost::json::value> objects_;
  std::optional<Error> failure_;
  int reads_ = 0;
};

}  // namespace burstlet::testing
