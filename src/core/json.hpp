// A small JSON reader and writer that keeps numbers as their exact text.
#pragma once
#include "pure.hpp"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace witn::json {

enum class Kind { Null, Bool, Number, String, Array, Object };

struct Value {
    Kind kind = Kind::Null;
    bool boolean = false;
    std::string text; // Number: its literal text; String: the decoded string
    std::vector<Value> items;                           // Array
    std::vector<std::pair<std::string, Value>> members; // Object, in source order

    // The destructor is defined in json.cpp: clang with libstdc++ would otherwise define it while
    // std::pair<std::string, Value> is still incomplete and fail to compile.
    Value() = default;
    Value(const Value &) = default;
    Value(Value &&) noexcept = default;
    Value &operator=(const Value &) = default;
    Value &operator=(Value &&) noexcept = default;
    ~Value();

    const Value *find(std::string_view key) const;
};

// Parses one JSON document (RFC 8259). Throws witn::Error(ValidationError) with the byte offset
// on malformed text, on duplicate object keys and beyond max_depth nesting.
Value parse(std::string_view text, int max_depth = 64);

// Appends s as a JSON string literal (quotes and escapes).
void append_quoted(std::string &out, std::string_view s);

// Writes v back as JSON in jsonb's style: ", " and ": " separators, numbers as written.
std::string write(const Value &v);

// The name of a kind for error messages ("a string", "an array", ...).
const char *kind_name(Kind kind) noexcept;

} // namespace witn::json
