// copy_format.cpp — both halves of the value-format contract (see copy_format.hpp): how backends
// write values as COPY text, and how the worker's session and COPY FROM read them back.
#include "copy_format.hpp"

#include "settings.hpp"

extern "C" {
#include "access/htup_details.h"
#include "access/transam.h"
#include "catalog/pg_type.h"
#include "libpq/pqformat.h"
#include "mb/pg_wchar.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/bytea.h"
#include "utils/datetime.h"
#include "utils/float.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
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
        case '\\':
            esc = "\\\\";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        default:
            continue;
        }
        appendBinaryStringInfo(buf, start, (int)(p - start));
        appendBinaryStringInfo(buf, esc, 2);
        start = p + 1;
    }
    appendBinaryStringInfo(buf, start, (int)(end - start));
}

StableFormats::StableFormats()
    : date_style(DateStyle), date_order(DateOrder), interval_style(IntervalStyle),
      float_digits(extra_float_digits), bytea_out(bytea_output) {
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

// How a column's value is written in a binary row: most built-in types by their send function's
// format written directly (no function call, no allocation), the rest through the send function.
enum SendKind : uint8 {
    kSendCall,
    kSendInt16,
    kSendInt32,
    kSendInt64,
    kSendFloat4,
    kSendFloat8,
    kSendBool,
    kSendBytes
};

static SendKind send_kind(Oid type) {
    switch (type) {
    case INT2OID:
        return kSendInt16;
    case INT4OID:
    case OIDOID:
    case DATEOID:
        return kSendInt32;
    case INT8OID:
    case TIMEOID:
    case TIMESTAMPOID:
    case TIMESTAMPTZOID:
    case CASHOID:
        return kSendInt64;
    case FLOAT4OID:
        return kSendFloat4;
    case FLOAT8OID:
        return kSendFloat8;
    case BOOLOID:
        return kSendBool;
    // Their send functions write the bytes as they are (text types: converted to the client
    // encoding, which binary rows require to be the database's).
    case TEXTOID:
    case VARCHAROID:
    case BPCHAROID:
    case BYTEAOID:
        return kSendBytes;
    default:
        return kSendCall;
    }
}

// Output and send functions of a row type, cached per backend and refreshed when the type changes.
struct RowOutput {
    Oid typid;
    uint64 tupdesc_id;
    TupleDesc tupdesc;
    FmgrInfo *out;
    FmgrInfo *send;
    SendKind *kind;
    // The types of the columns a row is written with (row_attnums), when every one of them is a
    // built-in type with binary send and receive functions; else nullptr (rows go as COPY text).
    uint32 *binary_types;
};

static RowOutput *row_output(Oid typid) {
    static RowOutput cache = {InvalidOid, 0, nullptr, nullptr, nullptr, nullptr, nullptr};
    TypeCacheEntry *tc = lookup_type_cache(typid, TYPECACHE_TUPDESC);
    if (!tc->tupDesc)
        ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
                        errmsg("type %s is not composite", format_type_be(typid))));
    if (cache.typid == typid && cache.tupdesc_id == tc->tupDesc_identifier)
        return &cache;
    MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
    if (cache.tupdesc)
        FreeTupleDesc(cache.tupdesc);
    if (cache.out)
        pfree(cache.out);
    if (cache.send)
        pfree(cache.send);
    if (cache.kind)
        pfree(cache.kind);
    if (cache.binary_types)
        pfree(cache.binary_types);
    cache.typid = InvalidOid; // until complete
    cache.tupdesc = CreateTupleDescCopy(tc->tupDesc);
    int natts = cache.tupdesc->natts;
    cache.out = (FmgrInfo *)palloc0(sizeof(FmgrInfo) * Max(natts, 1));
    cache.send = (FmgrInfo *)palloc0(sizeof(FmgrInfo) * Max(natts, 1));
    cache.kind = (SendKind *)palloc0(sizeof(SendKind) * Max(natts, 1));
    cache.binary_types = (uint32 *)palloc0(sizeof(uint32) * Max(natts, 1));
    bool binary = true;
    int ncols = 0;
    for (int i = 0; i < natts; i++) {
        Form_pg_attribute a = TupleDescAttr(cache.tupdesc, i);
        if (a->attisdropped)
            continue;
        Oid fn;
        bool varlena;
        getTypeOutputInfo(a->atttypid, &fn, &varlena);
        fmgr_info_cxt(fn, &cache.out[i], TopMemoryContext);
        if (a->attgenerated)
            continue;
        // Binary only for built-in types: their send and receive functions are PostgreSQL's own
        // (the worker may read them back as text for a dead letter), and a domain's checks or a
        // user-defined type's code run only where the text path would run them too.
        Oid send = InvalidOid, recv = InvalidOid;
        if (a->atttypid < FirstNormalObjectId) {
            HeapTuple tt = SearchSysCache1(TYPEOID, ObjectIdGetDatum(a->atttypid));
            if (HeapTupleIsValid(tt)) {
                Form_pg_type t = (Form_pg_type)GETSTRUCT(tt);
                send = t->typsend;
                recv = t->typreceive;
                ReleaseSysCache(tt);
            }
        }
        if (!OidIsValid(send) || !OidIsValid(recv)) {
            binary = false;
            continue;
        }
        fmgr_info_cxt(send, &cache.send[i], TopMemoryContext);
        cache.kind[i] = send_kind(a->atttypid);
        cache.binary_types[ncols++] = a->atttypid;
    }
    if (!binary || ncols == 0) {
        pfree(cache.binary_types);
        cache.binary_types = nullptr;
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

// A composite value as a tuple heap_getattr can read.
static HeapTupleData tuple_of(HeapTupleHeader td) {
    HeapTupleData tuple;
    tuple.t_len = HeapTupleHeaderGetDatumLength(td);
    ItemPointerSetInvalid(&tuple.t_self);
    tuple.t_tableOid = InvalidOid;
    tuple.t_data = td;
    return tuple;
}

static RowOutput *checked_row_output(Oid reltype, const char *relname, HeapTupleHeader td) {
    Oid typid = HeapTupleHeaderGetTypeId(td);
    if (typid != reltype)
        ereport(ERROR,
                (errcode(ERRCODE_DATATYPE_MISMATCH),
                 errmsg("row type %s does not match target table \"%s\"", format_type_be(typid), relname),
                 errhint("Pass a row of the table's type, e.g. ROW(...)::%s.", relname)));
    return row_output(typid);
}

const uint32 *row_binary_types(Oid reltype) {
    if (!guc_binary_rows || pg_get_client_encoding() != GetDatabaseEncoding())
        return nullptr;
    return row_output(reltype)->binary_types;
}

static inline void append_be(StringInfo buf, uint64 v, int bytes) {
    char b[8];
    for (int i = 0; i < bytes; i++)
        b[i] = (char)(v >> (8 * (bytes - 1 - i)));
    appendBinaryStringInfo(buf, b, bytes);
}

// A field of a fixed-width value: its length, then the value in network byte order.
static inline void append_fixed_field(StringInfo buf, uint64 v, int bytes) {
    append_be(buf, (uint64)bytes, 4);
    append_be(buf, v, bytes);
}

// The bits of a float, as its send function writes them.
template <typename Bits, typename Float> static inline Bits bits_of(Float f) {
    static_assert(sizeof(Bits) == sizeof(Float), "same width");
    Bits b;
    memcpy(&b, &f, sizeof(b));
    return b;
}

void append_composite_row_binary(StringInfo buf, Oid reltype, const char *relname, HeapTupleHeader td) {
    RowOutput *ro = checked_row_output(reltype, relname, td);
    Assert(ro->binary_types);
    TupleDesc desc = ro->tupdesc;
    HeapTupleData tuple = tuple_of(td);
    int count_at = buf->len;
    append_be(buf, 0, 2);
    uint16 fields = 0;
    for (int i = 0; i < desc->natts; i++) {
        Form_pg_attribute a = TupleDescAttr(desc, i);
        if (a->attisdropped || a->attgenerated)
            continue;
        fields++;
        bool isnull;
        Datum d = heap_getattr(&tuple, i + 1, desc, &isnull);
        if (isnull) {
            append_be(buf, 0xFFFFFFFFu, 4);
            continue;
        }
        switch (ro->kind[i]) {
        case kSendInt16:
            append_fixed_field(buf, (uint16)DatumGetInt16(d), 2);
            break;
        case kSendInt32:
            append_fixed_field(buf, (uint32)DatumGetInt32(d), 4);
            break;
        case kSendInt64:
            append_fixed_field(buf, (uint64)DatumGetInt64(d), 8);
            break;
        case kSendFloat4:
            append_fixed_field(buf, bits_of<uint32>(DatumGetFloat4(d)), 4);
            break;
        case kSendFloat8:
            append_fixed_field(buf, bits_of<uint64>(DatumGetFloat8(d)), 8);
            break;
        case kSendBool:
            append_fixed_field(buf, DatumGetBool(d) ? 1 : 0, 1);
            break;
        case kSendBytes: {
            struct varlena *v = pg_detoast_datum_packed((struct varlena *)DatumGetPointer(d));
            append_be(buf, (uint32)VARSIZE_ANY_EXHDR(v), 4);
            appendBinaryStringInfo(buf, VARDATA_ANY(v), (int)VARSIZE_ANY_EXHDR(v));
            if ((Pointer)v != DatumGetPointer(d))
                pfree(v);
            break;
        }
        case kSendCall: {
            bytea *b = SendFunctionCall(&ro->send[i], d);
            append_be(buf, (uint32)VARSIZE(b) - VARHDRSZ, 4);
            appendBinaryStringInfo(buf, VARDATA(b), (int)(VARSIZE(b) - VARHDRSZ));
            pfree(b);
            break;
        }
        }
    }
    buf->data[count_at] = (char)(fields >> 8);
    buf->data[count_at + 1] = (char)(fields & 0xFF);
}

void append_composite_row(StringInfo buf, Oid reltype, const char *relname, HeapTupleHeader td) {
    RowOutput *ro = checked_row_output(reltype, relname, td);
    TupleDesc desc = ro->tupdesc;
    HeapTupleData tuple = tuple_of(td);
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
    case jbvNull:
        appendBinaryStringInfo(buf, "\\N", 2);
        break;
    case jbvString:
        append_copy_escaped(buf, v->val.string.val, v->val.string.len);
        break;
    case jbvNumeric: {
        char *s = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
        appendStringInfoString(buf, s);
        break;
    }
    case jbvBool:
        appendStringInfoString(buf, v->val.boolean ? "true" : "false");
        break;
    case jbvBinary: {
        char *s = JsonbToCString(nullptr, v->val.binary.data, v->val.binary.len);
        append_copy_escaped(buf, s, strlen(s));
        break;
    }
    default:
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("unexpected JSON value")));
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
            ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
                            errmsg("pg_ingest: malformed settings in a queued entry")));
        const char *value = i == kSearchPath ? search_path_temp_last(p) : p;
        (void)set_config_option(kInputSettings[i], value, PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true,
                                ERROR, false);
        p += n + 1;
    }
}

