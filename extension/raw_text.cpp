// raw_text.cpp — ingest_raw_text(bytea), the SQL helper that renders a dead letter's exact bytes
// (ingest_dead_letter.raw_data, written by ledger.cpp) as readable text.
#include "pg_guard.hpp"

extern "C" {
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
}

using namespace pg_ingest;

// ingest_raw_text(bytea): the raw bytes of a queued COPY text line as readable text. Valid text
// is returned unchanged; a NUL byte or a byte that does not start a valid character of the
// database encoding is written as \xHH, which COPY text reads back as that same byte. Backslashes
// are left alone: the line is COPY text already. The exact bytes stay in raw_data.
PGI_FUNCTION(pg_ingest_raw_text) {
    return pg_guard([&]() -> Datum {
        bytea *raw = PG_GETARG_BYTEA_PP(0);
        const char *p = VARDATA_ANY(raw);
        int len = (int)VARSIZE_ANY_EXHDR(raw);
        int enc = GetDatabaseEncoding();
        StringInfoData out;
        initStringInfo(&out);
        for (int i = 0; i < len;) {
            int n = p[i] == '\0' ? -1 : pg_encoding_verifymbchar(enc, p + i, len - i);
            if (n > 0) {
                appendBinaryStringInfo(&out, p + i, n);
                i += n;
            } else {
                appendStringInfo(&out, "\\x%02x", (unsigned char)p[i]);
                i++;
            }
        }
        return PointerGetDatum(cstring_to_text_with_len(out.data, out.len));
    });
}
