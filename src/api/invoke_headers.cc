#include "api/invoke_headers.h"

#include <fmt/format.h>

#include <boost/json.hpp>

#include "common/encoding.h"

namespace hearth::api {

namespace json = boost::json;

Status CheckInvocationType(std::string_view type, bool event_allowed) {
  if (type.empty() || type == "RequestResponse" || type == "DryRun") return Status::Ok();
  if (event_allowed && type == "Event") return Status::Ok();
  return Status::Validation(fmt::format(
      "1 validation error detected: Value '{}' at 'invocationType' failed to satisfy constraint: "
      "Member must satisfy enum value set: [{}RequestResponse, DryRun]",
      type, event_allowed ? "Event, " : ""));
}

Status CheckLogType(std::string_view log_type) {
  if (log_type.empty() || log_type == "None" || log_type == "Tail") return Status::Ok();
  return Status::Validation(fmt::format(
      "1 validation error detected: Value '{}' at 'logType' failed to satisfy constraint: Member "
      "must satisfy enum value set: [None, Tail]",
      log_type));
}

Result<std::string> DecodeClientContext(std::string_view header) {
  if (header.empty()) return std::string();
  const Status invalid =
      Status::InvalidContent("Client context must be a valid Base64-encoded JSON object.");
  if (header.size() > kClientContextLimit) return std::unexpected(invalid);
  auto decoded = Base64Decode(header);
  if (!decoded) return std::unexpected(invalid);
  boost::system::error_code ec;
  json::value v = json::parse(*decoded, ec);
  if (ec || !v.is_object()) return std::unexpected(invalid);
  return std::move(*decoded);
}

Status ValidateJsonPayload(std::string_view payload) {
  boost::system::error_code ec;
  // Small payloads (most) are parsed without touching the heap.
  unsigned char scratch[4096];
  json::monotonic_resource mr(scratch, sizeof scratch);
  json::parse(payload, ec, &mr);
  if (ec) {
    return Status::InvalidContent(
        "Could not parse request body into json: Could not parse payload into json: " +
        ec.message());
  }
  return Status::Ok();
}

}  // namespace hearth::api
