#include "network/netproxy/nftables.h"

#include <fmt/format.h>
#include <nftables/libnftables.h>

#include <memory>
#include <optional>
#include <string>

#include "common/strings.h"

namespace burstlet::network {

namespace {

struct ContextFree {
  void operator()(nft_ctx* ctx) const { nft_ctx_free(ctx); }
};
using Context = std::unique_ptr<nft_ctx, ContextFree>;

// A context whose messages go to buffers (read on failure), not to the process's stdout/stderr.
Result<Context> newContext() {
  Context ctx(nft_ctx_new(NFT_CTX_DEFAULT));
  if (!ctx) {
    return Error::make(ErrorCode::kInternal, "NftablesUnavailable",
                       "libnftables could not make a context");
  }
  nft_ctx_buffer_output(ctx.get());
  nft_ctx_buffer_error(ctx.get());
  return ctx;
}

// Runs `command`: nullopt when it succeeded, else nft's message.
std::optional<std::string> run(nft_ctx* ctx, const std::string& command) {
  if (nft_run_cmd_from_buffer(ctx, command.c_str()) == 0) {
    return std::nullopt;
  }
  const char* err = nft_ctx_get_error_buffer(ctx);
  return trimWhitespace(err != nullptr ? err : "");
}

bool denied(const std::string& message) {
  return message.find("Operation not permitted") != std::string::npos;
}

Error noNetAdmin(const std::string& message) {
  return Error::make(ErrorCode::kForbidden, "NoNetAdmin",
                     fmt::format("nftables: {} (the proxy needs CAP_NET_ADMIN)", message));
}

class NftablesApplier final : public RuleApplier {
 public:
  explicit NftablesApplier(Context ctx) : ctx_(std::move(ctx)) {}

  Status apply(const std::string& script) override {
    auto failed = run(ctx_.get(), script);
    if (!failed) {
      return okStatus();
    }
    if (denied(*failed)) {
      return noNetAdmin(*failed);
    }
    return Error::make(ErrorCode::kInvalid, "RulesRefused",
                       fmt::format("nftables refused the rules: {}", *failed));
  }

 private:
  Context ctx_;
};

}  // namespace

Result<std::unique_ptr<RuleApplier>> makeNftablesApplier() {
  auto ctx = newContext();
  if (!ctx.ok()) {
    return std::move(ctx).error();
  }
  return std::unique_ptr<RuleApplier>(std::make_unique<NftablesApplier>(std::move(*ctx)));
}

Result<bool> nftablesTableExists(std::string_view name) {
  auto ctx = newContext();
  if (!ctx.ok()) {
    return std::move(ctx).error();
  }
  auto failed = run(ctx->get(), fmt::format("list table ip {}", name));
  if (!failed) {
    return true;
  }
  if (denied(*failed)) {
    return noNetAdmin(*failed);
  }
  return false;  // "No such file or directory": not there yet
}

}  // namespace burstlet::network
