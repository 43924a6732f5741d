// The audit client's cookie jar, as a browser keeps one for one site (RFC 6265 5.3, reduced to
// what a single host needs: no Domain matching across hosts, no public suffixes). The audit
// talks to http://127.0.0.1, but Secure cookies are kept and sent: the app runs behind TLS in
// production, and browsers treat a loopback origin as secure.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace phoenix::audit {

struct Cookie {
  std::string name, value;
  std::string path = "/";
  int64_t expires = -1;  // unix seconds; -1: a session cookie
};

class CookieJar {
 public:
  // A Set-Cookie field from a response to `request_path`, received at `now` (unix seconds).
  void Store(std::string_view set_cookie, std::string_view request_path, int64_t now);
  // The Cookie field for a request to `path` ("" when none), longest paths first.
  std::string Header(std::string_view path, int64_t now) const;
  const std::vector<Cookie>& cookies() const { return cookies_; }
  void Clear() { cookies_.clear(); }

 private:
  std::vector<Cookie> cookies_;
};

// RFC 6265 5.1.4: does `path` match the cookie path?
bool PathMatches(std::string_view request_path, std::string_view cookie_path);
// An HTTP date (RFC 1123, RFC 850, asctime; as RFC 6265 5.1.1 parses) to unix seconds, or -1.
int64_t ParseCookieDate(std::string_view date);

}  // namespace phoenix::audit
