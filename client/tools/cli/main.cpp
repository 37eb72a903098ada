// pgingest: command-line loader for pg_ingest (CSV, TSV, JSON lines -> libpgingest Producer)
// a viewer for ingest_status, and an HTTP ingest endpoint (serve). This file: argument parsing
// and dispatch.
//
// Exit codes: 0 all rows committed (accepted, with an --ack other than committed); 1 some rows
// rejected; 2 usage error; 3 connection failure; 4 input file error; 130 interrupted (SIGINT).
#include "commands.hpp"
#include "common.hpp"

#include "../serve/serve.hpp"

#include <CLI/CLI.hpp>

using namespace pgingest_cli;

namespace {

CLI::App *add_load(CLI::App &app, LoadOptions &o, CLI::Option *&null_opt) {
    CLI::App *load = app.add_subcommand("load", "load rows from files (or stdin: -)");
    load->add_option("--table,-t", o.table, "target table")->required();
    load->add_option("--format,-f", o.format, "csv | tsv | jsonl")
        ->check(CLI::IsMember({"csv", "tsv", "jsonl"}));
    load->add_option("--columns,-c", o.columns, "comma-separated column list");
    load->add_flag("--header", o.header, "the first record is a header (its names are the columns)");
    load->add_option("--delimiter,-d", o.delimiter, "field delimiter (csv: ',', tsv: TAB)");
    null_opt = load->add_option("--null", o.null_string, "string that marks NULL");
    load->add_option("--dsn", o.dsn, "libpq conninfo (default: PG* environment)");
    load->add_option("--batch-rows", o.batch_rows, "rows per batch")->check(CLI::PositiveNumber);
    load->add_option("--workers,-j", o.workers, "connections")->check(CLI::PositiveNumber);
    CLI::Option *ack =
        load->add_option("--ack", o.ack,
                         "when the server acknowledges rows (ingest.ack): committed (inserted; the "
                         "default), logged (in flushed WAL), queued (in WAL), memory (in shared memory)")
            ->check(CLI::IsMember({"committed", "logged", "queued", "memory"}));
    load->add_option("--wait-for-commit", o.wait_for_commit, "on | off: deprecated, --ack committed | queued")
        ->check(CLI::IsMember({"on", "off"}))
        ->excludes(ack);
    load->add_option("--rejects", o.rejects, "write rejected rows here");
    load->add_option("--max-errors", o.max_errors, "stop reading after N rejects (0: no limit)");
    load->add_flag("--dry-run", o.dry_run, "parse and validate only");
    load->add_option("--progress", o.progress, "auto | log | none")
        ->check(CLI::IsMember({"auto", "log", "none"}));
    load->add_option("files", o.files, "input files ('-' = stdin)");
    return load;
}

CLI::App *add_serve(CLI::App &app, pgingest_serve::ServeOptions &s) {
    CLI::App *serve =
        app.add_subcommand("serve", "HTTP ingest endpoint (foreground, logs to stderr; docs/SERVE.md)");
    serve->add_option("--dsn", s.dsn, "libpq conninfo of the login role (default: PG* environment)");
    serve->add_option("--listen", s.listen, "HOST:PORT to listen on (default 127.0.0.1:8080)");
    serve->add_option("--tokens", s.tokens,
                      "file of `TOKEN ROLE` / `sha256:HEX ROLE` lines (default: no auth)");
    serve->add_option("--max-body", s.max_body, "largest request body in bytes (default 16 MiB)")
        ->check(CLI::PositiveNumber);
    serve
        ->add_option("--queue-rows", s.queue_rows,
                     "rows accepted and not yet reported, all roles (default 100000)")
        ->check(CLI::PositiveNumber);
    serve->add_option("--queue-bytes", s.queue_bytes, "their COPY text bytes (default 64 MiB)")
        ->check(CLI::PositiveNumber);
    serve
        ->add_option("--max-tickets", s.max_tickets,
                     "tickets remembered, oldest forgotten first (default 100000)")
        ->check(CLI::PositiveNumber);
    serve->add_option("--threads", s.threads, "HTTP threads (default 2)")->check(CLI::Range(1, 64));
    serve->add_option("--pool-max", s.pool_max, "connections per role (default 8)")
        ->check(CLI::Range(1, 100));
    serve->add_option("--batch-rows", s.batch_rows, "rows per batch (default 10000)")
        ->check(CLI::PositiveNumber);
    serve
        ->add_option("--ring-full", s.ring_full, "ring fill (0-1) from which new rows get 503 (default 0.95)")
        ->check(CLI::Range(0.0, 1.0));
    serve->add_option("--shutdown-timeout", s.shutdown_timeout_s, "seconds to flush at SIGTERM (default 30)")
        ->check(CLI::Range(1, 3600));
    serve
        ->add_option("--privilege-cache-ms", s.privilege_cache_ms,
                     "reuse table/privilege lookups (default 5000)")
        ->check(CLI::Range(0, 3600000));
    return serve;
}

} // namespace

int main(int argc, char **argv) {
    CLI::App app{"pgingest: load CSV, TSV or JSON lines into PostgreSQL through pg_ingest"};
    app.require_subcommand(1);
    LoadOptions o;
    CLI::Option *null_opt = nullptr;
    CLI::App *load = add_load(app, o, null_opt);

    std::string status_dsn;
    bool status_json = false;
    CLI::App *status = app.add_subcommand("status", "show ingest_status");
    status->add_option("--dsn", status_dsn, "libpq conninfo (default: PG* environment)");
    status->add_flag("--json", status_json, "JSON output");

    pgingest_serve::ServeOptions serve_opts;
    CLI::App *serve = add_serve(app, serve_opts);

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp &e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp &e) {
        return app.exit(e);
    } catch (const CLI::ParseError &e) {
        app.exit(e);
        return kExitUsage;
    }
    if (*load) {
        o.null_given = null_opt->count() > 0;
        return run_load(o);
    }
    if (*serve)
        return pgingest_serve::run_serve(serve_opts);
    return run_status(status_dsn, status_json);
}
