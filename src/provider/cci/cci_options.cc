#include "provider/cci/cci_options.h"

#include <fmt/format.h>

#include "provider/cci/translate.h"

namespace burstlet::provider::cci {

std::string namespaceFor(std::string_view prefix, std::string_view clusterID) {
  return fmt::format("{}{}", prefix, clusterID);
}

TranslateOptions translateOptionsOf(const CciOptions& o) {
  return TranslateOptions{o.backendNamespace, o.nodeName, o.nodeIP};
}

std::string ourSelector(const CciOptions& o) {
  return fmt::format("{}={},{}={}", kManagedByLabel, kManagedByValue, kNodeLabel,
                     safeLabelValue(o.nodeName));
}

std::unique_ptr<kube::Informer> ownInformer(kube::RestClient& backend, const CciOptions& o,
                                            const kube::ResourceRef& resource) {
  kube::InformerOptions io;
  io.resource = resource;
  io.ns = o.backendNamespace;
  io.labelSelector = ourSelector(o);
  return std::make_unique<kube::Informer>(backend, io);
}

}  // namespace burstlet::provider::cci