List *copy_input_options(bool binary) {
    if (binary)
        return list_make1(makeDefElem(pstrdup("format"), (Node *)makeString(pstrdup("binary")), -1));
    return list_make1(
        makeDefElem(pstrdup("encoding"), (Node *)makeString(pstrdup(GetDatabaseEncodingName())), -1));
}

// "PGCOPY\n\377\r\n\0", flags 0, header extension length 0.
const char kBinaryCopyHeader[kBinaryCopyHeaderLen] = {'P',  'G', 'C', 'O', 'P', 'Y', '\n', '\377', '\r', '\n',
                                                      '\0', 0,   0,   0,   0,   0,   0,    0,      0};

static inline uint32 read_be32(const char *p) {
    const unsigned char *u = reinterpret_cast<const unsigned char *>(p);
    return (uint32)u[0] << 24 | (uint32)u[1] << 16 | (uint32)u[2] << 8 | (uint32)u[3];
}

size_t binary_row_length(const char *p, const char *end) {
    if (end - p < 2)
        return 0;
    const unsigned char *u = reinterpret_cast<const unsigned char *>(p);
    int16 fields = (int16)((uint16)u[0] << 8 | u[1]);
    const char *q = p + 2;
    for (int i = 0; i < fields; i++) {
        if (end - q < 4)
            return 0;
        int32 len = (int32)read_be32(q);
        q += 4;
        if (len == -1)
            continue;
        if (len < 0 || end - q < len)
            return 0;
        q += len;
    }
    return fields < 0 ? 0 : (size_t)(q - p);
}

