#include "api/paging.h"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

#include "common/encoding.h"

namespace hearth::api {

Result<std::string> DecodeMarker(const std::string& marker) {
  auto decoded = Base64Decode(marker);
  if (!decoded || decoded->empty())
    return std::unexpected(Status::InvalidArgument("Invalid Marker: " + marker));
  return *decoded;
}

Status ParsePaging(const std::string& max_items, const std::string& marker, int* max,
                   std::string* after) {
  *max = kPageMax;
  if (!max_items.empty()) {
    int v = 0;
    auto [p, ec] = std::from_chars(max_items.data(), max_items.data() + max_items.size(), v);
    if (ec != std::errc() || p != max_items.data() + max_items.size() || v < 1 || v > 10000) {
      return Status::Validation(fmt::format(
          "1 validation error detected: Value '{}' at 'maxItems' failed to satisfy constraint: "
          "Member must have value between 1 and 10000",
          max_items));
    }
    *max = std::min(v, kPageMax);
  }
  after->clear();
  if (!marker.empty()) {
    auto key = DecodeMarker(marker);
    if (!key) return key.error();
    *after = std::move(*key);
  }
  return Status::Ok();
}

}  // namespace hearth::api
