#include "pg/postgres.hpp"

#include <algorithm>
#include <cstring>
#include <new>

extern "C" {
#include "utils/builtins.h"
#include "utils/memutils.h"
}

namespace witn::pg {

namespace {

// Fixed-size buffers: reporting an error must not allocate while a C++ exception is in flight.
struct Report {
    int sqlstate = ERRCODE_INTERNAL_ERROR;
    char message[2048] = {};
    char detail[2048] = {};
    char hint[1024] = {};
};

template <std::size_t N>
void copy(char (&dst)[N], const std::string &src) {
    std::size_t n = std::min(src.size(), N - 1);
    std::memcpy(dst, src.data(), n);
    dst[n] = '\0';
}

} // namespace

int sqlstate(witn::Code code) noexcept {
    // Class WT: witn's own. PostgREST answers 400 for SQLSTATE classes it does not map.
    switch (code) {
    case witn::Code::ValidationError: return MAKE_SQLSTATE('W', 'T', '0', '0', '1');
    case witn::Code::CustomerNotFound: return MAKE_SQLSTATE('W', 'T', '0', '0', '2');
    case witn::Code::AgentNotFound: return MAKE_SQLSTATE('W', 'T', '0', '0', '3');
    case witn::Code::AgentMismatch: return MAKE_SQLSTATE('W', 'T', '0', '0', '4');
    case witn::Code::PriceNotFound: return MAKE_SQLSTATE('W', 'T', '0', '0', '5');
    case witn::Code::IdempotencyConflict: return MAKE_SQLSTATE('W', 'T', '0', '0', '6');
    case witn::Code::PayloadTooLarge: return MAKE_SQLSTATE('W', 'T', '0', '0', '7');
    case witn::Code::OutcomeNotFound: return MAKE_SQLSTATE('W', 'T', '0', '0', '8');
    case witn::Code::OutcomeNotConfirmed: return MAKE_SQLSTATE('W', 'T', '0', '1', '0');
    case witn::Code::CreditExceedsAmount: return MAKE_SQLSTATE('W', 'T', '0', '1', '1');
    case witn::Code::AlreadyReversed: return MAKE_SQLSTATE('W', 'T', '0', '1', '2');
    }
    return ERRCODE_INTERNAL_ERROR;
}

void throw_pg_error(MemoryContext context) {
    MemoryContextSwitchTo(context);
    ErrorData *data = CopyErrorData();
    FlushErrorState();
    throw PgError(data);
}

Datum invoke(Datum (*impl)(FunctionCallInfo), FunctionCallInfo fcinfo) noexcept {
    // Static: filled only on the error path, so the common path costs nothing (a backend runs
    // one call at a time; a nested call's report is consumed before its caller resumes).
    static Report report;
    ErrorData *pg_error = nullptr;
    bool have_report = false;
    try {
        return impl(fcinfo);
    } catch (const PgError &e) {
        pg_error = e.data();
    } catch (const witn::Error &e) {
        report = Report{};
        report.sqlstate = sqlstate(e.code());
        copy(report.message, e.what());
        copy(report.detail, e.detail());
        copy(report.hint, e.hint());
        have_report = true;
    } catch (const std::bad_alloc &) {
        report = Report{};
        report.sqlstate = ERRCODE_OUT_OF_MEMORY;
        copy(report.message, "out of memory in witn");
        have_report = true;
    } catch (const std::exception &e) {
        report = Report{};
        copy(report.message, std::string("witn internal error: ") + e.what());
        have_report = true;
    } catch (...) {
        report = Report{};
        copy(report.message, "witn internal error: unknown exception");
        have_report = true;
    }
    // Every C++ object of the call is gone by now; longjmp is safe.
    if (pg_error) ReThrowError(pg_error);
    if (have_report)
        ereport(ERROR, (errcode(report.sqlstate), errmsg("%s", report.message),
                        report.detail[0] ? errdetail("%s", report.detail) : 0,
                        report.hint[0] ? errhint("%s", report.hint) : 0));
    pg_unreachable();
}

char *to_cstring(const std::string &s) {
    return pg([&] { return pnstrdup(s.data(), s.size()); });
}

text *to_text(const std::string &s) {
    return pg([&] { return cstring_to_text_with_len(s.data(), static_cast<int>(s.size())); });
}

std::string from_text(const text *t) {
    return std::string(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
}

} // namespace witn::pg
