#include "config/daemon_config.h"

#include <fstream>
#include <sstream>

#include <boost/json.hpp>
#include <fmt/format.h>

namespace hearth::config {

namespace json = boost::json;

Status DaemonConfig::Validate() const {
  if (listen_port < 0 || listen_port > 65535) return Status::InvalidArgument("listen port out of range");
  if (data_dir.empty()) return Status::InvalidArgument("data_dir must not be empty");
  if (io_threads < 1 || io_threads > 64) return Status::InvalidArgument("io_threads must be 1-64");
  if (worker_threads < 1 || worker_threads > 256)
    return Status::InvalidArgument("worker_threads must be 1-256");
  if (loop_spin_us < 0 || loop_spin_us > 10000)
    return Status::InvalidArgument("loop_spin_us must be 0-10000");
  if (blank_sandboxes < 0 || blank_sandboxes > 64) return Status::InvalidArgument("blank_sandboxes must be 0-64");
  for (const auto& [runtime, count] : preinit_runtimes) {
    if (count < 0 || count > 8)
      return Status::InvalidArgument(fmt::format("preinit_runtimes: {} must be 0-8", runtime));
  }
  if (freeze_idle.count() < 0) return Status::InvalidArgument("freeze_idle_ms must be >= 0 (0: never)");
  if (max_environments < 0)
    return Status::InvalidArgument("max_environments must be >= 0 (0: derived from the host)");
  if (account_concurrency < 1) return Status::InvalidArgument("account_concurrency must be >= 1");
  if (scaling_rate < 1) return Status::InvalidArgument("scaling_rate must be >= 1");
  if (scaling_period.count() < 1) return Status::InvalidArgument("scaling_period_ms must be >= 1");
  if (memory_reserve_mb < 0) return Status::InvalidArgument("memory_reserve_mb must be >= 0");
  if (environment_memory_estimate_mb < 1)
    return Status::InvalidArgument("environment_memory_estimate_mb must be >= 1");
  if (admission_wait.count() < 0 || admission_wait.count() > 60000)
    return Status::InvalidArgument("admission_wait_ms must be 0-60000");
  if (isolation != "sandbox" && isolation != "process")
    return Status::InvalidArgument(
        fmt::format("unknown isolation '{}' (supported: sandbox, process)", isolation));
  if (network != "none" && network != "egress")
    return Status::InvalidArgument(fmt::format("unknown network '{}' (supported: none, egress)", network));
  if (account_id.size() != 12 || account_id.find_first_not_of("0123456789") != std::string::npos)
    return Status::InvalidArgument("account_id must be 12 digits");
  if (region.empty()) return Status::InvalidArgument("region must not be empty");
  return Status::Ok();
}

Status ParseListenAddress(const std::string& hostport, DaemonConfig* cfg) {
  auto colon = hostport.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == hostport.size())
    return Status::InvalidArgument(fmt::format("listen address '{}' is not HOST:PORT", hostport));
  std::string host = hostport.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  int port = 0;
  try {
    size_t used = 0;
    port = std::stoi(hostport.substr(colon + 1), &used);
    if (used != hostport.size() - colon - 1) throw std::invalid_argument("trailing");
  } catch (...) {
    return Status::InvalidArgument(fmt::format("listen address '{}' has a bad port", hostport));
  }
  if (port < 0 || port > 65535) return Status::InvalidArgument("listen port out of range");
  cfg->listen_host = host;
  cfg->listen_port = port;
  return Status::Ok();
}

