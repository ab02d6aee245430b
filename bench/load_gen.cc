// load_gen: a small HTTP/1.1 load generator (and the echo server it is compared with) for the
// scale benchmarks of docs/benchmarks.md ("Scale (issue 5)"); bench/scale_bench.py drives it.
//
//   load_gen run   --port P [--host 127.0.0.1] [--path /x] [--method POST] [--body S]
//                  [--connections C] [--warmup-s W] [--duration-s D] [--max-requests N]
//                  [--expect-body S | --expect-echo] [--threads T]
//       C keep-alive connections (TCP_NODELAY), each with one request in flight (closed loop, as
//       wrk does). The first W seconds are not recorded; then D seconds (or N answers) are. Every
//       answer is checked: status 200, no X-Amz-Function-Error header, and the body when asked.
//       Prints one human line, then one JSON line (`{"load_gen":"run",...}`): invokes/s, latency
//       p50/p90/p99/max, errors by kind, and the CPU time (user+sys) this program used.
//   load_gen burst --port P --path /x --body S --count N [--timeout-s T] [--expect-body S|--expect-echo]
//       N connections are opened first (untimed), then N requests are written back to back, and
//       the time until the last answer arrives is measured, with every answer's latency.
//   load_gen serve [--port 0] [--host 127.0.0.1] [--max-seconds S]
//       A trivial single-threaded HTTP/1.1 keep-alive server that answers every request with its
//       body (200, Content-Type application/json): the floor a Hearth invoke is compared with.
//       Prints `listening PORT` on stdout, exits on SIGTERM/SIGINT or after --max-seconds.
//
// Loopback (or another address of this machine) only; every run is bounded in time.
// Raw non-blocking sockets and epoll, one thread per --threads (default 1), so that the load
// generator itself costs as little CPU as possible on a 2-vCPU machine.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

double CpuSecondsSelf() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

void RaiseNofile() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

std::string JsonEscape(std::string_view s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      o += '\\';
      o += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", c);
      o += b;
    } else {
      o += c;
    }
  }
  return o;
}

struct Options {
  std::string mode;
  std::string host = "127.0.0.1";
  int port = 0;
  std::string path = "/";
  std::string method = "POST";
  std::string body = R"({"bench":"scale","pad":"0123456789abcdef0123456789abcdef01234"})";
  int connections = 1;
  double warmup_s = 1;
  double duration_s = 5;
  long max_requests = 0;
  int threads = 1;
  bool expect_echo = false;
  bool has_expect_body = false;
  std::string expect_body;
  int count = 500;
  double timeout_s = 120;
  double max_seconds = 3600;
  std::string label;
};

[[noreturn]] void Usage(int code) {
  std::fprintf(code ? stderr : stdout,
               "usage: load_gen run|burst|serve [options]  (see the comment at the top of "
               "bench/load_gen.cc)\n"
               "  --host H --port P --path /p --method M --body S --connections C --threads T\n"
               "  --warmup-s W --duration-s D --max-requests N --expect-echo --expect-body S\n"
               "  --count N --timeout-s T (burst)   --max-seconds S (serve)   --label L\n");
  std::exit(code);
}

Options Parse(int argc, char** argv) {
  if (argc < 2) Usage(2);
  Options o;
  o.mode = argv[1];
  if (o.mode == "--help" || o.mode == "-h") Usage(0);
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "missing value for %s\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--host") o.host = val();
    else if (a == "--port") o.port = std::stoi(val());
    else if (a == "--path") o.path = val();
    else if (a == "--method") o.method = val();
    else if (a == "--body") o.body = val();
    else if (a == "--connections") o.connections = std::stoi(val());
    else if (a == "--warmup-s") o.warmup_s = std::stod(val());
    else if (a == "--duration-s") o.duration_s = std::stod(val());
    else if (a == "--max-requests") o.max_requests = std::stol(val());
    else if (a == "--threads") o.threads = std::stoi(val());
    else if (a == "--expect-echo") o.expect_echo = true;
    else if (a == "--expect-body") { o.expect_body = val(); o.has_expect_body = true; }
    else if (a == "--count") o.count = std::stoi(val());
    else if (a == "--timeout-s") o.timeout_s = std::stod(val());
    else if (a == "--max-seconds") o.max_seconds = std::stod(val());
    else if (a == "--label") o.label = val();
    else if (a == "--help" || a == "-h") Usage(0);
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      Usage(2);
    }
  }
  if (o.expect_echo) {
    o.expect_body = o.body;
    o.has_expect_body = true;
  }
  if (o.connections < 1 || o.threads < 1 || o.count < 1) Usage(2);
  o.threads = std::min(o.threads, o.connections);
  return o;
}

