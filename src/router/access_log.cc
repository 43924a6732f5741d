#include "router/access_log.h"

#include <fmt/format.h>

namespace phoenix::router {
namespace {

// Quoted, with quotes, backslashes and control bytes escaped: a request's path is the
// client's bytes and must not forge a second log line or field.
void AppendQuoted(std::string_view s, std::string& out, size_t max = 512) {
  out += '"';
  for (size_t i = 0; i < s.size() && i < max; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > max) out += "...";
  out += '"';
}

// A bare token (method, host, id): anything outside printable ASCII or a space becomes '?'.
void AppendToken(std::string_view s, std::string& out) {
  if (s.empty()) {
    out += '-';
    return;
  }
  for (size_t i = 0; i < s.size() && i < 256; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    out += (c > 0x20 && c < 0x7f && c != '"') ? static_cast<char>(c) : '?';
  }
}

}  // namespace

void AppendAccessLine(const AccessEntry& e, std::string& out) {
  if (e.code) {
    out += "at=error code=";
    out += e.code;
    out += " desc=";
    AppendQuoted(e.desc ? e.desc : "", out);
    out += ' ';
  } else {
    out += "at=info ";
  }
  out += "method=";
  AppendToken(e.method, out);
  out += " path=";
  AppendQuoted(e.path, out);
  out += " host=";
  AppendToken(e.host, out);
  out += " request_id=";
  AppendToken(e.request_id, out);
  out += " fwd=";
  AppendQuoted(e.client_ip, out);
  out += " dyno=";
  AppendToken(e.instance, out);
  fmt::format_to(std::back_inserter(out),
                 " connect={}ms service={}ms status={} bytes={} protocol={}\n", e.connect_ms,
                 e.service_ms, e.status, e.bytes, e.protocol);
}

}  // namespace phoenix::router