Status LoadDaemonConfigFile(const std::string& path, DaemonConfig* cfg) {
  std::ifstream in(path);
  if (!in) return Status::NotFound(fmt::format("cannot read config file '{}'", path));
  std::stringstream ss;
  ss << in.rdbuf();
  boost::system::error_code ec;
  json::value v = json::parse(ss.str(), ec);
  if (ec || !v.is_object())
    return Status::InvalidArgument(fmt::format("config file '{}' is not a JSON object", path));
  for (const auto& [key, val] : v.as_object()) {
    auto want_string = [&](std::string* out) -> Status {
      if (!val.is_string()) return Status::InvalidArgument(fmt::format("config '{}' must be a string", std::string(key)));
      *out = std::string(val.as_string());
      return Status::Ok();
    };
    auto want_int = [&](auto* out) -> Status {
      if (!val.is_int64() && !val.is_uint64())
        return Status::InvalidArgument(fmt::format("config '{}' must be an integer", std::string(key)));
      *out = static_cast<std::remove_reference_t<decltype(*out)>>(val.to_number<int64_t>());
      return Status::Ok();
    };
    auto want_ms = [&](std::chrono::milliseconds* out) -> Status {
      int64_t ms = 0;
      HEARTH_RETURN_IF_ERROR(want_int(&ms));
      *out = std::chrono::milliseconds(ms);
      return Status::Ok();
    };
    Status st;
    if (key == "listen") {
      std::string hp;
      st = want_string(&hp);
      if (st.ok()) st = ParseListenAddress(hp, cfg);
    } else if (key == "data_dir") st = want_string(&cfg->data_dir);
    else if (key == "region") st = want_string(&cfg->region);
    else if (key == "account_id") st = want_string(&cfg->account_id);
    else if (key == "io_threads") st = want_int(&cfg->io_threads);
    else if (key == "worker_threads") st = want_int(&cfg->worker_threads);
    else if (key == "max_environments") st = want_int(&cfg->max_environments);
    else if (key == "account_concurrency") st = want_int(&cfg->account_concurrency);
    else if (key == "scaling_rate") st = want_int(&cfg->scaling_rate);
    else if (key == "scaling_period_ms") st = want_ms(&cfg->scaling_period);
    else if (key == "memory_reserve_mb") st = want_int(&cfg->memory_reserve_mb);
    else if (key == "environment_memory_estimate_mb") st = want_int(&cfg->environment_memory_estimate_mb);
    else if (key == "admission_wait_ms") st = want_ms(&cfg->admission_wait);
    else if (key == "idle_timeout_ms") st = want_ms(&cfg->idle_timeout);
    else if (key == "init_timeout_ms") st = want_ms(&cfg->init_timeout);
    else if (key == "shutdown_grace_ms") st = want_ms(&cfg->shutdown_grace);
    else if (key == "code_storage_limit_bytes") st = want_int(&cfg->code_storage_limit_bytes);
    else if (key == "isolation") st = want_string(&cfg->isolation);
    else if (key == "network") st = want_string(&cfg->network);
    else if (key == "log_level") st = want_string(&cfg->log_level);
    else if (key == "loop_spin_us") st = want_int(&cfg->loop_spin_us);
    else if (key == "blank_sandboxes") st = want_int(&cfg->blank_sandboxes);
    else if (key == "freeze_idle_ms") st = want_ms(&cfg->freeze_idle);
    else if (key == "preinit_runtimes") {
      // {"python3.11": 1, "nodejs20.x": 0}: replaces the default.
      if (!val.is_object()) {
        st = Status::InvalidArgument("config 'preinit_runtimes' must be an object of runtime: count");
      } else {
        cfg->preinit_runtimes.clear();
        for (const auto& [runtime, count] : val.as_object()) {
          if (!count.is_int64() && !count.is_uint64()) {
            st = Status::InvalidArgument(fmt::format("config 'preinit_runtimes': {} must be an integer", std::string(runtime)));
            break;
          }
          cfg->preinit_runtimes[std::string(runtime)] = static_cast<int>(count.to_number<int64_t>());
        }
      }
    }
    else if (key == "runtimes_dir") st = want_string(&cfg->runtimes_dir);
    else st = Status::InvalidArgument(fmt::format("unknown config key '{}' in '{}'", std::string(key), path));
    HEARTH_RETURN_IF_ERROR(st);
  }
  return Status::Ok();
}

}  // namespace hearth::config
