#pragma once
// Paging of the List* operations: MaxItems and the opaque Marker (base64 of the last key served).

#include <string>

#include "common/status.h"

namespace hearth::api {

// A page never holds more than this many items, whatever MaxItems says (Lambda's rule).
inline constexpr int kPageMax = 50;

// The Marker's key. InvalidArgument "Invalid Marker: ..." when it is not one we handed out.
Result<std::string> DecodeMarker(const std::string& marker);

// MaxItems (1-10000, ValidationException otherwise) capped at kPageMax into *max (kPageMax when
// absent), and the Marker's key into *after ("" when absent).
Status ParsePaging(const std::string& max_items, const std::string& marker, int* max,
                   std::string* after);

}  // namespace hearth::api
