// The one place the glue includes PostgreSQL, and the barrier between C++ exceptions and
// PostgreSQL's longjmp-based errors.
//
// Rules the glue follows:
//  * every SQL-callable function is defined with WITN_FUNCTION, so its body runs inside
//    invoke(), which turns any C++ exception into ereport(ERROR) after every C++ object of the
//    call has been destroyed;
//  * every call into PostgreSQL that may raise an error goes through pg(), which catches the
//    error in PG_TRY and rethrows it as a PgError exception, so a longjmp never skips a C++
//    destructor. invoke() re-raises PgError as the original PostgreSQL error.
#pragma once

#define WITN_GLUE 1

#include <cstdint>
#include <exception>
#include <string>
#include <type_traits>
#include <utility>

extern "C" {
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/elog.h"
#include "utils/memutils.h"
#include "utils/palloc.h"
}

#include "core/error.hpp"

namespace witn::pg {

// A PostgreSQL error caught by pg(); the ErrorData lives in the memory context that was current
// when pg() was entered.
class PgError : public std::exception {
public:
    explicit PgError(ErrorData *data) : data_(data) {}
    ErrorData *data() const noexcept { return data_; }
    const char *what() const noexcept override { return "PostgreSQL error"; }

private:
    ErrorData *data_;
};

[[noreturn]] void throw_pg_error(MemoryContext context);

// Runs f (which calls PostgreSQL) so that a PostgreSQL error becomes a PgError exception.
// f itself must not own C++ objects with destructors: it is the C side of the fence.
template <typename F>
auto pg(F &&f) -> decltype(f()) {
    using R = decltype(f());
    MemoryContext context = CurrentMemoryContext;
    bool failed = false;
    if constexpr (std::is_void_v<R>) {
        PG_TRY();
        { f(); }
        PG_CATCH();
        { failed = true; }
        PG_END_TRY();
        if (failed) throw_pg_error(context);
    } else {
        R result{};
        PG_TRY();
        { result = f(); }
        PG_CATCH();
        { failed = true; }
        PG_END_TRY();
        if (failed) throw_pg_error(context);
        return result;
    }
}

// Makes a memory context current for a scope (switching back is a plain assignment, safe in a
// destructor).
class InContext {
public:
    explicit InContext(MemoryContext c) : saved_(MemoryContextSwitchTo(c)) {}
    ~InContext() { MemoryContextSwitchTo(saved_); }
    InContext(const InContext &) = delete;
    InContext &operator=(const InContext &) = delete;

private:
    MemoryContext saved_;
};

// A memory context for one item of a loop (a row, an outcome): each item runs in it, and it is
// reset after each, so a loop over millions of items holds one item's memory. It is made in the
// context current at construction; finish() deletes it (a transaction abort frees it too).
class ItemMemory {
public:
    // `name` must be a string literal (it names the context for as long as it lives).
    explicit ItemMemory(const char *name)
        : context_(pg([&] { return AllocSetContextCreateInternal(CurrentMemoryContext, name, ALLOCSET_DEFAULT_SIZES); })) {}
    ItemMemory(const ItemMemory &) = delete;
    ItemMemory &operator=(const ItemMemory &) = delete;

    // Runs f with the context current, then resets the context.
    template <typename F>
    void run(F &&f) {
        {
            InContext in(context_);
            f();
        }
        pg([&] { MemoryContextReset(context_); });
    }
    void finish() { pg([&] { MemoryContextDelete(context_); }); }

private:
    MemoryContext context_;
};

// Runs impl behind the exception barrier.
Datum invoke(Datum (*impl)(FunctionCallInfo), FunctionCallInfo fcinfo) noexcept;

// The SQLSTATE of a product error code (class WT).
int sqlstate(witn::Code code) noexcept;

// A palloc'd copy of s: the way C++ strings leave the glue.
char *to_cstring(const std::string &s);
text *to_text(const std::string &s);
std::string from_text(const text *t);

} // namespace witn::pg

// Declares an SQL-callable function whose body runs behind the barrier.
#define WITN_FUNCTION(name)                                                                     \
    static Datum name##_impl(FunctionCallInfo fcinfo);                                         \
    extern "C" {                                                                                \
    PG_FUNCTION_INFO_V1(name);                                                                  \
    Datum name(PG_FUNCTION_ARGS) { return witn::pg::invoke(name##_impl, fcinfo); }              \
    }                                                                                           \
    static Datum name##_impl(FunctionCallInfo fcinfo)