// ---- minimal HTTP/1.1 response parsing (Content-Length or chunked) ----

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

struct Parsed {
  int status = 0;
  bool function_error = false;
  bool close = false;
  std::string body;
};

// Tries to take one complete response off the front of `buf`. Returns the bytes consumed, 0 when
// more bytes are needed, -1 when the response is malformed.
long TryParseResponse(const std::string& buf, Parsed* out) {
  size_t hend = buf.find("\r\n\r\n");
  if (hend == std::string::npos) return buf.size() > (64 << 10) ? -1 : 0;
  std::string_view head(buf.data(), hend);
  if (head.size() < 12 || head.substr(0, 5) != "HTTP/") return -1;
  int status = 0;
  std::from_chars(head.data() + 9, head.data() + 12, status);
  long content_length = -1;
  bool chunked = false;
  bool close = head.substr(0, 8) == "HTTP/1.0";
  bool ferr = false;
  size_t pos = head.find("\r\n");
  while (pos != std::string_view::npos && pos < head.size()) {
    size_t next = head.find("\r\n", pos + 2);
    std::string_view line = head.substr(pos + 2, (next == std::string_view::npos ? head.size() : next) - pos - 2);
    size_t colon = line.find(':');
    if (colon != std::string_view::npos) {
      std::string_view name = line.substr(0, colon);
      std::string_view v = line.substr(colon + 1);
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
      while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
      if (IEquals(name, "content-length")) std::from_chars(v.data(), v.data() + v.size(), content_length);
      else if (IEquals(name, "transfer-encoding")) chunked = v.find("chunked") != std::string_view::npos;
      else if (IEquals(name, "connection")) close = IEquals(v, "close");
      else if (IEquals(name, "x-amz-function-error")) ferr = true;
    }
    pos = next;
  }
  size_t p = hend + 4;
  std::string body;
  if (chunked) {
    for (;;) {
      size_t le = buf.find("\r\n", p);
      if (le == std::string::npos) return 0;
      long n = 0;
      auto r = std::from_chars(buf.data() + p, buf.data() + le, n, 16);
      if (r.ec != std::errc()) return -1;
      p = le + 2;
      if (n == 0) {
        size_t te = buf.find("\r\n", p);  // no trailers expected: just the final CRLF
        if (te == std::string::npos) return 0;
        p = te + 2;
        break;
      }
      if (buf.size() < p + size_t(n) + 2) return 0;
      body.append(buf, p, size_t(n));
      p += size_t(n) + 2;
    }
  } else {
    if (content_length < 0) content_length = (status == 204 || status == 304) ? 0 : -1;
    if (content_length < 0) return -1;  // read-until-close bodies are not used by any target here
    if (buf.size() < p + size_t(content_length)) return 0;
    body.assign(buf, p, size_t(content_length));
    p += size_t(content_length);
  }
  out->status = status;
  out->function_error = ferr;
  out->close = close;
  out->body = std::move(body);
  return long(p);
}

int ConnectTo(const std::string& host, int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(port));
  if (inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1) {
    close(fd);
    return -1;
  }
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

