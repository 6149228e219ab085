// SourceWaiters: the pods waiting for a ConfigMap or Secret that does not exist yet (their create
// failed with CreateContainerConfigError), so that its appearance wakes them at once instead of
// at the pod controller's next retry.
//
// Thread-safe: `mu_` guards the table.
#pragma once

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <string_view>

namespace burstlet::provider::cci {

class SourceWaiters {
 public:
  // "<kind>/<namespace>/<name>": how a source object is named here.
  static std::string sourceId(std::string_view kind, std::string_view ns, std::string_view name);

  // Pod `podKey` ("ns/name") waits for `source`.
  void add(const std::string& source, const std::string& podKey);
  void remove(const std::string& source, const std::string& podKey);
  // Pod `podKey` waits for nothing any more.
  void removePod(const std::string& podKey);
  // The pods waiting for `source`, which wait no more.
  std::set<std::string> take(const std::string& source);

 private:
  std::mutex mu_;  // guards waiting_
  // Source -> pod keys.
  std::map<std::string, std::set<std::string>> waiting_;
};

}  // namespace burstlet::provider::cci
