#include "audit/cookies.h"

#include <algorithm>
#include <cctype>
#include <ctime>

#include "base/text.h"

namespace phoenix::audit {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// RFC 6265 5.1.4 default-path: the request path up to its last "/".
std::string DefaultPath(std::string_view request_path) {
  request_path = request_path.substr(0, request_path.find('?'));
  if (request_path.empty() || request_path.front() != '/') return "/";
  size_t last = request_path.rfind('/');
  if (last == 0) return "/";
  return std::string(request_path.substr(0, last));
}

}  // namespace

bool PathMatches(std::string_view request_path, std::string_view cookie_path) {
  request_path = request_path.substr(0, request_path.find('?'));
  if (request_path == cookie_path) return true;
  if (request_path.size() > cookie_path.size() &&
      request_path.substr(0, cookie_path.size()) == cookie_path) {
    return cookie_path.back() == '/' || request_path[cookie_path.size()] == '/';
  }
  return false;
}

int64_t ParseCookieDate(std::string_view date) {
  // Tokens separated by delimiters; find time, day, month, year in any order (RFC 6265 5.1.1).
  int hour = -1, minute = -1, second = -1, day = -1, month = -1, year = -1;
  static const char* kMonths[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                  "jul", "aug", "sep", "oct", "nov", "dec"};
  size_t i = 0;
  auto delimiter = [](char c) {
    return c == '\t' || (c >= 0x20 && c <= 0x2f) || (c >= 0x3b && c <= 0x40) ||
           (c >= 0x5b && c <= 0x60) || (c >= 0x7b && c <= 0x7e);
  };
  while (i < date.size()) {
    while (i < date.size() && delimiter(date[i])) ++i;
    size_t start = i;
    while (i < date.size() && !delimiter(date[i])) ++i;
    std::string_view tok = date.substr(start, i - start);
    if (tok.empty()) continue;
    int h, m, s;
    if (hour < 0 && std::sscanf(std::string(tok).c_str(), "%d:%d:%d", &h, &m, &s) == 3) {
      hour = h, minute = m, second = s;
      continue;
    }
    if (std::isdigit(static_cast<unsigned char>(tok[0]))) {
      int v = 0;
      size_t digits = 0;
      while (digits < tok.size() && std::isdigit(static_cast<unsigned char>(tok[digits])) &&
             digits < 4) {
        v = v * 10 + (tok[digits] - '0');
        ++digits;
      }
      if (day < 0 && digits <= 2) {
        day = v;
        continue;
      }
      if (year < 0 && digits >= 2) {
        year = v;
        continue;
      }
    }
    if (month < 0 && tok.size() >= 3) {
      for (int k = 0; k < 12; ++k) {
        if (IEquals(tok.substr(0, 3), kMonths[k])) month = k;
      }
    }
  }
  if (year >= 70 && year <= 99) year += 1900;
  if (year >= 0 && year <= 69) year += 2000;
  if (hour < 0 || day < 1 || day > 31 || month < 0 || year < 1601 || hour > 23 || minute > 59 ||
      second > 59)
    return -1;
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  return static_cast<int64_t>(timegm(&tm));
}

void CookieJar::Store(std::string_view set_cookie, std::string_view request_path, int64_t now) {
  size_t semi = set_cookie.find(';');
  std::string_view pair = Trim(set_cookie.substr(0, semi));
  size_t eq = pair.find('=');
  if (eq == std::string_view::npos) return;  // RFC 6265 5.2 step 2: ignore
  Cookie c;
  c.name = std::string(Trim(pair.substr(0, eq)));
  c.value = std::string(Trim(pair.substr(eq + 1)));
  if (c.name.empty()) return;
  c.path = DefaultPath(request_path);
  bool max_age_seen = false;
  std::string_view rest = semi == std::string_view::npos ? "" : set_cookie.substr(semi + 1);
  while (!rest.empty()) {
    size_t next = rest.find(';');
    std::string_view attr = Trim(rest.substr(0, next));
    rest = next == std::string_view::npos ? "" : rest.substr(next + 1);
    size_t aeq = attr.find('=');
    std::string_view key = Trim(attr.substr(0, aeq));
    std::string_view val = aeq == std::string_view::npos ? "" : Trim(attr.substr(aeq + 1));
    if (IEquals(key, "max-age")) {
      // Max-Age wins over Expires (RFC 6265 5.3 step 3).
      bool neg = !val.empty() && val.front() == '-';
      std::string_view digits = neg ? val.substr(1) : val;
      if (digits.empty() || !std::all_of(digits.begin(), digits.end(), ::isdigit)) continue;
      int64_t secs = digits.size() > 12 ? INT64_C(999999999999) : std::stoll(std::string(digits));
      c.expires = neg || secs == 0 ? 0 : now + secs;
      max_age_seen = true;
    } else if (IEquals(key, "expires") && !max_age_seen) {
      int64_t t = ParseCookieDate(val);
      if (t >= 0) c.expires = t;
    } else if (IEquals(key, "path")) {
      if (!val.empty() && val.front() == '/') c.path = std::string(val);
    }
  }
  auto same = [&](const Cookie& o) { return o.name == c.name && o.path == c.path; };
  auto old = std::find_if(cookies_.begin(), cookies_.end(), same);
  if (c.expires >= 0 && c.expires <= now) {  // an expired cookie deletes the old one
    if (old != cookies_.end()) cookies_.erase(old);
    return;
  }
  // A replaced cookie keeps its creation order (RFC 6265 5.3 step 11.3), which orders the
  // Cookie field among cookies of equal path length.
  if (old != cookies_.end()) {
    *old = std::move(c);
  } else {
    cookies_.push_back(std::move(c));
  }
}

std::string CookieJar::Header(std::string_view path, int64_t now) const {
  std::vector<const Cookie*> sending;
  for (const auto& c : cookies_) {
    if (c.expires >= 0 && c.expires <= now) continue;
    if (PathMatches(path, c.path)) sending.push_back(&c);
  }
  std::stable_sort(sending.begin(), sending.end(), [](const Cookie* a, const Cookie* b) {
    return a->path.size() > b->path.size();
  });
  std::string out;
  for (const Cookie* c : sending) {
    if (!out.empty()) out += "; ";
    out += c->name;
    out += '=';
    out += c->value;
  }
  return out;
}

}  // namespace phoenix::audit