std::string BuildRequest(const Options& o) {
  std::string r = o.method + " " + o.path + " HTTP/1.1\r\nHost: " + o.host + ":" + std::to_string(o.port) +
                  "\r\nContent-Type: application/json\r\n";
  if (!o.body.empty() || o.method == "POST" || o.method == "PUT")
    r += "Content-Length: " + std::to_string(o.body.size()) + "\r\n";
  r += "\r\n";
  r += o.body;
  return r;
}

bool SendAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += size_t(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      // The request is small; a full socket buffer this early means something is very wrong.
      timespec ts{0, 100'000};
      nanosleep(&ts, nullptr);
      continue;
    }
    return false;
  }
  return true;
}

struct Errors {
  long status_non200 = 0;
  long function_error = 0;
  long body_mismatch = 0;
  long io = 0;
  long malformed = 0;
  std::map<int, long> statuses;
  std::string first_error;
  void Note(const std::string& what) {
    if (first_error.empty()) first_error = what;
  }
  long total() const { return status_non200 + function_error + body_mismatch + io + malformed; }
  void Merge(const Errors& e) {
    status_non200 += e.status_non200;
    function_error += e.function_error;
    body_mismatch += e.body_mismatch;
    io += e.io;
    malformed += e.malformed;
    for (auto& [k, v] : e.statuses) statuses[k] += v;
    if (first_error.empty()) first_error = e.first_error;
  }
};

// Checks one answer; returns true when it counts as a success.
bool Check(const Options& o, const Parsed& p, Errors* e) {
  e->statuses[p.status]++;
  if (p.status != 200) {
    ++e->status_non200;
    e->Note("status " + std::to_string(p.status) + ": " + p.body.substr(0, 200));
    return false;
  }
  if (p.function_error) {
    ++e->function_error;
    e->Note("X-Amz-Function-Error: " + p.body.substr(0, 200));
    return false;
  }
  if (o.has_expect_body && p.body != o.expect_body) {
    ++e->body_mismatch;
    e->Note("body mismatch: " + p.body.substr(0, 200));
    return false;
  }
  return true;
}

struct Percentiles {
  double p50 = 0, p90 = 0, p99 = 0, max = 0, mean = 0;
};

Percentiles Summarize(std::vector<uint64_t>& lat_ns) {
  Percentiles p;
  if (lat_ns.empty()) return p;
  std::sort(lat_ns.begin(), lat_ns.end());
  auto at = [&](double q) {
    size_t k = size_t(std::ceil(q * double(lat_ns.size())));
    k = std::clamp<size_t>(k, 1, lat_ns.size());
    return double(lat_ns[k - 1]) / 1000.0;  // µs, nearest rank
  };
  p.p50 = at(0.50);
  p.p90 = at(0.90);
  p.p99 = at(0.99);
  p.max = double(lat_ns.back()) / 1000.0;
  double sum = 0;
  for (uint64_t v : lat_ns) sum += double(v);
  p.mean = sum / double(lat_ns.size()) / 1000.0;
  return p;
}

std::string ErrorsJson(const Errors& e) {
  std::string s = "{\"total\":" + std::to_string(e.total()) + ",\"status_non200\":" +
                  std::to_string(e.status_non200) + ",\"function_error\":" + std::to_string(e.function_error) +
                  ",\"body_mismatch\":" + std::to_string(e.body_mismatch) + ",\"io\":" + std::to_string(e.io) +
                  ",\"malformed\":" + std::to_string(e.malformed) + ",\"statuses\":{";
  bool first = true;
  for (auto& [k, v] : e.statuses) {
    if (!first) s += ',';
    first = false;
    s += '"';
    s += std::to_string(k);
    s += "\":";
    s += std::to_string(v);
  }
  s += "},\"first_error\":\"" + JsonEscape(e.first_error) + "\"}";
  return s;
}

// ---------------------------------------------------------------- run (closed loop)

struct Conn {
  int fd = -1;
  std::string in;
  int64_t sent_at = 0;
};