void binary_row_to_text(StringInfo out, const char *p, size_t n, const uint32 *types, int ntypes) {
    StableFormats formats;
    const char *end = p + n;
    size_t len = binary_row_length(p, end);
    const unsigned char *u = reinterpret_cast<const unsigned char *>(p);
    int fields = len ? (int16)((uint16)u[0] << 8 | u[1]) : -1;
    if (len != n || fields != ntypes)
        ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED), errmsg("pg_ingest: malformed binary row")));
    const char *q = p + 2;
    for (int i = 0; i < fields; i++) {
        if (i)
            appendStringInfoChar(out, '\t');
        int32 flen = (int32)read_be32(q);
        q += 4;
        if (flen == -1) {
            appendBinaryStringInfo(out, "\\N", 2);
            continue;
        }
        Oid type = types[i];
        if (type >= FirstNormalObjectId)
            ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
                            errmsg("pg_ingest: binary row of a non-built-in type")));
        Oid recv, ioparam, outfn;
        bool varlena;
        getTypeBinaryInputInfo(type, &recv, &ioparam);
        getTypeOutputInfo(type, &outfn, &varlena);
        StringInfoData field;
        initStringInfo(&field);
        appendBinaryStringInfo(&field, q, flen);
        Datum d = OidReceiveFunctionCall(recv, &field, ioparam, -1);
        char *s = OidOutputFunctionCall(outfn, d);
        append_copy_escaped(out, s, strlen(s));
        pfree(field.data);
        q += flen;
    }
}

} // namespace pg_ingest
