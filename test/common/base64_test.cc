#include "common/base64.h"

#include <gtest/gtest.h>

#include <string>

namespace burstlet {
namespace {

TEST(Base64Test, EncodesRfc4648Vectors) {
  EXPECT_EQ(base64Encode(""), "");
  EXPECT_EQ(base64Encode("f"), "Zg==");
  EXPECT_EQ(base64Encode("fo"), "Zm8=");
  EXPECT_EQ(base64Encode("foo"), "Zm9v");
  EXPECT_EQ(base64Encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64Encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64Encode("foobar"), "Zm9vYmFy");
}

TEST(Base64Test, DecodesRfc4648Vectors) {
  EXPECT_EQ(base64Decode(""), std::string());
  EXPECT_EQ(base64Decode("Zg=="), "f");
  EXPECT_EQ(base64Decode("Zm8="), "fo");
  EXPECT_EQ(base64Decode("Zm9v"), "foo");
  EXPECT_EQ(base64Decode("Zm9vYg=="), "foob");
  EXPECT_EQ(base64Decode("Zm9vYmE="), "fooba");
  EXPECT_EQ(base64Decode("Zm9vYmFy"), "foobar");
}

TEST(Base64Test, RoundTripsBinary) {
  std::string all;
  for (int i = 0; i < 256; ++i) {
    all.push_back(static_cast<char>(i));
  }
  for (size_t len = 0; len <= all.size(); len += 37) {
    const std::string data = all.substr(0, len);
    EXPECT_EQ(base64Decode(base64Encode(data)), data) << len;
  }
  EXPECT_EQ(base64Encode("\xff\xfe\xfd"), "//79");
  EXPECT_EQ(base64Decode("+/+/"), std::string("\xfb\xff\xbf"));
}

TEST(Base64Test, IgnoresWhitespace) {
  EXPECT_EQ(base64Decode("Zm9v\nYmFy\n"), "foobar");
  EXPECT_EQ(base64Decode("  Zm9v\r\n\tYg= =  "), "foob");
  EXPECT_EQ(base64Decode("\n"), std::string());
}

TEST(Base64Test, RejectsInvalidInput) {
  EXPECT_EQ(base64Decode("Zm9"), std::nullopt);    // not a multiple of four
  EXPECT_EQ(base64Decode("Zg"), std::nullopt);     // padding missing
  EXPECT_EQ(base64Decode("Zm9v!"), std::nullopt);  // outside the alphabet
  EXPECT_EQ(base64Decode("Zm-_"), std::nullopt);   // URL alphabet is not standard
  EXPECT_EQ(base64Decode("Z==="), std::nullopt);   // less than one byte
  EXPECT_EQ(base64Decode("===="), std::nullopt);
  EXPECT_EQ(base64Decode("Zg=a"), std::nullopt);      // data after padding
  EXPECT_EQ(base64Decode("Zg==Zm9v"), std::nullopt);  // data after the final quad
  EXPECT_EQ(base64Decode("Zm9v="), std::nullopt);
  EXPECT_EQ(base64Decode(std::string("Zm\0v", 4)), std::nullopt);
}

}  // namespace
}  // namespace burstlet
