#include "provider/cci/network_settings.h"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <charconv>
#include <functional>
#include <utility>

namespace burstlet::provider::cci {

namespace json = boost::json;

namespace {

bool isLowerHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

// 8-4-4-4-12 lower-case hex digits: how VPC, subnet and security group IDs are written.
bool isUuid(std::string_view s) {
  if (s.size() != 36) {
    return false;
  }
  for (size_t i = 0; i < s.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !isLowerHex(s[i])) {
      return false;
    }
  }
  return true;
}

// 32 lower-case hex digits: how project and domain (account) IDs are written.
bool isHex32(std::string_view s) {
  if (s.size() != 32) {
    return false;
  }
  for (char c : s) {
    if (!isLowerHex(c)) {
      return false;
    }
  }
  return true;
}

// A DNS label: what a Network's name and an availability zone ("cn-north-4a") look like.
bool isDnsLabel(std::string_view s) {
  if (s.empty() || s.size() > 63 || s.front() == '-' || s.back() == '-') {
    return false;
  }
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
      return false;
    }
  }
  return true;
}

std::string cidrText(const Ipv4Cidr& c) {
  return fmt::format("{}.{}.{}.{}/{}", c.address >> 24, (c.address >> 16) & 0xff,
                     (c.address >> 8) & 0xff, c.address & 0xff, c.prefix);
}

uint32_t maskOf(int prefix) { return prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix); }

struct Key {
  const char* name;
  const std::string* value;
  // Why the (non-empty) value is bad, or "".
  std::function<std::string(const std::string&)> check;
};

std::string idCheck(const std::string& v) {
  return isUuid(v) ? "" : fmt::format("{:?} is not an ID (want 8-4-4-4-12 lower-case hex)", v);
}

std::string accountCheck(const std::string& v) {
  return isHex32(v) ? "" : fmt::format("{:?} is not an ID (want 32 lower-case hex digits)", v);
}

std::string cidrCheck(const std::string& v) {
  auto c = parseIpv4Cidr(v);
  if (!c.ok()) {
    return c.error().message;
  }
  auto range = parseIpv4Cidr(kCciServiceRange);
  if (range.ok() && overlaps(*c, *range)) {
    return fmt::format(
        "{} overlaps {}, CCI's Service range: CCI refuses a Network there (use a cluster "
        "subnet outside it)",
        v, kCciServiceRange);
  }
  return "";
}

}  // namespace

Result<Ipv4Cidr> parseIpv4Cidr(std::string_view text) {
  auto bad = [text](std::string_view why) {
    return Error::make(
        ErrorCode::kInvalid, "InvalidCidr",
        fmt::format("{:?} is not an IPv4 CIDR such as 192.168.0.0/24: {}", text, why));
  };
  const auto slash = text.find('/');
  if (slash == std::string_view::npos) {
    return bad("no prefix length");
  }
  Ipv4Cidr out;
  std::string_view addr = text.substr(0, slash);
  for (int part = 0; part < 4; ++part) {
    const auto dot = part < 3 ? addr.find('.') : addr.size();
    if (dot == std::string_view::npos) {
      return bad("want four numbers");
    }
    const std::string_view digits = addr.substr(0, dot);
    unsigned octet = 256;
    auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), octet);
    if (digits.empty() || digits.size() > 3 || ec != std::errc() ||
        p != digits.data() + digits.size() || octet > 255) {
      return bad("an address part is not a number from 0 to 255");
    }
    out.address = (out.address << 8) | octet;
    addr.remove_prefix(std::min(addr.size(), dot + 1));
  }
  const std::string_view len = text.substr(slash + 1);
  auto [p, ec] = std::from_chars(len.data(), len.data() + len.size(), out.prefix);
  if (len.empty() || len.size() > 2 || ec != std::errc() || p != len.data() + len.size() ||
      out.prefix < 0 || out.prefix > 32) {
    return bad("the prefix length is not a number from 0 to 32");
  }
  if ((out.address & ~maskOf(out.prefix)) != 0) {
    Ipv4Cidr network{out.address & maskOf(out.prefix), out.prefix};
    return bad(fmt::format("host bits are set (the network is {})", cidrText(network)));
  }
  return out;
}

bool overlaps(const Ipv4Cidr& a, const Ipv4Cidr& b) {
  const uint32_t mask = maskOf(std::min(a.prefix, b.prefix));
  return (a.address & mask) == (b.address & mask);
}

std::vector<std::string> missingNetworkKeys(const NetworkSettings& s) {
  std::vector<std::string> out;
  const std::pair<const char*, const std::string*> keys[] = {
      {"vpcID", &s.vpcID},
      {"subnetID", &s.subnetID},
      {"networkID", &s.networkID},
      {"securityGroupID", &s.securityGroupID},
      {"availabilityZone", &s.availabilityZone},
      {"cidr", &s.cidr},
      {"domainID", &s.domainID},
      {"projectID", &s.projectID}};
  for (const auto& [name, value] : keys) {
    if (value->empty()) {
      out.emplace_back(name);
    }
  }
  return out;
}

Status validateNetwork(const NetworkSettings& s, std::string_view where, bool complete) {
  const Key keys[] = {
      {"name", &s.name,
       [](const std::string& v) {
         return isDnsLabel(v) ? "" : fmt::format("{:?} is not a DNS label", v);
       }},
      {"vpcID", &s.vpcID, idCheck},
      {"subnetID", &s.subnetID, idCheck},
      {"networkID", &s.networkID, idCheck},
      {"securityGroupID", &s.securityGroupID, idCheck},
      {"availabilityZone", &s.availabilityZone,
       [](const std::string& v) {
         return isDnsLabel(v) ? "" : fmt::format("{:?} is not a zone name such as cn-north-4a", v);
       }},
      {"cidr", &s.cidr, cidrCheck},
      {"domainID", &s.domainID, accountCheck},
      {"projectID", &s.projectID, accountCheck},
  };
  std::string lines;
  auto add = [&lines, where](std::string_view key, const std::string& why) {
    if (!lines.empty()) {
      lines += '\n';
    }
    lines += fmt::format("{}.{}: {}", where, key, why);
  };
  for (const auto& k : keys) {
    if (k.value->empty()) {
      if (complete) {
        add(k.name, "must be set in CCI mode (or discovered from the CCE cluster)");
      }
      continue;
    }
    if (auto why = k.check(*k.value); !why.empty()) {
      add(k.name, why);
    }
  }
  if (s.activeTimeout < std::chrono::seconds(1)) {
    add("activeTimeout", "must be at least 1s");
  }
  if (lines.empty()) {
    return okStatus();
  }
  return Error::make(ErrorCode::kInvalid, "InvalidNetworkSettings", std::move(lines));
}

json::value networkObject(const NetworkSettings& s, const std::string& ns,
                          const json::object& labels) {
  return json::object{
      {"apiVersion", kNetworks.apiVersion()},
      {"kind", kNetworks.kind},
      {"metadata", json::object{{"name", s.name},
                                {"namespace", ns},
                                {"labels", labels},
                                {"annotations",
                                 json::object{{kNetworkSecurityGroupAnnotation, s.securityGroupID},
                                              {kNetworkDomainAnnotation, s.domainID},
                                              {kNetworkProjectAnnotation, s.projectID}}}}},
      {"spec", json::object{{"attachedVPC", s.vpcID},
                            {"networkID", s.networkID},
                            {"subnetID", s.subnetID},
                            {"cidr", s.cidr},
                            {"availableZone", s.availabilityZone},
                            {"networkType", kNetworkTypeUnderlay}}}};
}

}  // namespace burstlet::provider::cci
