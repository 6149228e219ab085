#include "kube/json_path.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

namespace burstlet::kube {
namespace {

namespace json = boost::json;

const json::value kPod = json::parse(R"({
  "metadata": {"name": "web", "labels": {"app": "web"}},
  "spec": {"enableServiceLinks": false, "containers": [{"name": "c"}], "nodeName": 7},
  "status": "not an object"
})");

TEST(JsonPathTest, ChildAndPathFromAnObject) {
  const json::object* pod = &kPod.as_object();
  EXPECT_EQ(stringOf(child(pod, "metadata")), "");  // an object, not a string
  EXPECT_EQ(stringOf(path(pod, {"metadata", "name"})), "web");
  EXPECT_EQ(stringOf(path(pod, {"metadata", "labels", "app"})), "web");
  EXPECT_EQ(path(pod, {"metadata", "missing", "app"}), nullptr);
  EXPECT_EQ(path(pod, {"status", "phase"}), nullptr);  // a step that is not an object
  EXPECT_EQ(path(pod, {}), nullptr);
  EXPECT_EQ(stringOf(path(pod, {"spec", "nodeName"})), "");  // not a string
  const json::object* none = nullptr;
  EXPECT_EQ(child(none, "metadata"), nullptr);
  EXPECT_EQ(path(none, {"metadata", "name"}), nullptr);
  // A mutable object reads the same way (the object form, not the value template).
  json::object copy = kPod.as_object();
  EXPECT_EQ(stringOf(path(&copy, {"metadata", "name"})), "web");
}

TEST(JsonPathTest, ObjectOfArrayOf) {
  const json::object* pod = &kPod.as_object();
  const json::object* metadata = objectOf(child(pod, "metadata"));
  ASSERT_NE(metadata, nullptr);
  EXPECT_EQ(stringOf(child(metadata, "name")), "web");
  EXPECT_EQ(objectOf(child(pod, "status")), nullptr);
  EXPECT_EQ(objectOf(nullptr), nullptr);
  const json::array* containers = arrayOf(path(pod, {"spec", "containers"}));
  ASSERT_NE(containers, nullptr);
  EXPECT_EQ(containers->size(), 1U);
  EXPECT_EQ(arrayOf(child(pod, "metadata")), nullptr);
  EXPECT_EQ(arrayOf(nullptr), nullptr);
}

TEST(JsonPathTest, BoolOfFallsBack) {
  const json::object* pod = &kPod.as_object();
  EXPECT_FALSE(boolOf(path(pod, {"spec", "enableServiceLinks"}), true));
  EXPECT_TRUE(boolOf(path(pod, {"spec", "missing"}), true));
  EXPECT_FALSE(boolOf(path(pod, {"spec", "missing"}), false));
  EXPECT_TRUE(boolOf(path(pod, {"spec", "nodeName"}), true));  // not a boolean
  EXPECT_TRUE(boolOf(nullptr, true));
}

TEST(JsonPathTest, ValueFormsStillWork) {
  EXPECT_EQ(stringOf(path(&kPod, {"metadata", "name"})), "web");
  EXPECT_EQ(child(&kPod, "missing"), nullptr);
  EXPECT_EQ(stringAt(kPod, {"metadata", "labels", "app"}), "web");
  EXPECT_EQ(intAt(kPod, {"spec", "nodeName"}), 7);
  EXPECT_FALSE(boolAt(kPod, {"spec", "enableServiceLinks"}));
}

}  // namespace
}  // namespace burstlet::kube
