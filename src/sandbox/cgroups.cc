#include "sandbox/cgroups.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include <fmt/format.h>

namespace hearth::sandbox {

namespace fs = std::filesystem;

namespace {

Status WriteFile(const fs::path& p, std::string_view value) {
  UniqueFd fd(::open(p.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) return PosixError(fmt::format("open '{}'", p.string()), errno);
  if (::write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size()))
    return PosixError(fmt::format("write '{}' to '{}'", value, p.string()), errno);
  return Status::Ok();
}

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// "key value" lines (memory.events, memory.oom_control).
int64_t ReadKey(const fs::path& p, std::string_view key) {
  std::istringstream in(ReadFile(p));
  std::string k;
  int64_t v;
  while (in >> k >> v)
    if (k == key) return v;
  return 0;
}

std::vector<pid_t> ReadProcs(const fs::path& dir) {
  std::vector<pid_t> out;
  std::istringstream in(ReadFile(dir / "cgroup.procs"));
  pid_t p;
  while (in >> p) out.push_back(p);
  return out;
}

// Kills what is left in `dir`, waits (bounded) for it to empty and removes it.
Status KillAndRemove(const fs::path& dir) {
  using namespace std::chrono;
  auto deadline = steady_clock::now() + seconds(5);
  for (int attempt = 0;; ++attempt) {
    for (pid_t p : ReadProcs(dir)) ::kill(p, SIGKILL);
    if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return Status::Ok();
    if (errno != EBUSY || steady_clock::now() > deadline)
      return PosixError(fmt::format("rmdir '{}'", dir.string()), errno);
    std::this_thread::sleep_for(microseconds(attempt < 20 ? 100 : 5000));
  }
}

struct Hierarchy {
  // "memory", "pids", "cpu", "freezer" (v1), "" for the v2 tree, "freeze" for a cgroup2 tree used
  // only to freeze (hybrid hosts)
  std::string controller;
  fs::path parent;  // the daemon's cgroup in this hierarchy
};

class Cgroup final : public EnvironmentCgroup {
 public:
  Cgroup(bool v2, std::vector<fs::path> dirs, fs::path memory_dir, fs::path cpu_dir, int64_t quota,
         int64_t period, fs::path freeze_file, bool freeze_v2)
      : v2_(v2), dirs_(std::move(dirs)), memory_dir_(std::move(memory_dir)), cpu_dir_(std::move(cpu_dir)),
        steady_quota_(quota), period_(period), freeze_file_(std::move(freeze_file)), freeze_v2_(freeze_v2) {}
  ~Cgroup() override { (void)Destroy(); }

