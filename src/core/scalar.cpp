#include "scalar.hpp"

namespace witn {

Scalar Scalar::from_json(const json::Value &v) {
    Scalar s;
    switch (v.kind) {
    case json::Kind::Bool:
        s.kind = Kind::Bool;
        s.boolean = v.boolean;
        break;
    case json::Kind::Number:
        if (auto d = Decimal::parse(v.text)) {
            s.kind = Kind::Number;
            s.number = *d;
        } else {
            s.kind = Kind::Other;
        }
        break;
    case json::Kind::String:
        s.kind = Kind::String;
        s.string = v.text;
        break;
    default:
        s.kind = Kind::Other;
    }
    return s;
}

json::Value Scalar::to_json() const {
    json::Value v;
    switch (kind) {
    case Kind::Bool:
        v.kind = json::Kind::Bool;
        v.boolean = boolean;
        break;
    case Kind::Number:
        v.kind = json::Kind::Number;
        v.text = number.to_string();
        break;
    case Kind::String:
        v.kind = json::Kind::String;
        v.text = string;
        break;
    default:
        break;
    }
    return v;
}

bool Scalar::matches(const Scalar &other) const {
    if (kind != other.kind) return false;
    switch (kind) {
    case Kind::Bool: return boolean == other.boolean;
    case Kind::Number: return number == other.number;
    case Kind::String: return string == other.string;
    default: return false;
    }
}

} // namespace witn
