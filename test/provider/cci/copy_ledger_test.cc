#include "provider/cci/copy_ledger.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "mocks/run_sync.h"

namespace burstlet::provider::cci {
namespace {

namespace asio = boost::asio;

TEST(CopyLedgerTest, UnusedCopyIsMarkedThenDeleted) {
  CopyLedger ledger;
  EXPECT_FALSE(ledger.sweepDeletes("ConfigMap/a", false));  // marked
  EXPECT_TRUE(ledger.sweepDeletes("ConfigMap/a", false));   // deleting now
  ledger.deleted("ConfigMap/a", true);
  EXPECT_TRUE(ledger.gone("ConfigMap/a"));
  // Gone counts as absent for creates, and as kept for the sweep until the informer shows it.
  EXPECT_FALSE(ledger.sweepDeletes("ConfigMap/a", false));
  ledger.present("ConfigMap/a");
  EXPECT_FALSE(ledger.gone("ConfigMap/a"));
}

TEST(CopyLedgerTest, UsedOrHeldCopyLosesItsMark) {
  CopyLedger ledger;
  EXPECT_FALSE(ledger.sweepDeletes("ConfigMap/a", false));
  EXPECT_FALSE(ledger.sweepDeletes("ConfigMap/a", true));   // referenced again: unmarked
  EXPECT_FALSE(ledger.sweepDeletes("ConfigMap/a", false));  // marked afresh
  ledger.hold({"ConfigMap/a"});                             // a create needs it: unmarked
  EXPECT_TRUE(ledger.held("ConfigMap/a"));
  EXPECT_FALSE(ledger.sweepDeletes("ConfigMap/a", false));
  EXPECT_FALSE(ledger.sweepDeletes("ConfigMap/a", false));
  ledger.hold({"ConfigMap/a"});
  ledger.release({"ConfigMap/a"});
  EXPECT_TRUE(ledger.held("ConfigMap/a"));  // counted: one create still holds it
  ledger.release({"ConfigMap/a"});
  EXPECT_FALSE(ledger.held("ConfigMap/a"));
}

TEST(CopyLedgerTest, VolumeHeldThroughItsClaimIsKept) {
  CopyLedger ledger;
  ledger.hold({"PersistentVolumeClaim/c"});
  for (int pass = 0; pass < 3; ++pass) {
    EXPECT_FALSE(ledger.sweepDeletes("PersistentVolume/v", false, "PersistentVolumeClaim/c"));
  }
  ledger.release({"PersistentVolumeClaim/c"});
  EXPECT_FALSE(ledger.sweepDeletes("PersistentVolume/v", false, "PersistentVolumeClaim/c"));
  EXPECT_TRUE(ledger.sweepDeletes("PersistentVolume/v", false, "PersistentVolumeClaim/c"));
  ledger.deleted("PersistentVolume/v", false);
  EXPECT_FALSE(ledger.gone("PersistentVolume/v"));
}

// A create that needs a copy being deleted waits for the delete to end, without polling.
TEST(CopyLedgerTest, AwaitDeletesReturnsWhenTheDeleteEnds) {
  asio::io_context io;
  CopyLedger ledger;
  Latch stop;
  ASSERT_FALSE(ledger.sweepDeletes("Secret/s", false));
  ASSERT_TRUE(ledger.sweepDeletes("Secret/s", false));
  bool done = false;
  auto wait = [&]() -> asio::awaitable<void> {
    const std::vector<std::string> ids{"ConfigMap/other", "Secret/s"};
    co_await ledger.awaitDeletes(ids, stop);
    done = true;
  };
  asio::co_spawn(io, wait(), asio::detached);
  testing::runUntil(
      io, [] { return false; }, std::chrono::milliseconds(50));
  EXPECT_FALSE(done);
  ledger.deleted("ConfigMap/unrelated", true);  // another delete ends: still waiting
  testing::runUntil(
      io, [] { return false; }, std::chrono::milliseconds(50));
  EXPECT_FALSE(done);
  ledger.deleted("Secret/s", true);
  EXPECT_TRUE(testing::runUntil(io, [&] { return done; }));

  // Nothing being deleted: at once. Stopped: at once too.
  done = false;
  asio::co_spawn(io, wait(), asio::detached);
  EXPECT_TRUE(testing::runUntil(io, [&] { return done; }));
  ASSERT_FALSE(ledger.sweepDeletes("Secret/t", false));
  ASSERT_TRUE(ledger.sweepDeletes("Secret/t", false));
  stop.set();
  bool stopped = false;
  auto waitStopped = [&]() -> asio::awaitable<void> {
    const std::vector<std::string> ids{"Secret/t"};
    co_await ledger.awaitDeletes(ids, stop);
    stopped = true;
  };
  asio::co_spawn(io, waitStopped(), asio::detached);
  EXPECT_TRUE(testing::runUntil(io, [&] { return stopped; }));
}

}  // namespace
}  // namespace burstlet::provider::cci
