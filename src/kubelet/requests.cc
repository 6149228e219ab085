#include "kubelet/requests.h"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <boost/url/parse_query.hpp>
#include <boost/url/pct_string_view.hpp>
#include <charconv>

#include "common/clock.h"
#include "kube/json_path.h"

namespace burstlet::kubelet {

namespace {

Error badRequest(std::string message) {
  return Error::make(ErrorCode::kBadRequest, "BadRequest", std::move(message));
}

// Decoded (name, value) pairs of a query; nullopt when it is not a valid query string.
std::optional<std::vector<std::pair<std::string, std::string>>> queryParams(
    std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  if (query.empty()) {
    return out;
  }
  auto params = boost::urls::parse_query(query);
  if (!params) {
    return std::nullopt;
  }
  boost::urls::encoding_opts plusIsSpace;
  plusIsSpace.space_as_plus = true;  // parse_query leaves '+' as is; in a query it is a space
  for (const auto& p : *params) {
    std::string key = p.key.decode(plusIsSpace);
    std::string value = p.has_value ? p.value.decode(plusIsSpace) : std::string();
    out.emplace_back(std::move(key), std::move(value));
  }
  return out;
}

std::optional<std::string> lastValue(const std::vector<std::pair<std::string, std::string>>& params,
                                     std::string_view name) {
  std::optional<std::string> out;
  for (const auto& [k, v] : params) {
    if (k == name) {
      out = v;
    }
  }
  return out;
}

Result<int64_t> integer(std::string_view name, const std::string& text) {
  int64_t value = 0;
  const auto* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end || text.empty()) {
    return badRequest(fmt::format("{}: \"{}\" is not an integer", name, text));
  }
  return value;
}

Result<bool> flag(std::string_view name, const std::string& text) {
  if (text == "1" || text == "true" || text == "True" || text == "TRUE") {
    return true;
  }
  if (text.empty() || text == "0" || text == "false" || text == "False" || text == "FALSE") {
    return false;
  }
  return badRequest(fmt::format("{}: \"{}\" is not a boolean", name, text));
}

Result<bool> flagParam(const std::vector<std::pair<std::string, std::string>>& params,
                       std::string_view name) {
  auto v = lastValue(params, name);
  if (!v) {
    return false;
  }
  return flag(name, *v);
}

bool validSegment(std::string_view s) {
  return !s.empty() && s != "." && s != ".." && s.find('/') == std::string_view::npos;
}

}  // namespace

Result<PodTarget> parsePodTarget(std::string_view path, std::string_view prefix,
                                 bool withContainer) {
  const std::string form =
      withContainer ? fmt::format("{}{{namespace}}/{{pod}}[/{{uid}}]/{{container}}", prefix)
                    : fmt::format("{}{{namespace}}/{{pod}}[/{{uid}}]", prefix);
  if (!path.starts_with(prefix)) {
    return badRequest("the path must be " + form);
  }
  std::vector<std::string> parts;
  std::string_view rest = path.substr(prefix.size());
  while (!rest.empty()) {
    const auto slash = rest.find('/');
    const auto raw = rest.substr(0, slash);
    auto decoded = boost::urls::make_pct_string_view(raw);
    if (!decoded) {
      return badRequest(fmt::format("malformed path segment \"{}\"", raw));
    }
    parts.push_back(decoded->decode());
    if (!validSegment(parts.back())) {
      return badRequest(fmt::format("invalid path segment \"{}\"; the path must be {}", raw, form));
    }
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  }
  const size_t base = withContainer ? 3 : 2;
  if (parts.size() != base && parts.size() != base + 1) {
    return badRequest("the path must be " + form);
  }
  PodTarget target;
  target.ns = parts[0];
  target.pod = parts[1];
  if (parts.size() == base + 1) {
    target.uid = parts[2];
  }
  if (withContainer) {
    target.container = parts.back();
  }
  return target;
}