struct WorkerResult {
  std::vector<uint64_t> lat_ns;
  long ok = 0;
  long warm_answers = 0;
  Errors errors;
};

std::atomic<int> g_phase{0};  // 0 warm-up, 1 measuring, 2 stop
std::atomic<long> g_measured{0};

void RunWorker(const Options& o, int nconn, const std::string& request, WorkerResult* res) {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  std::vector<Conn> conns(static_cast<size_t>(nconn));
  auto open = [&](size_t i) -> bool {
    Conn& c = conns[i];
    if (c.fd >= 0) {
      epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
      close(c.fd);
    }
    c.in.clear();
    c.fd = ConnectTo(o.host, o.port);
    if (c.fd < 0) return false;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
    c.sent_at = NowNs();
    return SendAll(c.fd, request);
  };
  for (size_t i = 0; i < conns.size(); ++i) {
    if (!open(i)) {
      res->errors.io++;
      res->errors.Note("connect/send failed: " + std::string(strerror(errno)));
    }
  }
  res->lat_ns.reserve(1 << 20);
  std::vector<epoll_event> evs(size_t(std::max(nconn, 1)));
  char rbuf[16384];
  while (g_phase.load(std::memory_order_relaxed) < 2) {
    int n = epoll_wait(ep, evs.data(), int(evs.size()), 50);
    if (n < 0 && errno != EINTR) break;
    for (int k = 0; k < n; ++k) {
      size_t i = evs[size_t(k)].data.u64;
      Conn& c = conns[i];
      bool broken = false;
      for (;;) {
        ssize_t r = recv(c.fd, rbuf, sizeof rbuf, 0);
        if (r > 0) {
          c.in.append(rbuf, size_t(r));
          if (size_t(r) < sizeof rbuf) break;
          continue;
        }
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        broken = true;  // EOF or error
        break;
      }
      bool reopen = false;
      for (;;) {
        Parsed p;
        long used = TryParseResponse(c.in, &p);
        if (used == 0) break;
        int64_t now = NowNs();
        int phase = g_phase.load(std::memory_order_relaxed);
        if (used < 0) {
          if (phase == 1) {
            res->errors.malformed++;
            res->errors.Note("malformed response: " + c.in.substr(0, 200));
          }
          reopen = true;
          break;
        }
        c.in.erase(0, size_t(used));
        if (phase == 1) {
          bool ok = Check(o, p, &res->errors);
          if (ok) {
            ++res->ok;
            int64_t d = now - c.sent_at;
            res->lat_ns.push_back(uint64_t(d));
          }
          long m = g_measured.fetch_add(1, std::memory_order_relaxed) + 1;
          if (o.max_requests > 0 && m >= o.max_requests) g_phase.store(2);
        } else if (phase == 0) {
          ++res->warm_answers;
          Errors ignored;
          if (!Check(o, p, &ignored) && res->errors.first_error.empty())
            res->errors.Note("during warm-up: " + ignored.first_error);
        }
        if (p.close) {
          reopen = true;
          break;
        }
        c.sent_at = NowNs();
        if (!SendAll(c.fd, request)) {
          reopen = true;
          break;
        }
      }
      if (broken && !reopen) {
        if (g_phase.load() == 1) {
          res->errors.io++;
          res->errors.Note("connection closed by peer");
        }
        reopen = true;
      }
      if (reopen && g_phase.load() < 2) {
        if (!open(i)) {
          res->errors.io++;
          res->errors.Note("reconnect failed: " + std::string(strerror(errno)));
          timespec ts{0, 10'000'000};
          nanosleep(&ts, nullptr);
        }
      }
    }
  }
  for (auto& c : conns)
    if (c.fd >= 0) close(c.fd);
  close(ep);
}

