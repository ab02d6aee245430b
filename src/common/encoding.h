#pragma once
// Small encoding helpers: base64, hex, SHA-256 (OpenSSL), UUIDs, Lambda's timestamp format.

#include <chrono>
#include <cstdint>
#include <optional>
#include <cstddef>
#include <string>
#include <string_view>

namespace hearth {

std::string Base64Encode(std::string_view data);
// Returns nullopt on malformed input (bad characters, bad padding).
std::optional<std::string> Base64Decode(std::string_view text);

std::string HexEncode(std::string_view data);

// Raw 32-byte SHA-256 digest.
std::string Sha256(std::string_view data);

// A random RFC 4122 version-4 UUID, lower case ("3f0e...-..."). Unique, not secret: from
// FillRandom() (request ids, revision ids, environment ids).
std::string NewUuid();

// Fills `out` with random bytes from a per-thread generator (xoshiro256**) seeded from the
// kernel (getrandom) at first use in each thread and again in a forked child. For identifiers
// that must not collide, not for secrets (keys, tokens: use OpenSSL). A few ns per call and no
// system call, so the invoke path can draw two per request.
void FillRandom(void* out, std::size_t n);

// Lambda's LastModified format: "2020-04-10T19:06:32.563+0000".
std::string FormatLambdaTimestamp(std::chrono::system_clock::time_point t);

// ISO 8601 with milliseconds and Z: "2020-04-10T19:06:32.563Z".
std::string FormatIsoTimestamp(std::chrono::system_clock::time_point t);

}  // namespace hearth
