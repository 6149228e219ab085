// CopyLedger: what creates and the sweep know of each copy (and backend volume), by copy id
// ("<kind>/<backend name>", references.h), so that the sweep never deletes what a create is
// about to use:
//   held      — an in-flight create needs it (count per id);
//   marked    — the last sweep found it unused (deleted when the next one does too);
//   deleting  — the sweep is deleting it now: a create that needs it waits, then makes it again;
//   gone      — the sweep deleted it and its informer does not show that yet: counts as absent.
//
// Thread-safe: `mu_` guards all four sets; each decision is taken under it in one step, so a
// create that holds an id after the sweep decided to delete it sees it in `deleting`.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/wait.h"

namespace burstlet::provider::cci {

class CopyLedger {
 public:
  // A create needs `ids`: unmarked, and kept until release(ids).
  void hold(const std::vector<std::string>& ids);
  void release(const std::vector<std::string>& ids);
  bool held(const std::string& id) const;
  // Returns once none of `ids` is being deleted (at once when none is), or `stop` is set.
  boost::asio::awaitable<void> awaitDeletes(const std::vector<std::string>& ids,
                                            const Latch& stop) const;

  // The sweep's look at `id`: kept (and unmarked) when `used`, held, held as `alsoHeld` (when
  // given) or gone; deleted when the previous look marked it (true: it is `deleting` now, and
  // the sweep calls deleted() when done); else marked.
  bool sweepDeletes(const std::string& id, bool used, std::string_view alsoHeld = {});
  // The sweep's delete of `id` is over: `gone` when it deleted it (until present(id)).
  void deleted(const std::string& id, bool gone);
  // A copy exists again (made by a create), or its informer showed its delete.
  void present(const std::string& id);
  bool gone(const std::string& id) const;

 private:
  bool heldLocked(std::string_view id) const;  // mu_ held

  mutable std::mutex mu_;  // guards everything below
  std::map<std::string, int, std::less<>> held_;
  std::set<std::string> marked_;
  std::set<std::string> deleting_;
  std::set<std::string> gone_;
  // Set (and replaced) each time a delete ends: what awaitDeletes waits on.
  std::shared_ptr<Latch> deleteEnded_ = std::make_shared<Latch>();
};

}  // namespace burstlet::provider::cci
