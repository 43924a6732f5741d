// Result<T>: a value or an Error with a human message. phoenix's components return these
// instead of throwing across their boundaries (STYLE.md: no exceptions cross a component).
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace phoenix {

struct Error {
  std::string message;
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Status: a Result that carries no value.
struct Ok {};
using Status = Result<Ok>;
inline Status OkStatus() { return Ok{}; }

}  // namespace phoenix

#define PHX_CONCAT_INNER(a, b) a##b
#define PHX_CONCAT(a, b) PHX_CONCAT_INNER(a, b)

// RETURN_IF_ERROR(expr): propagate the error of a Status/Result expression.
#define RETURN_IF_ERROR(expr)                                            \
  do {                                                                   \
    auto&& phx_status_ = (expr);                                         \
    if (!phx_status_.ok()) return ::phoenix::Error(phx_status_.error()); \
  } while (0)

// ASSIGN_OR_RETURN(lhs, expr): unwrap a Result or propagate its error.
#define ASSIGN_OR_RETURN(lhs, expr) \
  PHX_ASSIGN_OR_RETURN_IMPL(PHX_CONCAT(phx_result_, __COUNTER__), lhs, expr)
#define PHX_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr)      \
  auto tmp = (expr);                                   \
  if (!tmp.ok()) return ::phoenix::Error(tmp.error()); \
  lhs = std::move(tmp).value()
