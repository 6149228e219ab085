// What a kubelet API request names: the pod and container of its path and the options of its
// query, checked the way the kubelet checks them. No I/O.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "provider/provider.h"

namespace burstlet::kubelet {

// "/containerLogs/{ns}/{pod}/{container}", "/exec/{ns}/{pod}/{container}",
// "/exec/{ns}/{pod}/{uid}/{container}", "/portForward/{ns}/{pod}[/{uid}]".
struct PodTarget {
  std::string ns;
  std::string pod;
  std::string uid;        // empty unless the path named one
  std::string container;  // empty for portForward
};

// The segments after `prefix` (e.g. "/exec/"), percent-decoded. `withContainer`: the last
// segment names a container. kBadRequest with a message naming the expected form otherwise.
Result<PodTarget> parsePodTarget(std::string_view path, std::string_view prefix,
                                 bool withContainer);

// The query's logs options (container from the path). kBadRequest for a malformed or
// contradictory value, naming the parameter: tailLines < 0, limitBytes < 1, sinceSeconds < 1,
// sinceTime not RFC 3339, both since options.
Result<provider::LogOptions> parseLogOptions(std::string_view query, std::string container);

// The query's exec/attach options: `command` (repeated; exec needs one), `input`, `output`,
// `error`, `tty` ("1" or "true"). At least one stream; with a TTY there is no separate stderr.
Result<provider::ExecOptions> parseExecOptions(std::string_view query, std::string container,
                                               bool isExec);

// The `port` parameters of a port-forward query (repeated, or comma-separated), each 1..65535.
Result<std::vector<uint16_t>> parsePorts(std::string_view query);

// Whether the pod object declares a container of that name (containers, init containers or
// ephemeral containers).
bool hasContainer(const boost::json::value& pod, std::string_view container);

}  // namespace burstlet::kubelet
