// pg_guard.cpp — the C++ -> PostgreSQL half of the error boundary (see pg_guard.hpp).
#include "pg_guard.hpp"

namespace pg_ingest {

void rethrow_pg_error(std::optional<PgError> &keep) {
    const ErrorData *src = keep->data();
    ErrorData *copy = (ErrorData *)palloc(sizeof(ErrorData));
    memcpy(copy, src, sizeof(ErrorData));
    char **fields[] = {&copy->message,       &copy->detail,          &copy->detail_log,
                       &copy->hint,          &copy->context,         &copy->backtrace,
                       &copy->schema_name,   &copy->table_name,      &copy->column_name,
                       &copy->datatype_name, &copy->constraint_name, &copy->internalquery};
    for (char **f : fields)
        if (*f)
            *f = pstrdup(*f);
    keep.reset();
    ReThrowError(copy);
}

Datum call_guarded(const char *name, Datum (*body)(FunctionCallInfo), FunctionCallInfo fcinfo) {
    std::optional<PgError> pg_error;
    const char *message = nullptr;
    const char *hint = nullptr;
    int sqlstate = ERRCODE_INTERNAL_ERROR;
    try {
        return body(fcinfo);
    } catch (const PgError &e) {
        pg_error = e;
    } catch (const UserError &e) {
        sqlstate = e.sqlstate();
        message = pstrdup(e.what());
        hint = e.hint().empty() ? nullptr : pstrdup(e.hint().c_str());
    } catch (const std::bad_alloc &) {
        sqlstate = ERRCODE_OUT_OF_MEMORY;
        message = "out of memory";
    } catch (const std::exception &e) {
        message = psprintf("pg_ingest internal error in %s: %s", name, e.what());
    } catch (...) {
        message = psprintf("pg_ingest internal error in %s: unknown exception", name);
    }
    // Outside every catch block now: PostgreSQL may longjmp.
    if (pg_error)
        rethrow_pg_error(pg_error);
    ereport(ERROR, (errcode(sqlstate), errmsg_internal("%s", message), hint ? errhint("%s", hint) : 0));
    pg_unreachable();
}

} // namespace pg_ingest
