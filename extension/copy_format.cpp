// copy_format.cpp — both halves of the value-format contract (see copy_format.hpp): how backends
// write values as COPY text, and how the worker's session and COPY FROM read them back.
#include "copy_format.hpp"

extern "C" {
#include "access/htup_details.h"
#include "mb/pg_wchar.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/bytea.h"
#include "utils/datetime.h"
#include "utils/float.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"
#include "utils/varlena.h"
}

namespace pg_ingest {

// ---------------------------------------------------------------------------------------------
// Writing: serialization to COPY text.

void append_copy_escaped(StringInfo buf, const char *s, size_t len) {
    const char *start = s;
    const char *end = s + len;
    for (const char *p = s; p < end; p++) {
        char c = *p;
        const char *esc;
        switch (c) {
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default: continue;
        }
        appendBinaryStringInfo(buf, start, (int)(p - start));
        appendBinaryStringInfo(buf, esc, 2);
        start = p + 1;
    }
    appendBinaryStringInfo(buf, start, (int)(end - start));
}

StableFormats::StableFormats()
    : date_style(DateStyle), date_order(DateOrder), interval_style(IntervalStyle), float_digits(extra_float_digits),
      bytea_out(bytea_output) {
    DateStyle = USE_ISO_DATES;
    DateOrder = DATEORDER_MDY;
    IntervalStyle = INTSTYLE_POSTGRES;
    extra_float_digits = 1;
    bytea_output = BYTEA_OUTPUT_HEX;
}

StableFormats::~StableFormats() {
    DateStyle = date_style;
    DateOrder = date_order;
    IntervalStyle = interval_style;
    extra_float_digits = float_digits;
    bytea_output = bytea_out;
}

// Output functions of a row type, cached per backend and refreshed when the type changes.
struct RowOutput {
    Oid typid;
    uint64 tupdesc_id;
    TupleDesc tupdesc;
    FmgrInfo *out;
};

static RowOutput *row_output(Oid typid) {
    static RowOutput cache = {InvalidOid, 0, nullptr, nullptr};
    TypeCacheEntry *tc = lookup_type_cache(typid, TYPECACHE_TUPDESC);
    if (!tc->tupDesc)
        ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE), errmsg("type %s is not composite", format_type_be(typid))));
    if (cache.typid == typid && cache.tupdesc_id == tc->tupDesc_identifier)
        return &cache;
    MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
    if (cache.tupdesc)
        FreeTupleDesc(cache.tupdesc);
    if (cache.out)
        pfree(cache.out);
    cache.tupdesc = CreateTupleDescCopy(tc->tupDesc);
    cache.out = (FmgrInfo *)palloc0(sizeof(FmgrInfo) * Max(cache.tupdesc->natts, 1));
    for (int i = 0; i < cache.tupdesc->natts; i++) {
        Form_pg_attribute a = TupleDescAttr(cache.tupdesc, i);
        if (a->attisdropped)
            continue;
        Oid fn;
        bool varlena;
        getTypeOutputInfo(a->atttypid, &fn, &varlena);
        fmgr_info_cxt(fn, &cache.out[i], TopMemoryContext);
    }
    MemoryContextSwitchTo(old);
    cache.typid = typid;
    cache.tupdesc_id = tc->tupDesc_identifier;
    return &cache;
}

int row_attnums(Oid reltype, int16 *out) {
    TupleDesc desc = row_output(reltype)->tupdesc;
    int n = 0;
    for (int i = 0; i < desc->natts; i++) {
        Form_pg_attribute a = TupleDescAttr(desc, i);
        if (!a->attisdropped && !a->attgenerated)
            out[n++] = (int16)(i + 1);
    }
    return n;
}

void append_composite_row(StringInfo buf, Oid reltype, const char *relname, HeapTupleHeader td) {
    Oid typid = HeapTupleHeaderGetTypeId(td);
    if (typid != reltype)
        ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                        errmsg("row type %s does not match target table \"%s\"", format_type_be(typid), relname),
                        errhint("Pass a row of the table's type, e.g. ROW(...)::%s.", relname)));
    RowOutput *ro = row_output(typid);
    TupleDesc desc = ro->tupdesc;
    HeapTupleData tuple;
    tuple.t_len = HeapTupleHeaderGetDatumLength(td);
    ItemPointerSetInvalid(&tuple.t_self);
    tuple.t_tableOid = InvalidOid;
    tuple.t_data = td;
    bool first = true;
    for (int i = 0; i < desc->natts; i++) {
        Form_pg_attribute a = TupleDescAttr(desc, i);
        if (a->attisdropped || a->attgenerated)
            continue;
        if (!first)
            appendStringInfoChar(buf, '\t');
        first = false;
        bool isnull;
        Datum d = heap_getattr(&tuple, i + 1, desc, &isnull);
        if (isnull) {
            appendBinaryStringInfo(buf, "\\N", 2);
            continue;
        }
        char *s = OutputFunctionCall(&ro->out[i], d);
        append_copy_escaped(buf, s, strlen(s));
        pfree(s);
    }
    appendStringInfoChar(buf, '\n');
}

