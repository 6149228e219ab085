#include "provider/cci/source_waiters.h"

#include <gtest/gtest.h>

namespace burstlet::provider::cci {
namespace {

TEST(SourceWaitersTest, TakeHandsOutTheWaitingPodsOnce) {
  SourceWaiters w;
  const std::string cm = SourceWaiters::sourceId("ConfigMap", "app", "x");
  EXPECT_EQ(cm, "ConfigMap/app/x");
  w.add(cm, "app/a");
  w.add(cm, "app/b");
  w.add(SourceWaiters::sourceId("Secret", "app", "x"), "app/a");
  EXPECT_EQ(w.take(cm), (std::set<std::string>{"app/a", "app/b"}));
  EXPECT_TRUE(w.take(cm).empty());
  EXPECT_EQ(w.take(SourceWaiters::sourceId("Secret", "app", "x")),
            (std::set<std::string>{"app/a"}));
}

TEST(SourceWaitersTest, RemovedPodsAreNotWoken) {
  SourceWaiters w;
  const std::string a = SourceWaiters::sourceId("ConfigMap", "app", "a");
  const std::string b = SourceWaiters::sourceId("Secret", "app", "b");
  w.add(a, "app/p");
  w.add(b, "app/p");
  w.add(b, "app/q");
  w.remove(a, "app/p");
  EXPECT_TRUE(w.take(a).empty());
  w.removePod("app/p");
  EXPECT_EQ(w.take(b), (std::set<std::string>{"app/q"}));
}

}  // namespace
}  // namespace burstlet::provider::cci