Result<provider::LogOptions> parseLogOptions(std::string_view query, std::string container) {
  auto params = queryParams(query);
  if (!params) {
    return badRequest("malformed query string");
  }
  provider::LogOptions options;
  options.container = std::move(container);
  auto follow = flagParam(*params, "follow");
  auto previous = flagParam(*params, "previous");
  auto timestamps = flagParam(*params, "timestamps");
  for (const auto* r : {&follow, &previous, &timestamps}) {
    if (!r->ok()) {
      return r->error();
    }
  }
  options.follow = *follow;
  options.previous = *previous;
  options.timestamps = *timestamps;
  if (auto v = lastValue(*params, "tailLines")) {
    auto n = integer("tailLines", *v);
    if (!n.ok()) {
      return n.error();
    }
    if (*n < 0) {
      return badRequest("tailLines must be 0 or more");
    }
    options.tailLines = *n;
  }
  if (auto v = lastValue(*params, "limitBytes")) {
    auto n = integer("limitBytes", *v);
    if (!n.ok()) {
      return n.error();
    }
    if (*n < 1) {
      return badRequest("limitBytes must be 1 or more");
    }
    options.limitBytes = *n;
  }
  if (auto v = lastValue(*params, "sinceSeconds")) {
    auto n = integer("sinceSeconds", *v);
    if (!n.ok()) {
      return n.error();
    }
    if (*n < 1) {
      return badRequest("sinceSeconds must be 1 or more");
    }
    options.sinceSeconds = *n;
  }
  if (auto v = lastValue(*params, "sinceTime")) {
    if (!parseRfc3339(*v)) {
      return badRequest(fmt::format("sinceTime: \"{}\" is not an RFC 3339 time", *v));
    }
    if (options.sinceSeconds) {
      return badRequest("at most one of sinceTime and sinceSeconds may be given");
    }
    options.sinceTime = *v;
  }
  return options;
}

Result<provider::ExecOptions> parseExecOptions(std::string_view query, std::string container,
                                               bool isExec) {
  auto params = queryParams(query);
  if (!params) {
    return badRequest("malformed query string");
  }
  provider::ExecOptions options;
  options.container = std::move(container);
  for (const auto& [k, v] : *params) {
    if (k == "command") {
      options.command.push_back(v);
    }
  }
  auto in = flagParam(*params, "input");
  auto out = flagParam(*params, "output");
  auto err = flagParam(*params, "error");
  auto tty = flagParam(*params, "tty");
  for (const auto* r : {&in, &out, &err, &tty}) {
    if (!r->ok()) {
      return r->error();
    }
  }
  options.stdinOpen = *in;
  options.stdoutOpen = *out;
  options.stderrOpen = *err;
  options.tty = *tty;
  if (isExec && options.command.empty()) {
    return badRequest("exec needs a command (query parameter \"command\")");
  }
  if (!isExec && !options.command.empty()) {
    return badRequest("attach takes no command");
  }
  if (!options.stdinOpen && !options.stdoutOpen && !options.stderrOpen) {
    return badRequest("you must specify at least one of stdin, stdout, stderr");
  }
  if (options.tty) {
    options.stderrOpen = false;  // a terminal merges stderr into stdout
  }
  return options;
}

Result<std::vector<uint16_t>> parsePorts(std::string_view query) {
  auto params = queryParams(query);
  if (!params) {
    return badRequest("malformed query string");
  }
  std::vector<uint16_t> ports;
  for (const auto& [k, v] : *params) {
    if (k != "port" && k != "ports") {
      continue;
    }
    std::string_view rest = v;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      const std::string one(rest.substr(0, comma));
      auto n = integer("port", one);
      if (!n.ok()) {
        return n.error();
      }
      if (*n < 1 || *n > 65535) {
        return badRequest(fmt::format("port {} is out of range 1-65535", *n));
      }
      ports.push_back(static_cast<uint16_t>(*n));
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    }
  }
  return ports;
}

bool hasContainer(const boost::json::value& pod, std::string_view container) {
  for (const char* list : {"containers", "initContainers", "ephemeralContainers"}) {
    if (const auto* a = kube::arrayAt(pod, {"spec", list})) {
      for (const auto& c : *a) {
        if (kube::stringAt(c, {"name"}) == container) {
          return true;
        }
      }
    }
  }
  return false;
}

}  // namespace burstlet::kubelet
