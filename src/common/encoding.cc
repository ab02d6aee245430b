#include "common/encoding.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <pthread.h>
#include <sys/random.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>

#include <fmt/format.h>

namespace hearth {

std::string Base64Encode(std::string_view data) {
  std::string out;
  out.resize(4 * ((data.size() + 2) / 3));
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(data.data()),
                          static_cast<int>(data.size()));
  out.resize(n < 0 ? 0 : static_cast<size_t>(n));
  return out;
}

namespace {
int B64Value(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}
}  // namespace

std::optional<std::string> Base64Decode(std::string_view text) {
  std::string out;
  out.reserve(text.size() / 4 * 3);
  uint32_t acc = 0;
  int bits = 0;
  size_t pad = 0;
  for (unsigned char c : text) {
    if (c == '\n' || c == '\r' || c == ' ' || c == '\t') continue;
    if (c == '=') {
      ++pad;
      continue;
    }
    if (pad > 0) return std::nullopt;  // data after padding
    int v = B64Value(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  if (pad > 2) return std::nullopt;
  return out;
}

std::string HexEncode(std::string_view data) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(data.size() * 2);
  for (unsigned char c : data) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 0xF]);
  }
  return out;
}

std::string Sha256(std::string_view data) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md);
  return std::string(reinterpret_cast<char*>(md), sizeof(md));
}

namespace {

// Bumped in every forked child, so that a child never repeats its parent's sequence.
std::atomic<uint64_t> g_fork_generation{1};

struct ThreadRandom {
  uint64_t s[4] = {0, 0, 0, 0};
  uint64_t generation = 0;  // 0: not seeded yet

  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

  void SeedIfNeeded() {
    const uint64_t gen = g_fork_generation.load(std::memory_order_relaxed);
    if (generation == gen) return;
    static std::once_flag atfork_once;
    std::call_once(atfork_once, [] {
      ::pthread_atfork(nullptr, nullptr, [] { g_fork_generation.fetch_add(1, std::memory_order_relaxed); });
    });
    unsigned char* p = reinterpret_cast<unsigned char*>(s);
    size_t got = 0;
    while (got < sizeof s) {
      ssize_t n = ::getrandom(p + got, sizeof s - got, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        std::abort();  // no kernel entropy at all: nothing sensible to fall back to
      }
      got += static_cast<size_t>(n);
    }
    if ((s[0] | s[1] | s[2] | s[3]) == 0) s[0] = 1;  // the one state xoshiro cannot leave
    generation = g_fork_generation.load(std::memory_order_relaxed);
  }

  uint64_t Next() {  // xoshiro256** (Blackman & Vigna)
    const uint64_t result = Rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = Rotl(s[3], 45);
    return result;
  }
};

thread_local ThreadRandom t_random;

}  // namespace

void FillRandom(void* out, std::size_t n) {
  t_random.SeedIfNeeded();
  auto* p = static_cast<unsigned char*>(out);
  while (n > 0) {
    const uint64_t v = t_random.Next();
    const size_t take = std::min<size_t>(n, sizeof v);
    std::memcpy(p, &v, take);
    p += take;
    n -= take;
  }
}

std::string NewUuid() {
  unsigned char b[16];
  FillRandom(b, sizeof b);
  b[6] = (b[6] & 0x0F) | 0x40;
  b[8] = (b[8] & 0x3F) | 0x80;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(36, '-');
  size_t j = 0;
  for (size_t i = 0; i < sizeof b; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) ++j;  // the dashes
    out[j++] = kHex[b[i] >> 4];
    out[j++] = kHex[b[i] & 0xF];
  }
  return out;
}

namespace {
std::string FormatUtc(std::chrono::system_clock::time_point t, const char* suffix) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}{}", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms % 1000, suffix);
}
}  // namespace

std::string FormatLambdaTimestamp(std::chrono::system_clock::time_point t) {
  return FormatUtc(t, "+0000");
}

std::string FormatIsoTimestamp(std::chrono::system_clock::time_point t) { return FormatUtc(t, "Z"); }

}  // namespace hearth
