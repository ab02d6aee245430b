#pragma once
// Minimal JSON output helpers, enough to build error bodies and small handler results without a
// JSON library. (Parsing JSON is left to the function's own choice of library.)

#include <string>
#include <string_view>

namespace hearth::runtime {

// Appends `text` to `*out` as a quoted JSON string: escapes '"', '\\' and control characters
// (\b \f \n \r \t, else \u00XX), and replaces bytes that are not valid UTF-8 with U+FFFD so the
// result is always valid JSON. REQUIRES: out != nullptr.
void AppendJsonString(std::string* out, std::string_view text);

// Returns `text` as a quoted JSON string (see AppendJsonString).
std::string JsonQuote(std::string_view text);

}  // namespace hearth::runtime
