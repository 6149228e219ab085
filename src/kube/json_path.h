// Reading nested fields of API objects without a schema: a path of object keys leads to a
// value, or to nothing when any step is missing or not an object.
#pragma once

#include <boost/json/value.hpp>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>

namespace burstlet::kube {

// The value at `keys` below `v`, or null.
inline const boost::json::value* at(const boost::json::value& v,
                                    std::initializer_list<std::string_view> keys) {
  const boost::json::value* cur = &v;
  for (auto k : keys) {
    const auto* o = cur->if_object();
    cur = o != nullptr ? o->if_contains(k) : nullptr;
    if (cur == nullptr) {
      return nullptr;
    }
  }
  return cur;
}

// The value at `keys`, or a null value when absent (for comparisons: absent equals null).
inline const boost::json::value& valueAt(const boost::json::value& v,
                                         std::initializer_list<std::string_view> keys) {
  static const boost::json::value kNull;
  const auto* f = at(v, keys);
  return f != nullptr ? *f : kNull;
}

// The string at `keys`, or "" when absent or not a string.
inline std::string stringAt(const boost::json::value& v,
                            std::initializer_list<std::string_view> keys) {
  const auto* f = at(v, keys);
  const auto* s = f != nullptr ? f->if_string() : nullptr;
  return s != nullptr ? std::string(*s) : std::string();
}

// True only when the value at `keys` is the boolean true.
inline bool boolAt(const boost::json::value& v, std::initializer_list<std::string_view> keys) {
  const auto* f = at(v, keys);
  return f != nullptr && f->is_bool() && f->as_bool();
}

// The integer at `keys`, or 0 when absent or not an integer.
inline int64_t intAt(const boost::json::value& v, std::initializer_list<std::string_view> keys) {
  const auto* f = at(v, keys);
  if (f == nullptr) {
    return 0;
  }
  if (const auto* i = f->if_int64()) {
    return *i;
  }
  if (const auto* u = f->if_uint64()) {
    return static_cast<int64_t>(*u);
  }
  return 0;
}

// The array at `keys`, or null.
inline const boost::json::array* arrayAt(const boost::json::value& v,
                                         std::initializer_list<std::string_view> keys) {
  const auto* f = at(v, keys);
  return f != nullptr ? f->if_array() : nullptr;
}

// Pointer forms, for code that walks optional parts step by step; const-ness follows `v`.
// The member `key` of `v` when `v` is an object, else null.
template <typename V>
requires std::is_same_v<std::remove_const_t<V>, boost::json::value> V* child(V* v,
                                                                             std::string_view key) {
  if (v == nullptr) {
    return nullptr;
  }
  auto* o = v->if_object();
  return o != nullptr ? o->if_contains(key) : nullptr;
}

// The value at `keys` below `v`, else null.
template <typename V>
requires std::is_same_v<std::remove_const_t<V>, boost::json::value> V* path(
    V* v, std::initializer_list<std::string_view> keys) {
  for (auto k : keys) {
    v = child(v, k);
  }
  return v;
}

// The same from an object, for code that holds objects: the member `key` of `*o`, else null
// (also when `o` is null).
inline const boost::json::value* child(const boost::json::object* o, std::string_view key) {
  return o != nullptr ? o->if_contains(key) : nullptr;
}

// The value at `keys` below `*o`, else null.
inline const boost::json::value* path(const boost::json::object* o,
                                      std::initializer_list<std::string_view> keys) {
  const boost::json::value* v = nullptr;
  for (auto k = keys.begin(); k != keys.end(); ++k) {
    v = k == keys.begin() ? child(o, *k) : child(v, *k);
  }
  return v;
}

// The object `v` points to, or null when it is null or not an object.
inline const boost::json::object* objectOf(const boost::json::value* v) {
  return v != nullptr ? v->if_object() : nullptr;
}

// The array `v` points to, or null when it is null or not an array.
inline const boost::json::array* arrayOf(const boost::json::value* v) {
  return v != nullptr ? v->if_array() : nullptr;
}

// The boolean `v` points to, or `fallback` when it is null or not a boolean.
inline bool boolOf(const boost::json::value* v, bool fallback) {
  const bool* b = v != nullptr ? v->if_bool() : nullptr;
  return b != nullptr ? *b : fallback;
}

// The string `v` points to, or "" when it is null or not a string.
inline std::string_view stringOf(const boost::json::value* v) {
  const auto* s = v != nullptr ? v->if_string() : nullptr;
  return s != nullptr ? std::string_view(*s) : std::string_view();
}

}  // namespace burstlet::kube