int DoRun(const Options& o) {
  if (o.port <= 0) Usage(2);
  RaiseNofile();
  const std::string request = BuildRequest(o);
  std::vector<WorkerResult> results(static_cast<size_t>(o.threads));
  std::vector<std::thread> threads;
  double cpu0 = CpuSecondsSelf();
  int64_t t_start = NowNs();
  for (int t = 0; t < o.threads; ++t) {
    int n = o.connections / o.threads + (t < o.connections % o.threads ? 1 : 0);
    threads.emplace_back(RunWorker, std::cref(o), n, std::cref(request), &results[size_t(t)]);
  }
  // Warm-up, then the measured window.
  int64_t warm_end = t_start + int64_t(o.warmup_s * 1e9);
  while (NowNs() < warm_end) {
    timespec ts{0, 5'000'000};
    nanosleep(&ts, nullptr);
  }
  double cpu1 = CpuSecondsSelf();
  int64_t t1 = NowNs();
  g_phase.store(1);
  std::fputs("# measuring\n", stderr);  // markers for a driver that samples /proc meanwhile
  std::fflush(stderr);
  int64_t deadline = t1 + int64_t(o.duration_s * 1e9);
  while (g_phase.load() == 1 && NowNs() < deadline) {
    timespec ts{0, 2'000'000};
    nanosleep(&ts, nullptr);
  }
  g_phase.store(2);
  int64_t t2 = NowNs();
  double cpu2 = CpuSecondsSelf();
  std::fputs("# measured\n", stderr);
  std::fflush(stderr);
  for (auto& th : threads) th.join();
  (void)cpu0;

  WorkerResult all;
  long warm = 0;
  for (auto& r : results) {
    all.lat_ns.insert(all.lat_ns.end(), r.lat_ns.begin(), r.lat_ns.end());
    all.ok += r.ok;
    all.errors.Merge(r.errors);
    warm += r.warm_answers;
  }
  double secs = double(t2 - t1) / 1e9;
  Percentiles p = Summarize(all.lat_ns);
  double rps = double(all.ok) / secs;
  double cpu_per_req_us = all.ok ? (cpu2 - cpu1) / double(all.ok) * 1e6 : 0;
  std::fprintf(stderr,
               "%s%sconnections %d: %.0f ok/s over %.2f s (%ld ok, %ld errors, %ld warm-up answers); "
               "latency p50 %.1f p90 %.1f p99 %.1f max %.1f us; load_gen CPU %.1f us/req%s%s\n",
               o.label.c_str(), o.label.empty() ? "" : ": ", o.connections, rps, secs, all.ok,
               all.errors.total(), warm, p.p50, p.p90, p.p99, p.max, cpu_per_req_us,
               all.errors.first_error.empty() ? "" : "; first error: ", all.errors.first_error.c_str());
  std::printf(
      "{\"load_gen\":\"run\",\"label\":\"%s\",\"connections\":%d,\"threads\":%d,\"seconds\":%.3f,"
      "\"ok\":%ld,\"warmup_answers\":%ld,\"rps\":%.1f,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,"
      "\"max_us\":%.1f,\"mean_us\":%.1f,\"client_cpu_s\":%.3f,\"client_cpu_us_per_req\":%.2f,\"errors\":%s}\n",
      JsonEscape(o.label).c_str(), o.connections, o.threads, secs, all.ok, warm, rps, p.p50, p.p90, p.p99,
      p.max, p.mean, cpu2 - cpu1, cpu_per_req_us, ErrorsJson(all.errors).c_str());
  std::fflush(stdout);
  return all.ok > 0 ? 0 : 1;
}

// ---------------------------------------------------------------- burst

