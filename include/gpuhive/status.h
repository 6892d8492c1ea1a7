// Status and StatusOr<T>: the error model at every module boundary (no exceptions cross them).
// A Status is cheap to copy when OK (no allocation). Thread-compatible value types.
#pragma once

#include <fmt/format.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace gpuhive {

enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument,     // the caller's input is wrong (HTTP 400)
  kNotFound,            // no such model / file / tensor (404)
  kAlreadyExists,
  kFailedPrecondition,  // the object is not in a state that allows the call (e.g. model not ready)
  kUnimplemented,       // an operator, dtype or feature we do not support
  kResourceExhausted,   // out of memory / budget / queue space (429 or 503 depending on context)
  kUnavailable,         // retryable: device lost, model cannot be made resident now (503)
  kDeadlineExceeded,    // request deadline passed (504)
  kCancelled,
  kDataLoss,            // corrupt or truncated file
  kInternal,            // a bug or an unexpected library failure
};

std::string_view StatusCodeName(StatusCode code);

// Why memory ran short, carried by kResourceExhausted / kUnavailable statuses so that callers decide
// whether waiting can help by type, not by matching message text.
enum class MemoryShortage : uint8_t {
  kNone = 0,
  kContended,   // other models or batches hold the bytes: may pass once they release them
  kNeverFits,   // more than the whole budget: only a larger budget helps
  kOverLimit,   // more than the model's own memory_limit
};

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message);

  static Status OK() { return Status(); }

  bool ok() const { return rep_ == nullptr; }
  StatusCode code() const { return rep_ ? rep_->code : StatusCode::kOk; }
  const std::string& message() const;
  // "InvalidArgument: message" or "OK".
  std::string ToString() const;

  // Returns a copy whose message is "prefix: message" (the shortage is kept); OK stays OK.
  Status WithContext(std::string_view prefix) const;

  MemoryShortage shortage() const { return rep_ ? rep_->shortage : MemoryShortage::kNone; }
  // A copy that says why memory ran short; OK stays OK.
  Status WithShortage(MemoryShortage shortage) const;

  friend bool operator==(const Status& a, const Status& b) {
    return a.code() == b.code() && a.message() == b.message();
  }

 private:
  struct Rep {
    StatusCode code;
    std::string message;
    MemoryShortage shortage = MemoryShortage::kNone;
  };
  std::shared_ptr<const Rep> rep_;
};

// Formatting constructors: InvalidArgument("bad dim {} for {}", d, name).
#define GPUHIVE_DEFINE_STATUS_FACTORY(Name)                                        \
  template <typename... Args>                                                      \
  Status Name(fmt::format_string<Args...> f, Args&&... args) {                    \
    return Status(StatusCode::k##Name, fmt::format(f, std::forward<Args>(args)...)); \
  }
GPUHIVE_DEFINE_STATUS_FACTORY(InvalidArgument)
GPUHIVE_DEFINE_STATUS_FACTORY(NotFound)
GPUHIVE_DEFINE_STATUS_FACTORY(AlreadyExists)
GPUHIVE_DEFINE_STATUS_FACTORY(FailedPrecondition)
GPUHIVE_DEFINE_STATUS_FACTORY(Unimplemented)
GPUHIVE_DEFINE_STATUS_FACTORY(ResourceExhausted)
GPUHIVE_DEFINE_STATUS_FACTORY(Unavailable)
GPUHIVE_DEFINE_STATUS_FACTORY(DeadlineExceeded)
GPUHIVE_DEFINE_STATUS_FACTORY(Cancelled)
GPUHIVE_DEFINE_STATUS_FACTORY(DataLoss)
GPUHIVE_DEFINE_STATUS_FACTORY(Internal)
#undef GPUHIVE_DEFINE_STATUS_FACTORY

template <typename T>
class [[nodiscard]] StatusOr {
 public:
  // An error status; constructing from an OK status is a bug and becomes kInternal.
  StatusOr(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    if (status_.ok()) status_ = Status(StatusCode::kInternal, "StatusOr constructed from OK status");
  }
  StatusOr(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  template <typename U, typename = std::enable_if_t<std::is_convertible_v<U&&, T> &&
                                                    !std::is_same_v<std::decay_t<U>, Status> &&
                                                    !std::is_same_v<std::decay_t<U>, T>>>
  StatusOr(U&& value) : value_(T(std::forward<U>(value))) {}  // NOLINT

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }

  // Precondition: ok(). Accessing the value of an error is a programming error.
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }
  T&& operator*() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

namespace detail {
inline Status ToStatus(const Status& s) { return s; }
template <typename T>
inline Status ToStatus(const StatusOr<T>& s) { return s.status(); }
}  // namespace detail

}  // namespace gpuhive

#define GPUHIVE_CONCAT_INNER(a, b) a##b
#define GPUHIVE_CONCAT(a, b) GPUHIVE_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)                                          \
  do {                                                                 \
    ::gpuhive::Status _gh_status = ::gpuhive::detail::ToStatus(expr);  \
    if (!_gh_status.ok()) return _gh_status;                           \
  } while (0)

#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(tmp).value()

// ASSIGN_OR_RETURN(auto x, MakeX()); or ASSIGN_OR_RETURN(existing, MakeX());
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(GPUHIVE_CONCAT(_gh_statusor_, __LINE__), lhs, expr)
