#include "audit/compare.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <functional>

namespace phoenix::audit {
namespace json = boost::json;

namespace {

constexpr size_t kMaxTokens = 200000;

void JsonLeaves(const json::value& v, std::string& path, std::vector<std::string>& out) {
  if (out.size() >= kMaxTokens) return;
  switch (v.kind()) {
    case json::kind::object: {
      if (v.get_object().empty()) out.push_back(path + "={}");
      for (const auto& kv : v.get_object()) {
        size_t keep = path.size();
        path += '.';
        path.append(kv.key().data(), kv.key().size());
        JsonLeaves(kv.value(), path, out);
        path.resize(keep);
      }
      break;
    }
    case json::kind::array: {
      if (v.get_array().empty()) out.push_back(path + "=[]");
      size_t i = 0;
      for (const auto& item : v.get_array()) {
        size_t keep = path.size();
        path += '[';
        path += std::to_string(i++);
        path += ']';
        JsonLeaves(item, path, out);
        path.resize(keep);
      }
      break;
    }
    default:
      out.push_back(path + "=" + json::serialize(v));
  }
}

// The length of a base64 (or base64url) token at the start of `text` (a CSRF token, a signed
// id: "3R+78nRat8TUmwNSED0ywIgPtzjWfy0uXQsCes1p7Ak="), or 0. Split at its + / = - like words,
// two random tokens of one length would differ in the number of their pieces, and no longer
// look generated. Only runs of 20 characters or more that read as random: upper and lower case
// and digits, changing class at least every third character (random base64 does about two
// times in three); "Products/Details/1234" or "getUserProfileById" stay words.
size_t Base64Run(std::string_view text) {
  if (text.empty() || !std::isalnum(static_cast<unsigned char>(text[0]))) return 0;
  auto kind = [](unsigned char c) { return std::isupper(c) ? 1 : std::islower(c) ? 2 : 3; };
  size_t n = 0, upper = 0, lower = 0, digits = 0, splitters = 0, alnum = 0, changes = 0;
  int previous = 0;
  while (n < text.size()) {
    unsigned char c = static_cast<unsigned char>(text[n]);
    if (std::isalnum(c)) {
      int k = kind(c);
      upper += k == 1;
      lower += k == 2;
      digits += k == 3;
      changes += previous != 0 && previous != k;
      previous = k;
      ++alnum;
    } else if (c == '+' || c == '/' || c == '-') {
      ++splitters;
      previous = 0;
    } else if (c != '_') {
      break;
    }
    ++n;
  }
  for (int pad = 0; pad < 2 && n < text.size() && text[n] == '='; ++pad, ++n) ++splitters;
  if (n < 20 || !upper || !lower || !digits || !splitters || changes * 3 < alnum) return 0;
  return n;
}

}  // namespace

std::vector<std::string> Tokenize(std::string_view body, std::string_view content_type) {
  std::vector<std::string> out;
  bool is_json = content_type.find("json") != std::string_view::npos;
  if (is_json) {
    boost::system::error_code ec;
    json::value v = json::parse(body, ec);
    if (!ec) {
      std::string path;
      JsonLeaves(v, path, out);
      return out;
    }
  }
  std::vector<std::string> raw;
  size_t i = 0;
  while (i < body.size() && raw.size() < kMaxTokens) {
    unsigned char c = static_cast<unsigned char>(body[i]);
    if (std::isspace(c)) {
      ++i;
    } else if (size_t n = Base64Run(body.substr(i)); n > 0) {
      raw.emplace_back(body.substr(i, n));
      i += n;
    } else if (std::isalnum(c) || c == '_' || c >= 0x80) {
      size_t start = i;
      while (i < body.size()) {
        unsigned char d = static_cast<unsigned char>(body[i]);
        if (!(std::isalnum(d) || d == '_' || d >= 0x80)) break;
        ++i;
      }
      raw.emplace_back(body.substr(start, i - start));
    } else {
      raw.emplace_back(1, static_cast<char>(c));
      ++i;
    }
  }
  // Clock times and dates in a page change with the minute, not with the instance: one token.
  auto digits = [&](size_t k, size_t lo, size_t hi) {
    if (k >= raw.size() || raw[k].size() < lo || raw[k].size() > hi) return false;
    return std::all_of(raw[k].begin(), raw[k].end(),
                       [](char ch) { return std::isdigit(static_cast<unsigned char>(ch)); });
  };
  auto is = [&](size_t k, const char* text) { return k < raw.size() && raw[k] == text; };
  for (size_t k = 0; k < raw.size();) {
    if (digits(k, 4, 4) && is(k + 1, "-") && digits(k + 2, 1, 2) && is(k + 3, "-") &&
        k + 4 < raw.size() && raw[k + 4].size() >= 1 &&
        std::isdigit(static_cast<unsigned char>(raw[k + 4][0]))) {
      out.emplace_back("<date>");
      k += 5;
      continue;
    }
    if (digits(k, 1, 2) && is(k + 1, ":") && digits(k + 2, 2, 2)) {
      k += 3;
      if (is(k, ":") && digits(k + 1, 2, 2)) k += 2;
      out.emplace_back("<time>");
      continue;
    }
    out.push_back(std::move(raw[k]));
    ++k;
  }
  return out;
}

std::vector<Edit> Diff(const std::vector<std::string>& a, const std::vector<std::string>& b,
                       size_t max_edits) {
  // Common prefix and suffix first: most answers differ in a few places.
  size_t pre = 0;
  while (pre < a.size() && pre < b.size() && a[pre] == b[pre]) ++pre;
  size_t suf = 0;
  while (suf < a.size() - pre && suf < b.size() - pre &&
         a[a.size() - 1 - suf] == b[b.size() - 1 - suf])
    ++suf;
  const long n = static_cast<long>(a.size() - pre - suf);
  const long m = static_cast<long>(b.size() - pre - suf);
  if (n == 0 && m == 0) return {};
  if (n == 0 || m == 0) {
    return {Edit{pre, pre + static_cast<size_t>(n), pre, pre + static_cast<size_t>(m)}};
  }
  std::hash<std::string> hasher;
  std::vector<size_t> ha(static_cast<size_t>(n)), hb(static_cast<size_t>(m));
  for (long i = 0; i < n; ++i) ha[static_cast<size_t>(i)] = hasher(a[pre + static_cast<size_t>(i)]);
  for (long j = 0; j < m; ++j) hb[static_cast<size_t>(j)] = hasher(b[pre + static_cast<size_t>(j)]);
  auto eq = [&](long i, long j) {
    return ha[static_cast<size_t>(i)] == hb[static_cast<size_t>(j)] &&
           a[pre + static_cast<size_t>(i)] == b[pre + static_cast<size_t>(j)];
  };
  const long max_d = std::min<long>(n + m, static_cast<long>(max_edits));
  const long offset = max_d + 1;
  std::vector<long> v(static_cast<size_t>(2 * max_d + 3), 0);
  std::vector<std::vector<long>> trace;
  long found_d = -1;
  for (long d = 0; d <= max_d && found_d < 0; ++d) {
    trace.push_back(v);
    for (long k = -d; k <= d; k += 2) {
      long x;
      if (k == -d || (k != d && v[static_cast<size_t>(offset + k - 1)] <
                                    v[static_cast<size_t>(offset + k + 1)]))
        x = v[static_cast<size_t>(offset + k + 1)];
      else
        x = v[static_cast<size_t>(offset + k - 1)] + 1;
      long y = x - k;
      while (x < n && y < m && eq(x, y)) ++x, ++y;
      v[static_cast<size_t>(offset + k)] = x;
      if (x >= n && y >= m) {
        found_d = d;
        break;
      }
    }
  }
  if (found_d < 0) {
    // Too different to align within the bound: one edit over the whole middle.
    return {Edit{pre, pre + static_cast<size_t>(n), pre, pre + static_cast<size_t>(m)}};
  }
  // Walk back through the trace: single-token deletions and insertions, then merged.
  std::vector<std::pair<long, long>> dels, ins;  // positions in a, in b
  long x = n, y = m;
  for (long d = found_d; d > 0; --d) {
    const auto& pv = trace[static_cast<size_t>(d)];
    long k = x - y;
    long prev_k;
    if (k == -d || (k != d && pv[static_cast<size_t>(offset + k - 1)] <
                                  pv[static_cast<size_t>(offset + k + 1)]))
      prev_k = k + 1;
    else
      prev_k = k - 1;
    long prev_x = pv[static_cast<size_t>(offset + prev_k)];
    long prev_y = prev_x - prev_k;
    while (x > prev_x && y > prev_y) --x, --y;
    if (x == prev_x) {
      ins.emplace_back(x, prev_y);  // b[prev_y] inserted before a[x]
    } else {
      dels.emplace_back(prev_x, y);  // a[prev_x] deleted
    }
    x = prev_x;
    y = prev_y;
  }
  // Merge into ranges, in order.
  struct Op {
    long a, b;
    bool del;
  };
  std::vector<Op> ops;
  for (auto& [ai, bi] : dels) ops.push_back({ai, bi, true});
  for (auto& [ai, bi] : ins) ops.push_back({ai, bi, false});
  std::sort(ops.begin(), ops.end(),
            [](const Op& p, const Op& q) { return p.a != q.a ? p.a < q.a : p.b < q.b; });
  std::vector<Edit> edits;
  for (const Op& op : ops) {
    size_t a0 = pre + static_cast<size_t>(op.a), b0 = pre + static_cast<size_t>(op.b);
    size_t a1 = op.del ? a0 + 1 : a0, b1 = op.del ? b0 : b0 + 1;
    if (!edits.empty() && edits.back().a_end >= a0 && edits.back().b_end >= b0) {
      edits.back().a_end = std::max(edits.back().a_end, a1);
      edits.back().b_end = std::max(edits.back().b_end, b1);
    } else {
      edits.push_back(Edit{a0, a1, b0, b1});
    }
  }
  return edits;
}

Variance::Variance(const std::vector<std::string>& a, const std::vector<std::string>& b)
    : varies_(a.size(), false), gap_varies_(a.size() + 1, false) {
  Learn(a, b);
}

void Variance::Learn(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  for (const Edit& e : Diff(a, b)) {
    for (size_t i = e.a_begin; i < e.a_end; ++i) varies_[i] = true;
    for (size_t i = e.a_begin; i <= e.a_end && i < gap_varies_.size(); ++i) gap_varies_[i] = true;
  }
}

bool Variance::Covers(const Edit& e) const {
  if (varies_.empty() && gap_varies_.empty()) return false;
  if (e.a_begin == e.a_end) {
    if (e.a_begin < gap_varies_.size() && gap_varies_[e.a_begin]) return true;
    return false;
  }
  for (size_t i = e.a_begin; i < e.a_end; ++i) {
    if (i >= varies_.size() || !varies_[i]) return false;
  }
  return true;
}

bool LooksGenerated(std::string_view t) {
  // JSON leaves: judge the value.
  if (size_t eq = t.find('='); eq != std::string_view::npos && !t.empty() && t.front() == '.') {
    t = t.substr(eq + 1);
    if (t.size() >= 2 && t.front() == '"' && t.back() == '"') t = t.substr(1, t.size() - 2);
  }
  if (t.size() < 8) return false;
  size_t digits = 0, hex = 0, upper = 0, lower = 0, other = 0;
  for (unsigned char c : t) {
    if (std::isdigit(c)) ++digits;
    if (std::isxdigit(c)) ++hex;
    if (std::isupper(c)) ++upper;
    if (std::islower(c)) ++lower;
    if (!std::isalnum(c) && c != '-' && c != '_' && c != '+' && c != '/' && c != '=' && c != '.' &&
        c != ':')
      ++other;
  }
  if (other) return false;
  if (digits == t.size() && t.size() >= 9) return true;  // timestamps, big ids
  if (hex == t.size() - std::count(t.begin(), t.end(), '-') && t.size() >= 12 && digits > 0)
    return true;
  if (t.size() >= 16 && digits > 0 && (upper > 0 || lower > 0)) return true;  // base64, tokens
  return false;
}

BodyDiff CompareBodies(const std::vector<std::string>& baseline, const Variance& variance,
                       const std::vector<std::string>& observed) {
  BodyDiff out;
  for (const Edit& e : Diff(baseline, observed)) {
    if (variance.Covers(e)) continue;
    bool generated = e.a_end - e.a_begin == e.b_end - e.b_begin && e.a_end > e.a_begin;
    for (size_t i = 0; generated && i < e.a_end - e.a_begin; ++i) {
      generated =
          LooksGenerated(baseline[e.a_begin + i]) && LooksGenerated(observed[e.b_begin + i]);
    }
    if (generated) continue;
    out.same = false;
    auto excerpt = [](const std::vector<std::string>& t, size_t begin, size_t end) {
      size_t from = begin >= 4 ? begin - 4 : 0;
      size_t to = std::min(t.size(), end + 4);
      std::string s;
      for (size_t i = from; i < to && s.size() < 160; ++i) {
        if (!s.empty()) s += ' ';
        s += t[i];
      }
      return s;
    };
    out.baseline_excerpt = excerpt(baseline, e.a_begin, e.a_end);
    out.observed_excerpt = excerpt(observed, e.b_begin, e.b_end);
    break;
  }
  return out;
}

}  // namespace phoenix::audit
