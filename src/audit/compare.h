// Is an answer the same as the baseline's? Status and Location must match; the body is compared
// by its shape: a sequence of tokens (words and punctuation of a text or HTML body; path=value
// leaves of a JSON body), aligned with a diff (Myers), ignoring the places where the two
// baseline runs already differed by themselves (dates, ids, tokens, counters of the run).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace phoenix::audit {

std::vector<std::string> Tokenize(std::string_view body, std::string_view content_type);

// One edit of a diff from `a` to `b`: a[a_begin, a_end) replaced by b[b_begin, b_end).
struct Edit {
  size_t a_begin, a_end, b_begin, b_end;
};
// Myers' diff; `max_edits` bounds the work (then one edit covers the rest: "all differs").
std::vector<Edit> Diff(const std::vector<std::string>& a, const std::vector<std::string>& b,
                       size_t max_edits = 2000);

// What the two baseline runs taught: where in baseline A's tokens the answer varies.
class Variance {
 public:
  Variance() = default;
  Variance(const std::vector<std::string>& a, const std::vector<std::string>& b);
  // What one more run of the baseline (`other`) shows of A's parts that vary.
  void Learn(const std::vector<std::string>& a, const std::vector<std::string>& other);
  // Does an edit of A (from a diff A -> observed) fall where A varies by itself?
  bool Covers(const Edit& e) const;
  bool status_varies = false;
  bool location_varies = false;

 private:
  std::vector<bool> varies_;      // per token of A
  std::vector<bool> gap_varies_;  // per gap before token i (size n+1): an insertion there
};

struct BodyDiff {
  bool same = true;
  std::string baseline_excerpt;  // around the first difference
  std::string observed_excerpt;
};
BodyDiff CompareBodies(const std::vector<std::string>& baseline, const Variance& variance,
                       const std::vector<std::string>& observed);

// A token that looks generated (a hex or base64 id, a UUID, a long number): two such tokens
// differ by nature, wherever they stand.
bool LooksGenerated(std::string_view token);

}  // namespace phoenix::audit