int DoBurst(const Options& o) {
  if (o.port <= 0) Usage(2);
  RaiseNofile();
  const std::string request = BuildRequest(o);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  std::vector<Conn> conns(static_cast<size_t>(o.count));
  Errors errors;
  for (size_t i = 0; i < conns.size(); ++i) {
    conns[i].fd = ConnectTo(o.host, o.port);
    if (conns[i].fd < 0) {
      std::fprintf(stderr, "connect %zu failed: %s\n", i, strerror(errno));
      return 1;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
  }
  // Let the server accept them all before the clock starts.
  timespec settle{0, 200'000'000};
  nanosleep(&settle, nullptr);
  double cpu0 = CpuSecondsSelf();
  const int64_t t0 = NowNs();
  for (auto& c : conns) {
    c.sent_at = NowNs();
    if (!SendAll(c.fd, request)) {
      errors.io++;
      errors.Note("send failed");
    }
  }
  const int64_t t_sent = NowNs();
  std::vector<uint64_t> lat;
  std::vector<char> done(conns.size(), 0);
  size_t remaining = conns.size();
  long ok = 0;
  int64_t t_last = t0;
  const int64_t deadline = t0 + int64_t(o.timeout_s * 1e9);
  std::vector<epoll_event> evs(conns.size());
  char rbuf[16384];
  while (remaining > 0 && NowNs() < deadline) {
    int n = epoll_wait(ep, evs.data(), int(evs.size()), 100);
    if (n < 0 && errno != EINTR) break;
    for (int k = 0; k < n; ++k) {
      size_t i = evs[size_t(k)].data.u64;
      Conn& c = conns[i];
      if (done[i]) continue;
      bool eof = false;
      for (;;) {
        ssize_t r = recv(c.fd, rbuf, sizeof rbuf, 0);
        if (r > 0) {
          c.in.append(rbuf, size_t(r));
          continue;
        }
        if (r < 0 && errno == EINTR) continue;
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) eof = true;
        break;
      }
      Parsed p;
      long used = TryParseResponse(c.in, &p);
      int64_t now = NowNs();
      if (used > 0) {
        done[i] = 1;
        --remaining;
        t_last = now;
        lat.push_back(uint64_t(now - c.sent_at));
        if (Check(o, p, &errors)) ++ok;
      } else if (used < 0 || eof) {
        done[i] = 1;
        --remaining;
        t_last = now;
        if (used < 0) {
          errors.malformed++;
          errors.Note("malformed: " + c.in.substr(0, 200));
        } else {
          errors.io++;
          errors.Note("connection closed without an answer");
        }
      }
      if (done[i]) epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
    }
  }
  double cpu1 = CpuSecondsSelf();
  long timed_out = long(remaining);
  if (timed_out) {
    errors.io += timed_out;
    errors.Note(std::to_string(timed_out) + " requests got no answer within " + std::to_string(o.timeout_s) + " s");
  }
  for (auto& c : conns) close(c.fd);
  close(ep);
  Percentiles p = Summarize(lat);
  double total_ms = double(t_last - t0) / 1e6;
  std::fprintf(stderr,
               "%s%sburst of %d: all answered in %.1f ms (writes took %.2f ms); %ld ok, %ld errors; "
               "latency p50 %.1f p99 %.1f max %.1f ms%s%s\n",
               o.label.c_str(), o.label.empty() ? "" : ": ", o.count, total_ms, double(t_sent - t0) / 1e6, ok,
               errors.total(), p.p50 / 1000, p.p99 / 1000, p.max / 1000,
               errors.first_error.empty() ? "" : "; first error: ", errors.first_error.c_str());
  std::printf(
      "{\"load_gen\":\"burst\",\"label\":\"%s\",\"count\":%d,\"ok\":%ld,\"total_ms\":%.2f,\"send_ms\":%.3f,"
      "\"p50_ms\":%.2f,\"p90_ms\":%.2f,\"p99_ms\":%.2f,\"max_ms\":%.2f,\"client_cpu_s\":%.3f,\"errors\":%s}\n",
      JsonEscape(o.label).c_str(), o.count, ok, total_ms, double(t_sent - t0) / 1e6, p.p50 / 1000, p.p90 / 1000,
      p.p99 / 1000, p.max / 1000, cpu1 - cpu0, ErrorsJson(errors).c_str());
  std::fflush(stdout);
  return ok == o.count ? 0 : 1;
}

