// A value or the reason there is none: errors travel as values (C++20 has no std::expected).
#pragma once

#include <string>
#include <utility>
#include <optional>

namespace zen {

struct Error {
    std::string message;
};

// The value of a Result that carries nothing but success.
struct Ok {};

template <class T>
class [[nodiscard]] Result {
public:
    Result(T value) : value_(std::move(value)) {}
    Result(Error error) : error_(std::move(error.message)) {}

    bool ok() const { return value_.has_value(); }
    explicit operator bool() const { return ok(); }

    T& value() & { return *value_; }
    const T& value() const& { return *value_; }
    T&& value() && { return *std::move(value_); }
    T* operator->() { return &*value_; }
    const T* operator->() const { return &*value_; }
    T& operator*() & { return *value_; }

    const std::string& error() const { return error_; }

private:
    // Two members rather than a std::variant: g++ 12 misreports variant<..., std::string>
    // destructors under -Werror (-Wfree-nonheap-object).
    std::optional<T> value_;
    std::string error_;
};

}  // namespace zen
