#include "control/protocol.h"

#include <fmt/format.h>

#include <boost/json.hpp>

namespace phoenix::control {
namespace json = boost::json;

namespace {

constexpr size_t kMaxRequest = 64 * 1024;

const char* Name(Command c) {
  switch (c) {
    case Command::kPs:
      return "ps";
    case Command::kScale:
      return "scale";
    case Command::kKill:
      return "kill";
    case Command::kLogs:
      return "logs";
    case Command::kStop:
      return "stop";
    case Command::kRotate:
      return "rotate";
    case Command::kDrill:
      return "drill";
    case Command::kScan:
      return "scan";
  }
  return "?";
}

}  // namespace

Result<Request> ParseRequest(std::string_view line) {
  if (line.size() > kMaxRequest) return Error{"request too long"};
  boost::system::error_code ec;
  json::value v = json::parse(line, ec);
  if (ec || !v.is_object()) return Error{"bad request: expected a JSON object"};
  const json::object& o = v.as_object();
  const json::value* cmd = o.if_contains("cmd");
  if (!cmd || !cmd->is_string()) return Error{"bad request: expected \"cmd\""};
  Request r;
  std::string_view name = cmd->as_string();
  bool found = false;
  for (Command c : {Command::kPs, Command::kScale, Command::kKill, Command::kLogs, Command::kStop,
                    Command::kRotate, Command::kDrill, Command::kScan}) {
    if (name == Name(c)) {
      r.command = c;
      found = true;
    }
  }
  if (!found) return Error{fmt::format("unknown command '{}'", std::string(name))};
  auto str = [&](const char* key) -> Result<std::string> {
    const json::value* p = o.if_contains(key);
    if (!p) return std::string();
    if (!p->is_string())
      return Error{fmt::format("{}: \"{}\" must be a string", Name(r.command), key)};
    return std::string(p->as_string());
  };
  auto flag = [&](const char* key) -> Result<bool> {
    const json::value* p = o.if_contains(key);
    if (!p) return false;
    if (!p->is_bool())
      return Error{fmt::format("{}: \"{}\" must be true or false", Name(r.command), key)};
    return p->as_bool();
  };
  switch (r.command) {
    case Command::kKill: {
      ASSIGN_OR_RETURN(r.instance, str("instance"));
      ASSIGN_OR_RETURN(r.now, flag("now"));
      if (r.instance.empty()) return Error{"kill: which instance? (e.g. web.2)"};
      break;
    }
    case Command::kLogs: {
      ASSIGN_OR_RETURN(r.instance, str("instance"));
      ASSIGN_OR_RETURN(r.follow, flag("follow"));
      break;
    }
    case Command::kScan: {
      ASSIGN_OR_RETURN(r.instance, str("instance"));
      break;
    }
    case Command::kScale: {
      const json::value* counts = o.if_contains("counts");
      if (!counts || !counts->is_object() || counts->as_object().empty()) {
        return Error{"scale: expected counts such as web=3"};
      }
      for (const auto& [type, n] : counts->as_object()) {
        if (!n.is_int64() || n.as_int64() < 0 || n.as_int64() > 1000) {
          return Error{
              fmt::format("scale: {}: expected a count from 0 to 1000", std::string(type))};
        }
        r.counts[std::string(type)] = static_cast<int>(n.as_int64());
      }
      break;
    }
    case Command::kRotate: {
      ASSIGN_OR_RETURN(r.type, str("type"));
      break;
    }
    case Command::kDrill: {
      ASSIGN_OR_RETURN(r.type, str("type"));
      if (const json::value* f = o.if_contains("fraction")) {
        if (!f->is_number()) return Error{"drill: \"fraction\" must be a number"};
        r.fraction = f->to_number<double>();
      }
      if (!(r.fraction > 0.0 && r.fraction <= 1.0)) {
        return Error{"drill: fraction must be more than 0 and at most 1"};
      }
      break;
    }
    case Command::kPs:
    case Command::kStop:
      break;
  }
  return r;
}

std::string EncodeRequest(const Request& r) {
  json::object o{{"cmd", Name(r.command)}};
  switch (r.command) {
    case Command::kKill:
      o["instance"] = r.instance;
      o["now"] = r.now;
      break;
    case Command::kLogs:
      o["instance"] = r.instance;
      o["follow"] = r.follow;
      break;
    case Command::kScan:
      o["instance"] = r.instance;
      break;
    case Command::kScale: {
      json::object c;
      for (const auto& [type, n] : r.counts) c[type] = n;
      o["counts"] = std::move(c);
      break;
    }
    case Command::kRotate:
      o["type"] = r.type;
      break;
    case Command::kDrill:
      o["type"] = r.type;
      o["fraction"] = r.fraction;
      break;
    case Command::kPs:
    case Command::kStop:
      break;
  }
  return json::serialize(o);
}

std::string OkAnswer() { return R"({"ok":true})"; }

std::string OkAnswer(const std::string& message) {
  return json::serialize(json::object{{"ok", true}, {"message", message}});
}

std::string ErrorAnswer(const std::string& why, bool usage) {
  json::object o{{"ok", false}, {"error", why}};
  if (usage) o["usage"] = true;
  return json::serialize(o);
}

}  // namespace phoenix::control