void append_json_scalar(StringInfo buf, JsonbValue *v) {
    switch (v->type) {
    case jbvNull: appendBinaryStringInfo(buf, "\\N", 2); break;
    case jbvString: append_copy_escaped(buf, v->val.string.val, v->val.string.len); break;
    case jbvNumeric: {
        char *s = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
        appendStringInfoString(buf, s);
        break;
    }
    case jbvBool: appendStringInfoString(buf, v->val.boolean ? "true" : "false"); break;
    case jbvBinary: {
        char *s = JsonbToCString(nullptr, v->val.binary.data, v->val.binary.len);
        append_copy_escaped(buf, s, strlen(s));
        break;
    }
    default: ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("unexpected JSON value")));
    }
}

// ---------------------------------------------------------------------------------------------
// Reading back, in the worker.

void pin_input_formats() {
    // The worker session's own defaults. Every group of queued rows is then read with the settings
    // its entries carry (apply_input_settings), at a GUC nest level of its own. PGC_S_SESSION, not
    // PGC_S_OVERRIDE: an override would silently win over those, and over the SET clauses of
    // functions (e.g. a SECURITY DEFINER function's pinned search_path) that user code runs.
    SetConfigOption("datestyle", "ISO, MDY", PGC_SUSET, PGC_S_SESSION);
    SetConfigOption("intervalstyle", "postgres", PGC_SUSET, PGC_S_SESSION);
    SetConfigOption("extra_float_digits", "1", PGC_SUSET, PGC_S_SESSION);
    // The worker's own SQL never resolves a name through a schema a user can create objects in.
    SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_SESSION);
}

// ---------------------------------------------------------------------------------------------
// The settings a value's text is read with. A direct INSERT reads '01/02/2024', '10:00' or
// 'my_table'::regclass with the caller's DateStyle, TimeZone and search_path; so does the worker,
// with the values captured at enqueue. Stored in each entry as NUL-terminated values in this
// order (record.hpp).

static const char *const kInputSettings[] = {"DateStyle", "IntervalStyle", "TimeZone", "search_path",
                                             "lc_monetary"};
constexpr int kNumInputSettings = sizeof(kInputSettings) / sizeof(kInputSettings[0]);

constexpr int kSearchPath = 3;

// The caller's search_path with pg_temp moved to the end. In the worker, pg_temp is the worker's
// own temporary schema, shared by every role whose code it runs: searched first (PostgreSQL's
// default when it is not named) a type or table another role's code left there would shadow
// this caller's. Last, it shadows nothing (functions and operators are never looked up there).
static const char *search_path_temp_last(const char *path) {
    char *raw = pstrdup(path);
    List *elems = NIL;
    StringInfoData out;
    initStringInfo(&out);
    if (SplitIdentifierString(raw, ',', &elems)) {
        ListCell *lc;
        foreach (lc, elems) {
            const char *name = (const char *)lfirst(lc);
            if (pg_strcasecmp(name, "pg_temp") == 0 || pg_strncasecmp(name, "pg_temp_", 8) == 0)
                continue;
            appendStringInfo(&out, "%s, ", quote_identifier(name));
        }
    }
    appendStringInfoString(&out, "pg_temp");
    return out.data;
}

void capture_input_settings(StringInfo out, bool pinned_formats) {
    for (int i = 0; i < kNumInputSettings; i++) {
        const char *v;
        if (pinned_formats && i == 0)
            v = "ISO, MDY"; // what StableFormats wrote
        else if (pinned_formats && i == 1)
            v = "postgres";
        else
            v = GetConfigOption(kInputSettings[i], false, false);
        appendBinaryStringInfo(out, v ? v : "", (int)strlen(v ? v : "") + 1);
    }
}

void apply_input_settings(const char *blob, uint32_t len) {
    const char *p = blob;
    const char *end = blob + len;
    for (int i = 0; i < kNumInputSettings && p < end; i++) {
        size_t n = strnlen(p, (size_t)(end - p));
        if (n == (size_t)(end - p))
            ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED), errmsg("pg_ingest: malformed settings in a queued entry")));
        const char *value = i == kSearchPath ? search_path_temp_last(p) : p;
        (void)set_config_option(kInputSettings[i], value, PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, ERROR,
                                false);
        p += n + 1;
    }
}

List *copy_input_options() {
    return list_make1(makeDefElem(pstrdup("encoding"), (Node *)makeString(pstrdup(GetDatabaseEncodingName())), -1));
}

} // namespace pg_ingest
