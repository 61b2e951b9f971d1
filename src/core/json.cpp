#include "json.hpp"

#include "error.hpp"

#include <cstdio>

namespace witn::json {

Value::~Value() = default;

const Value *Value::find(std::string_view key) const {
    for (const auto &[k, v] : members)
        if (k == key) return &v;
    return nullptr;
}

const char *kind_name(Kind kind) noexcept {
    switch (kind) {
    case Kind::Null: return "null";
    case Kind::Bool: return "a boolean";
    case Kind::Number: return "a number";
    case Kind::String: return "a string";
    case Kind::Array: return "an array";
    case Kind::Object: return "an object";
    }
    return "a value";
}

namespace {

class Parser {
public:
    Parser(std::string_view text, int max_depth) : s_(text), max_depth_(max_depth) {}

    Value document() {
        Value v = value(0);
        skip_space();
        if (pos_ != s_.size()) fail("end of input");
        return v;
    }

private:
    std::string_view s_;
    std::size_t pos_ = 0;
    int max_depth_;

    [[noreturn]] void fail(const char *expected) {
        throw Error(Code::ValidationError,
                    std::string("VALIDATION_ERROR: malformed JSON, expected ") + expected,
                    "at byte " + std::to_string(pos_) + " of the input");
    }

    void skip_space() {
        while (pos_ < s_.size() &&
               (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
            ++pos_;
    }

    bool consume(std::string_view word) {
        if (s_.substr(pos_, word.size()) != word) return false;
        pos_ += word.size();
        return true;
    }

    Value value(int depth) {
        if (depth > max_depth_) fail("less deeply nested input");
        skip_space();
        if (pos_ >= s_.size()) fail("a value");
        Value v;
        char c = s_[pos_];
        if (c == '{') {
            v.kind = Kind::Object;
            ++pos_;
            skip_space();
            if (pos_ < s_.size() && s_[pos_] == '}') {
                ++pos_;
                return v;
            }
            for (;;) {
                skip_space();
                if (pos_ >= s_.size() || s_[pos_] != '"') fail("a string key");
                std::size_t key_pos = pos_;
                std::string key = string_literal();
                if (v.find(key)) {
                    pos_ = key_pos;
                    fail("no duplicate keys");
                }
                skip_space();
                if (pos_ >= s_.size() || s_[pos_] != ':') fail("':'");
                ++pos_;
                v.members.emplace_back(std::move(key), value(depth + 1));
                skip_space();
                if (pos_ < s_.size() && s_[pos_] == ',') { ++pos_; continue; }
                if (pos_ < s_.size() && s_[pos_] == '}') { ++pos_; return v; }
                fail("',' or '}'");
            }
        }
        if (c == '[') {
            v.kind = Kind::Array;
            ++pos_;
            skip_space();
            if (pos_ < s_.size() && s_[pos_] == ']') {
                ++pos_;
                return v;
            }
            for (;;) {
                v.items.push_back(value(depth + 1));
                skip_space();
                if (pos_ < s_.size() && s_[pos_] == ',') { ++pos_; continue; }
                if (pos_ < s_.size() && s_[pos_] == ']') { ++pos_; return v; }
                fail("',' or ']'");
            }
        }
        if (c == '"') {
            v.kind = Kind::String;
            v.text = string_literal();
            return v;
        }
        if (consume("true")) { v.kind = Kind::Bool; v.boolean = true; return v; }
        if (consume("false")) { v.kind = Kind::Bool; return v; }
        if (consume("null")) return v;
        if (c == '-' || (c >= '0' && c <= '9')) {
            std::size_t start = pos_;
            while (pos_ < s_.size() && (std::string_view("+-.eE").find(s_[pos_]) != std::string_view::npos ||
                                        (s_[pos_] >= '0' && s_[pos_] <= '9')))
                ++pos_;
            v.kind = Kind::Number;
            v.text = std::string(s_.substr(start, pos_ - start));
            if (!number_syntax_ok(v.text)) {
                pos_ = start;
                fail("a valid number");
            }
            return v;
        }
        fail("a value");
    }

    static bool number_syntax_ok(std::string_view t) {
        std::size_t i = 0;
        if (i < t.size() && t[i] == '-') ++i;
        std::size_t d = i;
        while (i < t.size() && t[i] >= '0' && t[i] <= '9') ++i;
        if (i == d || (i - d > 1 && t[d] == '0')) return false;
        if (i < t.size() && t[i] == '.') {
            std::size_t f = ++i;
            while (i < t.size() && t[i] >= '0' && t[i] <= '9') ++i;
            if (i == f) return false;
        }
        if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
            ++i;
            if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
            std::size_t e = i;
            while (i < t.size() && t[i] >= '0' && t[i] <= '9') ++i;
            if (i == e) return false;
        }
        return i == t.size();
    }

    unsigned hex4() {
        if (pos_ + 4 > s_.size()) fail("four hex digits");
        unsigned cp = 0;
        for (int k = 0; k < 4; ++k) {
            char h = s_[pos_++];
            cp <<= 4;
            if (h >= '0' && h <= '9') cp |= unsigned(h - '0');
            else if (h >= 'a' && h <= 'f') cp |= unsigned(h - 'a' + 10);
            else if (h >= 'A' && h <= 'F') cp |= unsigned(h - 'A' + 10);
            else fail("four hex digits");
        }
        return cp;
    }

    static void append_utf8(std::string &out, unsigned cp) {
        if (cp < 0x80) out.push_back(char(cp));
        else if (cp < 0x800) {
            out.push_back(char(0xC0 | (cp >> 6)));
            out.push_back(char(0x80 | (cp & 0x3F)));
        } else if (cp < 0x10000) {
            out.push_back(char(0xE0 | (cp >> 12)));
            out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
            out.push_back(char(0x80 | (cp & 0x3F)));
        } else {
            out.push_back(char(0xF0 | (cp >> 18)));
            out.push_back(char(0x80 | ((cp >> 12) & 0x3F)));
            out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
            out.push_back(char(0x80 | (cp & 0x3F)));
        }
    }

    std::string string_literal() {
        ++pos_; // opening quote
        std::string out;
        for (;;) {
            if (pos_ >= s_.size()) fail("a closing '\"'");
            char c = s_[pos_++];
            if (c == '"') return out;
            if (static_cast<unsigned char>(c) < 0x20) fail("no control characters in strings");
            if (c != '\\') {
                out.push_back(c);
                continue;
            }
            if (pos_ >= s_.size()) fail("an escape");
            char e = s_[pos_++];
            switch (e) {
            case '"': out.push_back('"'); break;
            case '\\': out.push_back('\\'); break;
            case '/': out.push_back('/'); break;
            case 'b': out.push_back('\b'); break;
            case 'f': out.push_back('\f'); break;
            case 'n': out.push_back('\n'); break;
            case 'r': out.push_back('\r'); break;
            case 't': out.push_back('\t'); break;
            case 'u': {
                unsigned cp = hex4();
                if (cp >= 0xD800 && cp < 0xDC00) {
                    if (!consume("\\u")) fail("a low surrogate");
                    unsigned lo = hex4();
                    if (lo < 0xDC00 || lo > 0xDFFF) fail("a low surrogate");
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    fail("a high surrogate first");
                }
                if (cp == 0) fail("no \\u0000 in strings");
                append_utf8(out, cp);
                break;
            }
            default: fail("a valid escape");
            }
        }
    }
};

void write_to(std::string &out, const Value &v) {
    switch (v.kind) {
    case Kind::Null: out += "null"; break;
    case Kind::Bool: out += v.boolean ? "true" : "false"; break;
    case Kind::Number: out += v.text; break;
    case Kind::String: append_quoted(out, v.text); break;
    case Kind::Array:
        out.push_back('[');
        for (std::size_t i = 0; i < v.items.size(); ++i) {
            if (i) out += ", ";
            write_to(out, v.items[i]);
        }
        out.push_back(']');
        break;
    case Kind::Object:
        out.push_back('{');
        for (std::size_t i = 0; i < v.members.size(); ++i) {
            if (i) out += ", ";
            append_quoted(out, v.members[i].first);
            out += ": ";
            write_to(out, v.members[i].second);
        }
        out.push_back('}');
        break;
    }
}

} // namespace

Value parse(std::string_view text, int max_depth) { return Parser(text, max_depth).document(); }

void append_quoted(std::string &out, std::string_view s) {
    out.push_back('"');
    for (char c : s) {
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            if (static_cast<unsigned char>(c) < 0x20) {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
                out += buf;
            } else {
                out.push_back(c);
            }
        }
    }
    out.push_back('"');
}

std::string write(const Value &v) {
    std::string out;
    write_to(out, v);
    return out;
}

} // namespace witn::json
