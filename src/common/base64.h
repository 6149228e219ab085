// Base64 (RFC 4648, standard alphabet, padded), as kubeconfig *-data fields and the exec
// credential protocol use it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace burstlet {

// Decodes padded standard base64. Whitespace (spaces, tabs, line breaks) anywhere is ignored,
// because PEM-ish blobs are often wrapped. Returns nullopt for characters outside the
// alphabet, missing or misplaced padding, or a length that is not a multiple of four.
std::optional<std::string> base64Decode(std::string_view text);

// Encodes with the standard alphabet and '=' padding, no line breaks.
std::string base64Encode(std::string_view data);

}  // namespace burstlet