// ---------------------------------------------------------------- serve (the echo floor)

volatile sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

struct ServerConn {
  std::string in;
  std::string out;
};

// Takes one complete request off the front of `in`; returns consumed bytes, 0 if incomplete, -1 if bad.
long TryParseRequest(const std::string& in, std::string* body) {
  size_t hend = in.find("\r\n\r\n");
  if (hend == std::string::npos) return in.size() > (64 << 10) ? -1 : 0;
  std::string_view head(in.data(), hend);
  long cl = 0;
  size_t pos = head.find("\r\n");
  while (pos != std::string_view::npos) {
    size_t next = head.find("\r\n", pos + 2);
    std::string_view line = head.substr(pos + 2, (next == std::string_view::npos ? head.size() : next) - pos - 2);
    size_t colon = line.find(':');
    if (colon != std::string_view::npos && IEquals(line.substr(0, colon), "content-length")) {
      std::string_view v = line.substr(colon + 1);
      while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
      std::from_chars(v.data(), v.data() + v.size(), cl);
    } else if (colon != std::string_view::npos && IEquals(line.substr(0, colon), "transfer-encoding")) {
      return -1;  // not needed by load_gen
    }
    pos = next;
  }
  if (in.size() < hend + 4 + size_t(cl)) return 0;
  body->assign(in, hend + 4, size_t(cl));
  return long(hend + 4 + size_t(cl));
}

int DoServe(const Options& o) {
  RaiseNofile();
  signal(SIGTERM, OnSignal);
  signal(SIGINT, OnSignal);
  signal(SIGPIPE, SIG_IGN);
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(o.port));
  inet_pton(AF_INET, o.host.c_str(), &a.sin_addr);
  if (bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(lfd, 1024) != 0) {
    std::fprintf(stderr, "bind/listen: %s\n", strerror(errno));
    return 1;
  }
  socklen_t al = sizeof a;
  getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &al);
  std::printf("listening %d\n", ntohs(a.sin_port));
  std::fflush(stdout);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = lfd;
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  std::map<int, ServerConn> conns;
  std::vector<epoll_event> evs(256);
  char rbuf[16384];
  const int64_t end = NowNs() + int64_t(o.max_seconds * 1e9);
  while (!g_stop && NowNs() < end) {
    int n = epoll_wait(ep, evs.data(), int(evs.size()), 200);
    for (int k = 0; k < n; ++k) {
      int fd = evs[size_t(k)].data.fd;
      if (fd == lfd) {
        for (;;) {
          int c = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (c < 0) break;
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          epoll_event cev{};
          cev.events = EPOLLIN;
          cev.data.fd = c;
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
          conns[c];
        }
        continue;
      }
      ServerConn& sc = conns[fd];
      bool gone = false;
      for (;;) {
        ssize_t r = recv(fd, rbuf, sizeof rbuf, 0);
        if (r > 0) {
          sc.in.append(rbuf, size_t(r));
          if (size_t(r) < sizeof rbuf) break;
          continue;
        }
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        gone = true;
        break;
      }
      std::string body;
      for (;;) {
        long used = TryParseRequest(sc.in, &body);
        if (used == 0) break;
        if (used < 0) {
          gone = true;
          break;
        }
        sc.in.erase(0, size_t(used));
        sc.out += "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ";
        sc.out += std::to_string(body.size());
        sc.out += "\r\n\r\n";
        sc.out += body;
      }
      if (!sc.out.empty() && !gone) {
        if (!SendAll(fd, sc.out)) gone = true;
        sc.out.clear();
      }
      if (gone) {
        epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
        close(fd);
        conns.erase(fd);
      }
    }
  }
  for (auto& [fd, c] : conns) close(fd);
  close(lfd);
  close(ep);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  Options o = Parse(argc, argv);
  if (o.mode == "run") return DoRun(o);
  if (o.mode == "burst") return DoBurst(o);
  if (o.mode == "serve") return DoServe(o);
  Usage(2);
}