  Status Open() {
    for (const auto& d : dirs_) {
      int fd = ::open((d / "cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0) return PosixError(fmt::format("open '{}'", (d / "cgroup.procs").string()), errno);
      procs_.push_back(fd);
    }
    return Status::Ok();
  }
  Status SetFrozen(bool frozen) override {
    if (freeze_file_.empty()) return Status::FailedPrecondition("no freezer on this host");
    if (!freeze_fd_.valid()) {
      freeze_fd_.Reset(::open(freeze_file_.c_str(), O_WRONLY | O_CLOEXEC));
      if (!freeze_fd_.valid()) return PosixError(fmt::format("open '{}'", freeze_file_.string()), errno);
    }
    std::string_view v = freeze_v2_ ? (frozen ? "1" : "0") : (frozen ? "FROZEN" : "THAWED");
    if (::pwrite(freeze_fd_.get(), v.data(), v.size(), 0) != static_cast<ssize_t>(v.size()))
      return PosixError(fmt::format("write '{}' to '{}'", v, freeze_file_.string()), errno);
    frozen_ = frozen;
    return Status::Ok();
  }
  const std::vector<int>& ProcsFds() const override { return procs_; }
  void CloseProcsFds() override {
    for (int fd : procs_) ::close(fd);
    procs_.clear();
  }
  int64_t PeakMemoryBytes() const override {
    // Read after every invoke: the file stays open and is pread (an open/read/close per invoke,
    // with its path walk, was ~6 % of the daemon's CPU at 64 connections).
    if (!peak_fd_.valid()) {
      peak_fd_.Reset(::open((memory_dir_ / (v2_ ? "memory.peak" : "memory.max_usage_in_bytes")).c_str(),
                            O_RDONLY | O_CLOEXEC));
      if (!peak_fd_.valid()) return last_peak_;
    }
    char buf[32];
    ssize_t n = ::pread(peak_fd_.get(), buf, sizeof(buf) - 1, 0);
    if (n > 0) {
      buf[n] = '\0';
      int64_t v = std::strtoll(buf, nullptr, 10);
      if (v > last_peak_) last_peak_ = v;
    }
    return last_peak_;
  }
  int64_t OomKills() const override {
    int64_t v = v2_ ? ReadKey(memory_dir_ / "memory.events", "oom_kill")
                    : ReadKey(memory_dir_ / "memory.oom_control", "oom_kill");
    if (v > last_oom_) last_oom_ = v;
    return last_oom_;
  }
  void EndInit() override {
    if (cpu_dir_.empty() || init_ended_) return;
    init_ended_ = true;
    if (v2_) (void)WriteFile(cpu_dir_ / "cpu.max", fmt::format("{} {}", steady_quota_, period_));
    else (void)WriteFile(cpu_dir_ / "cpu.cfs_quota_us", std::to_string(steady_quota_));
    if (steady_weight_ > 0) (void)WriteFile(cpu_dir_ / (v2_ ? "cpu.weight" : "cpu.shares"), std::to_string(steady_weight_));
  }
  Status SetLimits(const CgroupLimits& lim) override {
    const int64_t mem = int64_t{lim.memory_mb} << 20;
    const int64_t quota = std::max<int64_t>(1000, static_cast<int64_t>(period_ * lim.vcpus()));
    const int64_t init_quota = std::max(quota, period_);
    steady_quota_ = quota;
    init_ended_ = false;
    // CPU weight: during Init at least a plain process's (a 128 MB function's proportional weight
    // is 1/14 of one: behind a busy host's other processes its bootstrap's execve alone waited
    // tens of ms), then proportional to memory from EndInit() on.
    const int normal = v2_ ? 100 : 1024;
    steady_weight_ = v2_ ? std::clamp(lim.memory_mb * 100 / 1769, 1, 10000) : std::max(2, lim.memory_mb * 1024 / 1769);
    const int init_weight = std::max(normal, steady_weight_);
    if (v2_) {
      HEARTH_RETURN_IF_ERROR(WriteFile(memory_dir_ / "memory.max", std::to_string(mem)));
      (void)WriteFile(memory_dir_ / "memory.swap.max", "0");
      if (!cpu_dir_.empty()) (void)WriteFile(cpu_dir_ / "cpu.weight", std::to_string(init_weight));
    } else {
      // Lowering from "unlimited": memory first, then memory+swap (which may not be below it).
      HEARTH_RETURN_IF_ERROR(WriteFile(memory_dir_ / "memory.limit_in_bytes", std::to_string(mem)));
      (void)WriteFile(memory_dir_ / "memory.memsw.limit_in_bytes", std::to_string(mem));
      if (!cpu_dir_.empty()) (void)WriteFile(cpu_dir_ / "cpu.shares", std::to_string(init_weight));
    }
    // The blank's Init quota is one vCPU already; only a function above 1769 MB gets more.
    if (!cpu_dir_.empty() && init_quota != period_) {
      if (v2_) (void)WriteFile(cpu_dir_ / "cpu.max", fmt::format("{} {}", init_quota, period_));
      else (void)WriteFile(cpu_dir_ / "cpu.cfs_quota_us", std::to_string(init_quota));
    }
    return Status::Ok();
  }
  Status Destroy() override {
    CloseProcsFds();
    // A v1-frozen task dies only once thawed.
    if (frozen_) (void)SetFrozen(false);
    freeze_fd_.Reset();
    peak_fd_.Reset();
    Status first;
    for (const auto& d : dirs_) {
      Status st = KillAndRemove(d);
      if (!st.ok() && first.ok()) first = st;
    }
    dirs_.clear();
    return first;
  }

 private:
  bool v2_;
  std::vector<fs::path> dirs_;
  fs::path memory_dir_;
  fs::path cpu_dir_;  // empty: no cpu controller
  int64_t steady_quota_;
  int64_t period_;
  int steady_weight_ = 0;  // cpu.shares (v1) / cpu.weight (v2) after Init; 0: unchanged
  bool init_ended_ = false;
  fs::path freeze_file_;  // empty: no freezer
  bool freeze_v2_ = false;
  UniqueFd freeze_fd_;
  bool frozen_ = false;
  std::vector<int> procs_;
  mutable int64_t last_peak_ = 0;
  mutable UniqueFd peak_fd_;  // the memory peak file, opened at the first read
  mutable int64_t last_oom_ = 0;
};

class Manager final : public CgroupManager {
 public:
  Manager(bool v2, std::vector<Hierarchy> h, std::string tag)
      : v2_(v2), hierarchies_(std::move(h)), prefix_("hearth-" + tag + "-") {}

  const char* version() const override { return v2_ ? "v2" : "v1"; }
  std::string Describe() const override {
    std::string s = fmt::format("cgroup {}:", version());
    for (const auto& h : hierarchies_)
      s += fmt::format(" {}={}", h.controller.empty() ? "unified" : h.controller, h.parent.string());
    return s;
  }
  const char* freezer() const override {
    for (const auto& h : hierarchies_)
      if (h.controller.empty() || h.controller == "freeze") return "cgroup2";
    for (const auto& h : hierarchies_)
      if (h.controller == "freezer") return "v1";
    return "";
  }

  Result<std::unique_ptr<EnvironmentCgroup>> Create(const std::string& id, const CgroupLimits& lim) override {
    std::vector<fs::path> dirs;
    fs::path memory_dir;
    auto cleanup = [&]() {
      for (const auto& d : dirs) ::rmdir(d.c_str());
    };
    const bool blank = lim.memory_mb <= 0;  // limits come with SetLimits()
    const int64_t mem = int64_t{lim.memory_mb} << 20;
    const int64_t period = 100000;
    const int64_t quota = std::max<int64_t>(1000, static_cast<int64_t>(period * lim.vcpus()));
    const int64_t init_quota = std::max(quota, period);  // Init: at least one vCPU (EndInit lowers it)
    fs::path cpu_dir, freeze_file;
    bool freeze_v2 = false;
    for (const auto& h : hierarchies_) {
      fs::path dir = h.parent / (prefix_ + id);
      if (::mkdir(dir.c_str(), 0755) != 0) {
        Status st = PosixError(fmt::format("mkdir '{}'", dir.string()), errno);
        cleanup();
        return std::unexpected(st);
      }
      dirs.push_back(dir);
      Status st;
      if (v2_) {
        memory_dir = dir;
        if (!blank) st = WriteFile(dir / "memory.max", std::to_string(mem));
        if (st.ok() && !blank) (void)WriteFile(dir / "memory.swap.max", "0");
        if (st.ok() && blank) (void)WriteFile(dir / "cpu.weight", lim.background ? "10" : "100");
        if (st.ok()) st = WriteFile(dir / "pids.max", std::to_string(lim.pids_max));
        if (st.ok()) st = WriteFile(dir / "cpu.max", fmt::format("{} {}", init_quota, period));
        if (st.ok()) cpu_dir = dir;
        freeze_file = dir / "cgroup.freeze", freeze_v2 = true;
      } else if (h.controller == "freeze") {
        freeze_file = dir / "cgroup.freeze", freeze_v2 = true;
      } else if (h.controller == "freezer") {
        if (freeze_file.empty()) freeze_file = dir / "freezer.state";
      } else if (h.controller == "memory") {
        memory_dir = dir;
        if (!blank) {
          st = WriteFile(dir / "memory.limit_in_bytes", std::to_string(mem));
          // No swap either (ignored when the kernel has no swap accounting).
          if (st.ok()) (void)WriteFile(dir / "memory.memsw.limit_in_bytes", std::to_string(mem));
        }
      } else if (h.controller == "pids") {
        st = WriteFile(dir / "pids.max", std::to_string(lim.pids_max));
      } else if (h.controller == "cpu") {
        st = WriteFile(dir / "cpu.cfs_period_us", std::to_string(period));
        if (st.ok()) st = WriteFile(dir / "cpu.cfs_quota_us", std::to_string(init_quota));
        if (st.ok()) cpu_dir = dir;
        if (st.ok())
          (void)WriteFile(dir / "cpu.shares", blank ? (lim.background ? "100" : "1024")
                                                    : std::to_string(std::max(2, lim.memory_mb * 1024 / 1769)));
      }
      if (!st.ok()) {
        cleanup();
        return std::unexpected(st);
      }
    }
    auto cg = std::make_unique<Cgroup>(v2_, std::move(dirs), std::move(memory_dir), std::move(cpu_dir), quota,
                                       period, std::move(freeze_file), freeze_v2);
    if (Status st = cg->Open(); !st.ok()) return std::unexpected(st);
    return cg;
  }

  Status Sweep(std::string_view keep) override {
    Status first;
    for (const auto& h : hierarchies_) {
      std::error_code ec;
      for (const auto& e : fs::directory_iterator(h.parent, ec)) {
        const std::string name = e.path().filename().string();
        if (!e.is_directory() || !name.starts_with(prefix_)) continue;
        if (!keep.empty() && std::string_view(name).substr(prefix_.size()).starts_with(keep)) continue;
        Status st = KillAndRemove(e.path());
        if (!st.ok() && first.ok()) first = st;
      }
    }
    return first;
  }

 private:
  bool v2_;
  std::vector<Hierarchy> hierarchies_;
  std::string prefix_;
};

bool Writable(const fs::path& dir) { return ::access(dir.c_str(), W_OK) == 0; }

}  // namespace

Result<std::unique_ptr<CgroupManager>> NewCgroupManager(std::string tag) {
  // Mount points by controller, from /proc/self/mountinfo.
  std::map<std::string, fs::path> v1_mounts;
  fs::path unified;
  {
    std::ifstream in("/proc/self/mountinfo");
    std::string line;
    while (std::getline(in, line)) {
      auto dash = line.find(" - ");
      if (dash == std::string::npos) continue;
      std::istringstream pre(line.substr(0, dash)), post(line.substr(dash + 3));
      std::string id, parent, devno, root, mnt, fstype, source, opts;
      pre >> id >> parent >> devno >> root >> mnt;
      post >> fstype >> source >> opts;
      if (fstype == "cgroup2" && unified.empty()) unified = mnt;
      if (fstype == "cgroup") {
        std::istringstream o(opts);
        std::string opt;
        while (std::getline(o, opt, ','))
          if (opt == "memory" || opt == "pids" || opt == "cpu" || opt == "freezer") v1_mounts[opt] = mnt;
      }
    }
  }
  // Our own cgroup per hierarchy, from /proc/self/cgroup ("4:memory:/a/b", "0::/c").
  std::map<std::string, std::string> own;
  std::string own_v2;
  {
    std::ifstream in("/proc/self/cgroup");
    std::string line;
    while (std::getline(in, line)) {
      auto c1 = line.find(':'), c2 = line.find(':', c1 + 1);
      if (c1 == std::string::npos || c2 == std::string::npos) continue;
      std::string ctrls = line.substr(c1 + 1, c2 - c1 - 1), path = line.substr(c2 + 1);
      if (ctrls.empty()) own_v2 = path;
      std::istringstream o(ctrls);
      std::string c;
      while (std::getline(o, c, ',')) own[c] = path;
    }
  }
  auto rel = [](const std::string& p) { return p.size() > 1 ? p.substr(1) : std::string(); };
  if (v1_mounts.count("memory") && v1_mounts.count("pids")) {
    std::vector<Hierarchy> hs;
    for (const char* c : {"memory", "pids", "cpu"}) {
      if (!v1_mounts.count(c)) continue;
      fs::path parent = v1_mounts[c] / rel(own[c]);
      if (!Writable(parent))
        return std::unexpected(Status::FailedPrecondition(
            fmt::format("cgroup v1 {} hierarchy '{}' is not writable (need root)", c, parent.string())));
      hs.push_back({c, parent});
    }
    // Freezing environments: a hybrid host's cgroup2 tree has cgroup.freeze (17 us against the v1
    // freezer's 86 us median and one 4 ms tick at p99, machine.md C); else the v1 freezer.
    fs::path v2_parent = unified.empty() ? fs::path() : unified / rel(own_v2);
    if (!v2_parent.empty() && Writable(v2_parent) && fs::exists(unified / "cgroup.controllers")) {
      hs.push_back({"freeze", v2_parent});
    } else if (v1_mounts.count("freezer") && Writable(v1_mounts["freezer"] / rel(own["freezer"]))) {
      hs.push_back({"freezer", v1_mounts["freezer"] / rel(own["freezer"])});
    }
    return std::make_unique<Manager>(false, std::move(hs), std::move(tag));
  }
  if (!unified.empty()) {
    fs::path parent = unified / rel(own_v2);
    std::string controllers = ReadFile(unified / "cgroup.controllers");
    for (const char* c : {"memory", "pids"}) {
      if (controllers.find(c) == std::string::npos)
        return std::unexpected(Status::FailedPrecondition(fmt::format(
            "cgroup v2 at '{}' has no {} controller (controllers: '{}')", unified.string(), c, controllers)));
    }
    if (!Writable(parent))
      return std::unexpected(Status::FailedPrecondition(
          fmt::format("cgroup v2 '{}' is not writable (need root or a delegated cgroup)", parent.string())));
    // "No internal processes": controllers can be enabled for children only once the daemon has
    // moved out of its cgroup into a leaf of its own.
    std::string want = "+memory +pids";
    if (ReadFile(parent / "cgroup.controllers").find("cpu") != std::string::npos) want += " +cpu";
    if (!WriteFile(parent / "cgroup.subtree_control", want).ok()) {
      fs::path leaf = parent / "hearth-daemon";
      ::mkdir(leaf.c_str(), 0755);
      if (Status st = WriteFile(leaf / "cgroup.procs", "0"); !st.ok()) return std::unexpected(st);
      // Other threads of the daemon follow (cgroup.procs moves the whole process).
      if (Status st = WriteFile(parent / "cgroup.subtree_control", want); !st.ok()) return std::unexpected(st);
    }
    return std::make_unique<Manager>(true, std::vector<Hierarchy>{{"", parent}}, std::move(tag));
  }
  return std::unexpected(
      Status::FailedPrecondition("no usable cgroup hierarchy with the memory and pids controllers"));
}

}  // namespace hearth::sandbox
