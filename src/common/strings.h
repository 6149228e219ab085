// Small string helpers shared across areas.
#pragma once

#include <string>
#include <string_view>

namespace burstlet {

// `s` without leading and trailing spaces, tabs and line breaks.
std::string trimWhitespace(std::string_view s);

}  // namespace burstlet
