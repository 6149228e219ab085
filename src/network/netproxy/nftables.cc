#include "network/netproxy/nftables.h"

#include <fmt/format.h>
#include <nftables/libnftables.h>

#include "common/strings.h"

namespace burstlet::network {

namespace {

class NftablesApplier final : public RuleApplier {
 public:
  explicit NftablesApplier(nft_ctx* ctx) : ctx_(ctx) {}
  ~NftablesApplier() override { nft_ctx_free(ctx_); }
  NftablesApplier(const NftablesApplier&) = delete;
  NftablesApplier& operator=(const NftablesApplier&) = delete;

  Status apply(const std::string& script) override {
    if (nft_run_cmd_from_buffer(ctx_, script.c_str()) == 0) {
      return okStatus();
    }
    const char* err = nft_ctx_get_error_buffer(ctx_);
    const std::string message = trimWhitespace(err != nullptr ? err : "");
    const bool denied = message.find("Operation not permitted") != std::string::npos;
    return Error::make(denied ? ErrorCode::kForbidden : ErrorCode::kInvalid,
                       denied ? "NoNetAdmin" : "RulesRefused",
                       denied ? fmt::format("nftables: {} (the proxy needs CAP_NET_ADMIN)", message)
                              : fmt::format("nftables refused the rules: {}", message));
  }

 private:
  nft_ctx* ctx_;
};

}  // namespace

Result<std::unique_ptr<RuleApplier>> makeNftablesApplier() {
  nft_ctx* ctx = nft_ctx_new(NFT_CTX_DEFAULT);
  if (ctx == nullptr) {
    return Error::make(ErrorCode::kInternal, "NftablesUnavailable",
                       "libnftables could not make a context");
  }
  // Messages go to buffers (read on failure), not to the process's stdout/stderr.
  nft_ctx_buffer_output(ctx);
  nft_ctx_buffer_error(ctx);
  return std::unique_ptr<RuleApplier>(std::make_unique<NftablesApplier>(ctx));
}

Result<bool> nftablesTableExists(std::string_view name) {
  nft_ctx* ctx = nft_ctx_new(NFT_CTX_DEFAULT);
  if (ctx == nullptr) {
    return Error::make(ErrorCode::kInternal, "NftablesUnavailable",
                       "libnftables could not make a context");
  }
  nft_ctx_buffer_output(ctx);
  nft_ctx_buffer_error(ctx);
  const std::string cmd = fmt::format("list table ip {}", name);
  const bool listed = nft_run_cmd_from_buffer(ctx, cmd.c_str()) == 0;
  const char* err = nft_ctx_get_error_buffer(ctx);
  const std::string message = trimWhitespace(err != nullptr ? err : "");
  nft_ctx_free(ctx);
  if (listed) {
    return true;
  }
  if (message.find("Operation not permitted") != std::string::npos) {
    return Error::make(ErrorCode::kForbidden, "NoNetAdmin",
                       fmt::format("nftables: {} (the proxy needs CAP_NET_ADMIN)", message));
  }
  return false;  // "No such file or directory": not there yet
}

}  // namespace burstlet::network
