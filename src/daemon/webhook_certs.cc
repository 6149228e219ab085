#include "daemon/webhook_certs.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cstdlib>
#include <map>

#include "common/base64.h"
#include "kube/json_path.h"
#include "kube/resource.h"
#include "server/certificate_check.h"

namespace burstlet::daemon {

namespace asio = boost::asio;
namespace json = boost::json;
using std::chrono::duration_cast;
using std::chrono::seconds;

namespace {

constexpr std::string_view kServingCert = "tls.crt";
constexpr std::string_view kServingKey = "tls.key";
constexpr std::string_view kCaBundle = "ca.crt";
constexpr std::string_view kCaKey = "ca.key";
constexpr std::string_view kCaAddedAt = "burstlet.io/ca-added-at";
constexpr std::chrono::seconds kRetryDelay{10};
constexpr int kWriteAttempts = 5;

// The Secret as read: its decoded data (absent or undecodable keys left out).
struct Stored {
  json::value object;  // null: no Secret
  std::map<std::string, std::string, std::less<>> data;
  std::optional<Clock::WallTime> caAddedAt;

  std::string get(std::string_view key) const {
    auto it = data.find(key);
    return it == data.end() ? std::string() : it->second;
  }
};

Stored parseStored(json::value object) {
  Stored s;
  if (const auto* data = kube::objectOf(kube::at(object, {"data"}))) {
    for (const auto& [key, value] : *data) {
      if (auto decoded = value.is_string() ? base64Decode(value.get_string()) : std::nullopt) {
        s.data.emplace(std::string(key), std::move(*decoded));
      }
    }
  }
  s.caAddedAt = parseRfc3339(kube::stringAt(object, {"metadata", "annotations", kCaAddedAt}));
  s.object = std::move(object);
  return s;
}

// What the Secret should hold now, and whether that differs from what it holds.
struct Plan {
  std::string caBundle;  // newest first
  std::string caKey;
  server::PemPair serving;
  std::optional<Clock::WallTime> caAddedAt;
  bool changed = false;
  std::vector<std::string> renewed;  // "ca", "serving" (for the log)
  std::string unusable;              // why the stored CA or serving pair was replaced
};

bool within(const server::CertificateFacts& f, Clock::WallTime now) {
  return f.notBefore <= now && now < f.notAfter;
}

}  // namespace

std::string ownNamespace(const Config::Admission& admission) { return ownNamespace(admission.ns); }

std::string ownNamespace(const std::string& configured) {
  if (!configured.empty()) {
    return configured;
  }
  const char* env = std::getenv("POD_NAMESPACE");  // NOLINT(concurrency-mt-unsafe)
  return env != nullptr && *env != '\0' ? std::string(env) : std::string("kube-system");
}

WebhookCertOptions webhookCertOptions(const Config& config, std::vector<std::string> hosts) {
  WebhookCertOptions o;
  o.ns = ownNamespace(config.admission);
  o.secretName = "burstlet-webhook-" + config.nodeName;
  o.hosts = std::move(hosts);
  o.certValidity = duration_cast<seconds>(config.admission.certValidity);
  o.caValidity = duration_cast<seconds>(config.admission.caValidity);
  return o;
}

WebhookCertificates::WebhookCertificates(WebhookCertOptions options, const Clock& clock)
    : options_(std::move(options)), clock_(clock) {}

std::chrono::milliseconds WebhookCertificates::checkInterval() const {
  if (options_.checkInterval.count() > 0) {
    return options_.checkInterval;
  }
  return std::clamp<std::chrono::milliseconds>(
      duration_cast<std::chrono::milliseconds>(options_.certValidity) / 6, seconds(1),
      std::chrono::hours(1));
}

namespace {

// Decides what the Secret should hold, given what it holds, making the certificates that are
// missing, unusable or due.
Result<Plan> makePlan(const Stored& stored, const WebhookCertOptions& o,
                      std::chrono::milliseconds overlap, const Clock& clock) {
  const auto now = clock.now();
  Plan p;
  p.caAddedAt = stored.caAddedAt;
  std::vector<std::string> cas;
  std::string why;
  // The CA: the bundle's first certificate with ca.key.
  const std::string storedBundle = stored.get(kCaBundle);
  const std::string storedKey = stored.get(kCaKey);
  if (storedBundle.empty() || storedKey.empty()) {
    why = stored.object.is_null() ? "" : "no CA";
  } else if (auto split = server::splitCertificates(storedBundle); !split.ok()) {
    why = "damaged CA bundle";
  } else {
    cas = std::move(*split);
    auto facts = server::inspectCertificate(cas.front());
    if (!facts.ok() || !facts->isCa) {
      why = "the first certificate of the CA bundle is not a CA";
    } else if (!server::keyMatches({cas.front(), storedKey})) {
      why = "the CA key does not match the CA";
    } else if (!within(*facts, now)) {
      why = "the CA is expired or not valid yet";
    }
  }
  const bool caUsable = why.empty() && !cas.empty();
  if (!caUsable) {
    cas.clear();
  }
  if (!why.empty()) {
    p.unusable = why;
  }
  std::optional<server::CertificateFacts> caFacts;
  if (caUsable) {
    caFacts = *server::inspectCertificate(cas.front());
  }
  const bool caDue = caUsable && caFacts->notAfter - now < o.caValidity / 3;
  if (!caUsable || caDue) {
    server::CertificateSpec spec;
    spec.commonName =
        "burstlet-webhook-ca@" + std::to_string(Clock::WallTime::clock::to_time_t(now));
    spec.isCa = true;
    spec.validity = o.caValidity;
    auto ca = server::generateCertificate(spec, clock);
    if (!ca.ok()) {
      return std::move(ca).error();
    }
    // A new CA after a usable one is only trusted for a while before it signs; one that
    // replaces nothing usable signs at once.
    p.caAddedAt = caDue ? std::optional(now) : std::nullopt;
    cas.insert(cas.begin(), ca->certificate);
    p.caKey = std::move(ca->key);
    caFacts = *server::inspectCertificate(cas.front());
    p.renewed.emplace_back("ca");
  } else {
    p.caKey = storedKey;
  }
  // Older CAs stay trusted until they expire (a serving certificate they signed may be in use).
  std::vector<std::string> kept{cas.front()};
  for (size_t i = 1; i < cas.size(); ++i) {
    auto f = server::inspectCertificate(cas[i]);
    if (f.ok() && f->isCa && now < f->notAfter &&
        std::find(kept.begin(), kept.end(), cas[i]) == kept.end()) {
      kept.push_back(cas[i]);
    }
  }
  cas = std::move(kept);
  for (const auto& ca : cas) {
    p.caBundle += ca;
  }
  const bool settled = !p.caAddedAt || now >= *p.caAddedAt + overlap;

  // The serving pair.
  server::PemPair serving{stored.get(kServingCert), stored.get(kServingKey)};
  std::string servingWhy;
  std::optional<size_t> signer;  // index into cas
  auto facts = server::inspectCertificate(serving.certificate);
  if (serving.certificate.empty() || serving.key.empty()) {
    servingWhy = stored.object.is_null() ? "" : "no serving certificate";
  } else if (!facts.ok() || facts->isCa) {
    servingWhy = "damaged serving certificate";
  } else if (!server::keyMatches(serving)) {
    servingWhy = "the serving key does not match its certificate";
  } else if (!within(*facts, now)) {
    servingWhy = "the serving certificate is expired or not valid yet";
  } else if (!server::coversHosts(serving.certificate, o.hosts)) {
    servingWhy = "the serving certificate is not for the configured hosts";
  } else {
    for (size_t i = 0; i < cas.size() && !signer; ++i) {
      if (server::issuedBy(serving.certificate, cas[i])) {
        signer = i;
      }
    }
    if (!signer) {
      servingWhy = "the serving certificate is not from a CA in the bundle";
    }
  }
  if (!servingWhy.empty() && p.unusable.empty() && caUsable) {
    p.unusable = servingWhy;
  }
  const bool usable = servingWhy.empty() && signer.has_value() && facts.ok();
  const bool due = usable && (facts->notAfter - now < o.certValidity / 3 || *signer != 0);
  if (!usable || (due && settled)) {
    server::CertificateSpec spec;
    spec.hosts = o.hosts;
    // Never beyond its CA.
    spec.validity = std::min(o.certValidity, duration_cast<seconds>(caFacts->notAfter - now));
    server::PemPair ca{cas.front(), p.caKey};
    auto made = server::generateCertificate(spec, clock, &ca);
    if (!made.ok()) {
      return std::move(made).error();
    }
    p.serving = std::move(*made);
    p.renewed.emplace_back("serving");
  } else {
    p.serving = std::move(serving);
  }
  if (p.caAddedAt && settled && cas.size() == 1) {
    p.caAddedAt.reset();  // nothing older left to tell apart
  }
  p.changed = !p.renewed.empty() || p.caBundle != storedBundle ||
              p.caAddedAt.has_value() != stored.caAddedAt.has_value() ||
              (p.caAddedAt && formatRfc3339(*p.caAddedAt) != formatRfc3339(*stored.caAddedAt));
  return p;
}

// The Secret holding `p`, on top of what was stored (others' labels and annotations kept).
json::value secretFor(const Stored& stored, const Plan& p, const WebhookCertOptions& o) {
  json::object secret = stored.object.is_object() ? stored.object.as_object() : json::object{};
  secret["apiVersion"] = "v1";
  secret["kind"] = "Secret";
  if (!secret.contains("type")) {
    secret["type"] = "kubernetes.io/tls";  // the type of an existing Secret cannot change
  }
  json::value& md = secret["metadata"];
  if (!md.is_object()) {
    md = json::object{};
  }
  auto& meta = md.as_object();
  meta["name"] = o.secretName;
  meta["namespace"] = o.ns;
  meta.erase("managedFields");
  if (!meta["labels"].is_object()) {
    meta["labels"] = json::object{};
  }
  meta["labels"].as_object()["burstlet.io/managed-by"] = "burstlet";
  if (!meta["annotations"].is_object()) {
    meta["annotations"] = json::object{};
  }
  auto& annotations = meta["annotations"].as_object();
  if (p.caAddedAt) {
    annotations[kCaAddedAt] = formatRfc3339(*p.caAddedAt);
  } else {
    annotations.erase(kCaAddedAt);
  }
  if (annotations.empty()) {
    meta.erase("annotations");
  }
  secret["data"] = json::object{{kServingCert, base64Encode(p.serving.certificate)},
                                {kServingKey, base64Encode(p.serving.key)},
                                {kCaBundle, base64Encode(p.caBundle)},
                                {kCaKey, base64Encode(p.caKey)}};
  secret.erase("stringData");
  return secret;
}

size_t countCertificates(const std::string& bundle) {
  auto split = server::splitCertificates(bundle);
  return split.ok() ? split->size() : 0;
}

std::string notAfterOf(const std::string& pem) {
  auto f = server::inspectCertificate(pem);
  return f.ok() ? formatRfc3339(f->notAfter) : std::string("?");
}

}  // namespace

asio::awaitable<Result<WebhookCertSet>> WebhookCertificates::ensure(kube::RestClient& cluster) {
  const auto overlap = options_.caOverlap.count() > 0 ? options_.caOverlap : checkInterval();
  const std::string where = options_.ns + "/" + options_.secretName;
  for (int attempt = 1;; ++attempt) {
    auto read = co_await cluster.get(kube::resources::kSecrets, options_.ns, options_.secretName);
    if (!read.ok() && read.error().code != ErrorCode::kNotFound) {
      co_return std::move(read).error();
    }
    Stored stored = parseStored(read.ok() ? std::move(*read) : json::value());
    auto plan = makePlan(stored, options_, overlap, clock_);
    if (!plan.ok()) {
      co_return std::move(plan).error();
    }
    WebhookCertSet set{plan->serving, plan->caBundle};
    if (!plan->changed) {
      co_return set;
    }
    if (!plan->unusable.empty()) {
      spdlog::warn(
          "msg=\"webhook certificate secret unusable, replacing what is wrong\" name={} "
          "reason=\"{}\"",
          where, plan->unusable);
    }
    json::value secret = secretFor(stored, *plan, options_);
    // Two statements, not co_await in both arms of ?: (which g++ 12 miscompiles).
    Result<json::value> written = Error::make(ErrorCode::kInternal, "NotWritten", "");
    if (stored.object.is_null()) {
      written = co_await cluster.create(kube::resources::kSecrets, options_.ns, std::move(secret));
    } else {
      written = co_await cluster.update(kube::resources::kSecrets, options_.ns, options_.secretName,
                                        std::move(secret));
    }
    if (written.ok()) {
      spdlog::info(
          "msg=\"webhook certificates stored\" name={} renewed={} serving_not_after={} "
          "cas={}",
          where, fmt::join(plan->renewed, ","), notAfterOf(set.serving.certificate),
          countCertificates(set.caBundle));
      co_return set;
    }
    const auto code = written.error().code;
    if ((code != ErrorCode::kConflict && code != ErrorCode::kAlreadyExists) ||
        attempt >= kWriteAttempts) {
      co_return std::move(written).error();
    }
    // Someone else wrote it (another burstlet starting, an operator): what they stored is
    // used when it is good.
    spdlog::info("msg=\"webhook certificate secret changed meanwhile, reading it again\" name={}",
                 where);
  }
}

asio::awaitable<void> WebhookCertificates::run(kube::RestClient& cluster,
                                               server::HttpServer& server,
                                               std::optional<admission::Registration> registration,
                                               const Latch& stop) {
  server::TlsContext* tls = server.tls();
  if (tls == nullptr) {
    spdlog::error("msg=\"webhook certificates: the listener has no TLS context\"");
    co_return;
  }
  const auto interval = checkInterval();
  const auto retry = std::min<std::chrono::milliseconds>(interval, kRetryDelay);
  bool started = false;
  std::string registered;  // the bundle the registration holds, as far as this process knows
  std::string inUse;       // the serving certificate the listener has
  while (!stop.isSet()) {
    auto delay = interval;
    auto set = co_await ensure(cluster);
    if (!set.ok()) {
      spdlog::warn("msg=\"webhook certificates not loaded\" name={}/{} error=\"{}\"", options_.ns,
                   options_.secretName, set.error().toString());
      delay = retry;
    } else {
      bool trusted = !registration.has_value() || registered == set->caBundle;
      if (!trusted) {
        admission::Registration r = *registration;
        r.caBundlePem = set->caBundle;
        const Status s = co_await admission::ensureRegistration(cluster, std::move(r));
        if (s.ok()) {
          registered = set->caBundle;
          trusted = true;
        } else {
          spdlog::warn("msg=\"admission webhook not registered yet\" configuration={} error=\"{}\"",
                       registration->name, s.error().toString());
          delay = retry;
        }
      }
      // At start the Secret's pair is served whatever the registration says (it most likely
      // holds the same bundle from the last run); later a pair waits for its bundle.
      if (set->serving.certificate != inUse && (trusted || !started)) {
        const Status s = tls->useCertificate(set->serving);
        if (s.ok()) {
          inUse = set->serving.certificate;
          spdlog::info("msg=\"webhook serving certificate in use\" not_after={}",
                       notAfterOf(inUse));
        } else {
          spdlog::error("msg=\"webhook serving certificate not usable\" error=\"{}\"",
                        s.error().toString());
          delay = retry;
        }
      }
      if (!started && !inUse.empty()) {
        started = true;
        server.start();
      }
    }
    if (!co_await sleepFor(clock_, delay, &stop)) {
      co_return;
    }
  }
}

}  // namespace burstlet::daemon
