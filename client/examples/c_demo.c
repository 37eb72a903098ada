/* c_demo: the C API. c_demo CONNINFO TABLE -- sends three rows of (id bigint, note text). */
#include <pgingest/pgingest.h>

#include <stdio.h>

static void on_delivery(const pgi_delivery_report *r, void *ctx) {
    int *failures = (int *)ctx;
    if (r->error != PGI_OK) {
        (*failures)++;
        fprintf(stderr, "row %ld failed: %s: %s\n", (long)(intptr_t)r->row_opaque, pgi_error_name(r->error),
                r->message);
    }
}

int main(int argc, char **argv) {
    char err[256];
    int failures = 0;
    if (argc < 3) {
        fprintf(stderr, "usage: %s CONNINFO TABLE\n", argv[0]);
        return 2;
    }
    pgi_config *conf = pgi_config_new();
    if (pgi_config_set(conf, "conninfo", argv[1], err, sizeof err) != PGI_OK ||
        pgi_config_set(conf, "pool_min", "1", err, sizeof err) != PGI_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    pgi_config_set_delivery_cb(conf, on_delivery, &failures);
    pgi_producer *p = pgi_producer_new(conf, err, sizeof err);
    pgi_config_free(conf);
    if (!p) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    const char *columns[] = {"id", "note"};
    pgi_define_table(p, argv[2], columns, 2);
    pgi_row *row = pgi_row_new();
    for (intptr_t i = 1; i <= 3; i++) {
        pgi_row_clear(row);
        pgi_row_add_int64(row, i);
        pgi_row_add_text(row, i == 2 ? NULL : "tab\there");
        pgi_error e = pgi_produce(p, argv[2], row, (void *)i);
        if (e != PGI_OK)
            fprintf(stderr, "produce: %s\n", pgi_error_name(e));
    }
    pgi_row_free(row);
    pgi_error closed = pgi_close(p, 30000);
    pgi_metrics m;
    pgi_get_metrics(p, &m);
    printf("acknowledged %llu, failed %llu\n", (unsigned long long)m.acknowledged, (unsigned long long)m.failed);
    pgi_producer_free(p);
    return closed == PGI_OK && failures == 0 ? 0 : 1;
}
