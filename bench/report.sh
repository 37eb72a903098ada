#!/usr/bin/env bash
# report.sh [OUT]: turns OUT/raw/* (written by bench/run.sh) into OUT/RESULTS.md and the PNG
# charts (gnuplot). Can be re-run on its own, e.g. after editing it: bench/report.sh bench/results
set -euo pipefail
OUT=${1:-$(dirname "$0")/results}
RAW=$OUT/raw
[ -f "$RAW/meta.env" ] || { echo "report: $RAW/meta.env not found (run bench/run.sh first)" >&2; exit 1; }
command -v gnuplot >/dev/null || { echo "report: gnuplot not found (apt-get install -y gnuplot-nox)" >&2; exit 1; }
MD=$OUT/RESULTS.md
G=$RAW/plot # gnuplot data files
mkdir -p "$G"
for f in single bulk latency memory extra; do [ -f "$RAW/$f.tsv" ] || : >"$RAW/$f.tsv"; done
meta() { sed -n "s/^$1=//p" "$RAW/meta.env" | tail -1; }

# single-row contenders, in table order: those present in raw/single.tsv. enqueue_queued runs at
# 16 clients only; enqueue_wait_on / enqueue_wait_off are the ids of runs before the switch to
# ingest.ack (raw/ of older runs can still be rendered)
CONTENDERS=""
for k in insert_sync_on insert_sync_off enqueue_committed enqueue_memory enqueue_queued enqueue_wait_on enqueue_wait_off; do
  awk -F'\t' -v k="$k" '$2 == k {f = 1; exit} END {exit !f}' "$RAW/single.tsv" && CONTENDERS="$CONTENDERS${CONTENDERS:+ }$k"
done
# contenders measured at every client count (the 256 / 1000 clients targets)
SCALING_CONTENDERS=$(tr ' ' '\n' <<<"$CONTENDERS" | grep -v -x enqueue_queued | tr '\n' ' ' || true)
# fire-and-forget contenders (committed rate incl. drain, enqueue rate apart) and durable ones
FF_CONTENDERS=$(tr ' ' '\n' <<<"$CONTENDERS" | grep -x -E 'enqueue_(memory|queued|wait_off)' | tr '\n' ' ' || true)
DURABLE_CONTENDERS=$(tr ' ' '\n' <<<"$CONTENDERS" | grep -x -E 'enqueue_(committed|wait_on)' | tr '\n' ' ' || true)
mode() { # short name of an enqueue contender's acknowledgement mode
  case $1 in
    enqueue_wait_on) echo "wait_for_commit=on" ;;
    enqueue_wait_off) echo "wait_for_commit=off" ;;
    enqueue_*) echo "ack=${1#enqueue_}" ;;
    *) echo "$1" ;;
  esac
}
label() {
  case $1 in
    insert_sync_on) echo "INSERT, synchronous_commit=on" ;;
    insert_sync_off) echo "INSERT, synchronous_commit=off" ;;
    enqueue_committed) echo "ingest_enqueue, ingest.ack=committed (durable; = wait_for_commit=on)" ;;
    enqueue_memory) echo "ingest_enqueue, ingest.ack=memory: ring-only fire-and-forget (committed, incl. drain)" ;;
    enqueue_memory_enq) echo "ingest_enqueue, ingest.ack=memory (enqueue rate only)" ;;
    enqueue_queued) echo "ingest_enqueue, ingest.ack=queued (= wait_for_commit=off since 0.3.0; committed, incl. drain)" ;;
    enqueue_queued_enq) echo "ingest_enqueue, ingest.ack=queued (enqueue rate only)" ;;
    enqueue_wait_on) echo "ingest_enqueue, wait_for_commit=on (id of runs before ingest.ack)" ;;
    enqueue_wait_off) echo "ingest_enqueue, wait_for_commit=off (id of runs before ingest.ack: ring-only before 0.3.0, queued since; committed, incl. drain)" ;;
    enqueue_wait_off_enq) echo "ingest_enqueue, wait_for_commit=off (enqueue rate only)" ;;
    copy_text) echo "COPY FROM STDIN, text (\`psql \\copy\`)" ;;
    copy_binary) echo "COPY FROM STDIN, binary (\`psql \\copy\`)" ;;
    copy_csv) echo "COPY FROM STDIN, CSV (\`psql \\copy ... WITH (FORMAT csv)\`)" ;;
    pgingest_load_csv) echo "pgingest load CSV (\`pgingest load -f csv\`, the same file)" ;;
    insert_select) echo "INSERT ... SELECT generate_series" ;;
    enqueue_array) echo "ingest_enqueue, arrays of $(meta BENCH_ARRAY_ROWS) rows, $(meta BENCH_ARRAY_SESSIONS) sessions, ack committed" ;;
    enqueue_array_memory) echo "ingest_enqueue, arrays of $(meta BENCH_ARRAY_ROWS) rows, $(meta BENCH_ARRAY_SESSIONS) sessions, ack memory + one ingest_flush() at the end" ;;
    libpgingest) echo "libpgingest, $(meta BENCH_CLIENT_THREADS) producer threads" ;;
    *) echo "$1" ;;
  esac
}
CLIENTS=$(meta BENCH_CLIENTS)
TABLES=$(awk -F'\t' '{print $1}' "$RAW/single.tsv" "$RAW/bulk.tsv" | awk '!s[$0]++' | tr '\n' ' ')

# value of a single-row cell: single TABLE CONTENDER CLIENTS FIELD(8 committed, 6 enqueue, 7 drain, 12 avg batch)
single() { awk -F'\t' -v t="$1" -v k="$2" -v c="$3" -v f="$4" '$1 == t && $2 == k && $3 == c {print ($4 == "ok" ? $f : $4); exit}' "$RAW/single.tsv"; }
bulk_rps() { awk -F'\t' -v t="$1" -v k="$2" '$1 == t && $2 == k && $6 == "ok" {print $5; exit}' "$RAW/bulk.tsv"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b > 0) printf "%.2f", a / b; else print "n/a"}'; }
fmt() { awk -v n="$1" 'BEGIN {if (n !~ /^[0-9]+$/) {print n; exit} s = ""; while (length(n) > 3) {s = "," substr(n, length(n) - 2) s; n = substr(n, 1, length(n) - 3)} print n s}'; }
cell() { case $1 in "") echo "–" ;; connect_failed) echo "could not connect" ;; failed) echo "failed" ;; *) fmt "$1" ;; esac; }

TARGETS=$RAW/targets.txt; : >"$TARGETS"
target() { # target PASS|FAIL|SKIP text
  echo "- **$1** $2" >>"$TARGETS"
}
info_ratio() { # info_ratio a b -> "r×", or "not measured"
  local r; r=$(ratio "$1" "$2")
  if [ "$r" = n/a ]; then echo "not measured"; else echo "$r×"; fi
}
check_ratio() { # check_ratio text a b min
  local r; r=$(ratio "$2" "$3")
  if [ "$r" = n/a ]; then target SKIP "$1: not measured"
  elif awk -v r="$r" -v m="$4" 'BEGIN {exit !(r >= m)}'; then target PASS "$1: $r× (needs ≥ $4×)"
  else target FAIL "$1: $r× (needs ≥ $4×)"; fi
}

# ---------------------------------------------------------------- targets
for t in $TABLES; do
  grep -q "^$t	" "$RAW/single.tsv" || continue
  check_ratio "16 clients, $t: enqueue ack=committed ≥ 3× INSERT sync on ($(cell "$(single "$t" enqueue_committed 16 8)") vs $(cell "$(single "$t" insert_sync_on 16 8)") rows/s)" \
    "$(single "$t" enqueue_committed 16 8)" "$(single "$t" insert_sync_on 16 8)" 3
  check_ratio "16 clients, $t: enqueue ack=memory (committed rows/s incl. drain) ≥ 1.5× INSERT sync off ($(cell "$(single "$t" enqueue_memory 16 8)") vs $(cell "$(single "$t" insert_sync_off 16 8)") rows/s; enqueue rate alone $(cell "$(single "$t" enqueue_memory 16 6)"); for information, ack=queued: $(cell "$(single "$t" enqueue_queued 16 8)") rows/s, $(info_ratio "$(single "$t" enqueue_queued 16 8)" "$(single "$t" insert_sync_off 16 8)"))" \
    "$(single "$t" enqueue_memory 16 8)" "$(single "$t" insert_sync_off 16 8)" 1.5
done
for t in $TABLES; do
  grep -q "^$t	" "$RAW/single.tsv" || continue
  for k in $SCALING_CONTENDERS; do
    best=$(awk -F'\t' -v t="$t" -v k="$k" '$1 == t && $2 == k && $4 == "ok" && $8 > b {b = $8; c = $3} END {if (b) print b, c}' "$RAW/single.tsv")
    for c in 256 1000; do
      v=$(single "$t" "$k" "$c" 8)
      if [ -z "$v" ]; then target SKIP "$c clients, $t, $k: not measured (BENCH_CLIENTS)"
      elif [ "$v" = connect_failed ]; then target FAIL "$c clients, $t, $k: $c clients could not connect on this machine (see raw/single_${t}_${k}_$c.log)"
      elif [ "$v" = failed ]; then target FAIL "$c clients, $t, $k: run failed (see raw/single_${t}_${k}_$c.log)"
      else check_ratio "$c clients, $t, $k: $(fmt "$v") rows/s vs best $(fmt "${best% *}") at ${best#* } clients, ≥ 0.9× best" "$v" "${best% *}" 0.9
      fi
    done
  done
done
if grep -q "^bench_nopk	" "$RAW/bulk.tsv"; then
  check_ratio "bulk, no index: array enqueue ≥ 0.7× binary COPY ($(cell "$(bulk_rps bench_nopk enqueue_array)") vs $(cell "$(bulk_rps bench_nopk copy_binary)") rows/s)" \
    "$(bulk_rps bench_nopk enqueue_array)" "$(bulk_rps bench_nopk copy_binary)" 0.7
  if [ -n "$(bulk_rps bench_nopk enqueue_array_memory)" ]; then
    check_ratio "bulk, no index: array enqueue, ack memory + ingest_flush() at the end, ≥ 0.7× binary COPY ($(cell "$(bulk_rps bench_nopk enqueue_array_memory)") vs $(cell "$(bulk_rps bench_nopk copy_binary)") rows/s)" \
      "$(bulk_rps bench_nopk enqueue_array_memory)" "$(bulk_rps bench_nopk copy_binary)" 0.7
  fi
  if awk -F'\t' '$1 == "bench_nopk" && $2 == "libpgingest" && $6 == "skipped" {f = 1} END {exit !f}' "$RAW/bulk.tsv"; then
    target SKIP "bulk, no index: libpgingest ≥ 1.0× binary COPY: $(awk -F'\t' '$1 == "bench_nopk" && $2 == "libpgingest" {print $7; exit}' "$RAW/bulk.tsv")"
  else
    check_ratio "bulk, no index: libpgingest ≥ 1.0× binary COPY ($(cell "$(bulk_rps bench_nopk libpgingest)") vs $(cell "$(bulk_rps bench_nopk copy_binary)") rows/s)" \
      "$(bulk_rps bench_nopk libpgingest)" "$(bulk_rps bench_nopk copy_binary)" 1.0
  fi
fi
p99_check() { # p99_check contender text
  local line; line=$(awk -F'\t' -v k="$1" '$1 == k {print; exit}' "$RAW/latency.tsv")
  if [ -z "$line" ]; then target SKIP "$2: not measured"
  elif [ "$(cut -f11 <<<"$line")" != ok ]; then target SKIP "$2: $(cut -f11,12 <<<"$line" | tr '\t' ' ')"
  else
    local p99; p99=$(cut -f7 <<<"$line")
    if awk -v p="$p99" 'BEGIN {exit !(p <= 50)}'; then target PASS "$2: p99 $p99 ms (needs ≤ 50 ms)"
    else target FAIL "$2: p99 $p99 ms (needs ≤ 50 ms)"; fi
  fi
}
if [ -s "$RAW/latency.tsv" ]; then
  p99_check libpgingest "client (libpgingest) p99 ≤ 50 ms at half of its peak"
  p99_check enqueue_committed "SQL ingest_enqueue ack=committed p99 ≤ 50 ms at half of its peak (reference, not the client-library target)"
fi

# ---------------------------------------------------------------- issue 13 targets (web, overhead, pgbouncer)
# value of an extra.tsv cell: extra PHASE CONTENDER CLIENTS FIELD (8 committed, 6 call rate, 9 rows before drain)
extra() { awk -F'\t' -v p="$1" -v k="$2" -v c="$3" -v f="$4" '$1 == p && $2 == k && $3 == c {print ($4 == "ok" ? $f : $4); exit}' "$RAW/extra.tsv"; }
WEB_C=$(meta BENCH_WEB_CLIENTS) WEB_H=$(meta BENCH_WEB_CLIENTS_HIGH) OVH_C=$(meta BENCH_OVERHEAD_CLIENTS) PGB_C=$(meta BENCH_PGB_CLIENTS)
TARGETS13=$RAW/targets13.txt; : >"$TARGETS13"
if [ -s "$RAW/extra.tsv" ] || grep -q "^bench_nopk	" "$RAW/single.tsv" "$RAW/bulk.tsv"; then
  TARGETS_SAVE=$TARGETS; TARGETS=$TARGETS13
  if grep -q "^web	" "$RAW/extra.tsv"; then
    check_ratio "web table, $WEB_C clients, fire-and-forget: enqueue (JSON) ack=memory, committed incl. drain ≥ 3× INSERT sync off ($(cell "$(extra web enqueue_memory "$WEB_C" 8)") vs $(cell "$(extra web insert_sync_off "$WEB_C" 8)") rows/s; for information, ack=queued: $(cell "$(extra web enqueue_queued "$WEB_C" 8)") rows/s, $(info_ratio "$(extra web enqueue_queued "$WEB_C" 8)" "$(extra web insert_sync_off "$WEB_C" 8)"))" \
      "$(extra web enqueue_memory "$WEB_C" 8)" "$(extra web insert_sync_off "$WEB_C" 8)" 3
    check_ratio "web table, $WEB_C clients, durable: enqueue (JSON) ack=committed ≥ 2× INSERT sync on ($(cell "$(extra web enqueue_committed "$WEB_C" 8)") vs $(cell "$(extra web insert_sync_on "$WEB_C" 8)") rows/s)" \
      "$(extra web enqueue_committed "$WEB_C" 8)" "$(extra web insert_sync_on "$WEB_C" 8)" 2
    check_ratio "web table, fire-and-forget (ack=memory) at $WEB_H vs $WEB_C clients ≥ 0.9 ($(cell "$(extra web enqueue_memory "$WEB_H" 8)") vs $(cell "$(extra web enqueue_memory "$WEB_C" 8)") rows/s)" \
      "$(extra web enqueue_memory "$WEB_H" 8)" "$(extra web enqueue_memory "$WEB_C" 8)" 0.9
  fi
  if grep -q "^bench_nopk	" "$RAW/single.tsv"; then
    check_ratio "narrow table (bench_nopk), 16 clients, durable: enqueue ack=committed ≥ 1.0× INSERT sync on ($(cell "$(single bench_nopk enqueue_committed 16 8)") vs $(cell "$(single bench_nopk insert_sync_on 16 8)") rows/s)" \
      "$(single bench_nopk enqueue_committed 16 8)" "$(single bench_nopk insert_sync_on 16 8)" 1.0
    check_ratio "narrow table (bench_nopk), 16 clients, fire-and-forget: enqueue ack=memory (committed incl. drain) ≥ 1.5× INSERT sync off ($(cell "$(single bench_nopk enqueue_memory 16 8)") vs $(cell "$(single bench_nopk insert_sync_off 16 8)") rows/s; for information, ack=queued: $(cell "$(single bench_nopk enqueue_queued 16 8)") rows/s, $(info_ratio "$(single bench_nopk enqueue_queued 16 8)" "$(single bench_nopk insert_sync_off 16 8)"))" \
      "$(single bench_nopk enqueue_memory 16 8)" "$(single bench_nopk insert_sync_off 16 8)" 1.5
  fi
  if grep -q "^overhead	" "$RAW/extra.tsv"; then
    check_ratio "call overhead, $OVH_C clients: enqueue calls/s (ack=memory) ≥ 0.67× calls/s that only build the row ($(cell "$(extra overhead enqueue_memory "$OVH_C" 6)") vs $(cell "$(extra overhead build_row "$OVH_C" 6)"))" \
      "$(extra overhead enqueue_memory "$OVH_C" 6)" "$(extra overhead build_row "$OVH_C" 6)" 0.67
  fi
  if grep -q "^pgbouncer	" "$RAW/extra.tsv"; then
    check_ratio "$PGB_C clients through pgbouncer, fire-and-forget: enqueue ack=memory (role default; committed incl. drain) ≥ 3× INSERT sync off ($(cell "$(extra pgbouncer enqueue_memory "$PGB_C" 8)") vs $(cell "$(extra pgbouncer insert_sync_off "$PGB_C" 8)") rows/s)" \
      "$(extra pgbouncer enqueue_memory "$PGB_C" 8)" "$(extra pgbouncer insert_sync_off "$PGB_C" 8)" 3
    if [ -n "$(extra pgbouncer select_1 "$PGB_C" 8)" ]; then
      echo "- (ceiling) \`SELECT 1\` through the same pgbouncer, clients and pool: $(cell "$(extra pgbouncer select_1 "$PGB_C" 8)") transactions/s = $(info_ratio "$(extra pgbouncer select_1 "$PGB_C" 8)" "$(extra pgbouncer insert_sync_off "$PGB_C" 8)") INSERT sync off: no contender can do more than that" >>"$TARGETS"
    fi
  fi
  if grep -q "^bench_nopk	pgingest_load_csv	" "$RAW/bulk.tsv"; then
    st=$(awk -F'\t' '$1 == "bench_nopk" && $2 == "pgingest_load_csv" {print $6; exit}' "$RAW/bulk.tsv")
    why=$(awk -F'\t' '$1 == "bench_nopk" && $2 == "pgingest_load_csv" {print $7; exit}' "$RAW/bulk.tsv")
    if [ "$st" = skipped ]; then
      target SKIP "bulk, no index: pgingest load CSV ≥ 1.0× psql \\copy CSV: $why"
    elif [ "$st" != ok ]; then
      target FAIL "bulk, no index: pgingest load CSV ≥ 1.0× psql \\copy CSV: $st ($why)"
    else
      check_ratio "bulk, no index: pgingest load CSV ≥ 1.0× psql \\copy CSV ($(cell "$(bulk_rps bench_nopk pgingest_load_csv)") vs $(cell "$(bulk_rps bench_nopk copy_csv)") rows/s)" \
        "$(bulk_rps bench_nopk pgingest_load_csv)" "$(bulk_rps bench_nopk copy_csv)" 1.0
    fi
  fi
  TARGETS=$TARGETS_SAVE
fi

# ---------------------------------------------------------------- issue 14 targets (ack modes)
TARGETS14=$RAW/targets14.txt; : >"$TARGETS14"
if grep -q "^ack	" "$RAW/extra.tsv" 2>/dev/null; then
  TARGETS_SAVE=$TARGETS; TARGETS=$TARGETS14
  ACK_C=$(meta BENCH_ACK_CLIENTS)
  check_ratio "narrow table, $ACK_C clients: ingest.ack = logged (acknowledged calls/s) ≥ 1.0× INSERT sync on ($(cell "$(extra ack enqueue_logged "$ACK_C" 6)") vs $(cell "$(extra ack insert_sync_on "$ACK_C" 6)"))" \
    "$(extra ack enqueue_logged "$ACK_C" 6)" "$(extra ack insert_sync_on "$ACK_C" 6)" 1.0
  check_ratio "narrow table, $ACK_C clients: ingest.ack = queued within 10% of 0.2.0's ring-only fire-and-forget (committed rows/s incl. drain, $(cell "$(extra ack enqueue_queued "$ACK_C" 8)") vs $(cell "$(extra ack enqueue_ring_only_v02 "$ACK_C" 8)"))" \
    "$(extra ack enqueue_queued "$ACK_C" 8)" "$(extra ack enqueue_ring_only_v02 "$ACK_C" 8)" 0.9
  TARGETS=$TARGETS_SAVE
fi

# ---------------------------------------------------------------- charts
gp() { gnuplot 2>>"$RAW/gnuplot.log" || echo "report: gnuplot failed (see $RAW/gnuplot.log)" >&2; }
for t in $TABLES; do
  grep -q "^$t	" "$RAW/single.tsv" || continue
  # columns: clients, committed rows/s of each contender, then the enqueue rate of each fire-and-forget one
  { echo "# clients $CONTENDERS $(for k in $FF_CONTENDERS; do printf '%s_enqueue_rate ' "$k"; done)"
    for c in $CLIENTS; do
      line="$c"
      for k in $CONTENDERS; do v=$(single "$t" "$k" "$c" 8); [[ $v =~ ^[0-9]+$ ]] || v="?"; line="$line $v"; done
      for k in $FF_CONTENDERS; do v=$(single "$t" "$k" "$c" 6); [[ $v =~ ^[0-9]+$ ]] || v="?"; line="$line $v"; done
      echo "$line"
    done; } >"$G/scaling_$t.dat"
  plots="" col=2 nseries=$(( $(wc -w <<<"$CONTENDERS $FF_CONTENDERS") ))
  for k in $CONTENDERS; do
    plots="$plots${plots:+, }\"$G/scaling_$t.dat\" using 1:$col with linespoints lw 2 title \"$(label "$k")\""; col=$((col + 1))
  done
  for k in $FF_CONTENDERS; do
    plots="$plots, \"$G/scaling_$t.dat\" using 1:$col with linespoints lw 1 dt 2 title \"$(label "${k}_enq")\""; col=$((col + 1))
  done
  gp <<EOF
set terminal pngcairo size 1000,$((520 + 16 * nseries)) noenhanced font ",10"
set output "$OUT/scaling_$t.png"
set title "Single rows, $t: committed rows/s vs concurrent clients (pgbench -M prepared, $(meta BENCH_SECONDS) s each)"
set datafile missing "?"
set logscale x 2
set xtics ($(for c in $CLIENTS; do printf '"%s" %s,' "$c" "$c"; done | sed 's/,$//'))
set xrange [$(echo $CLIENTS | awk '{print $1 / 1.5 ":" $NF * 1.5}')]
set xlabel "clients"; set ylabel "rows/s"
set yrange [0:*]; set grid; set key outside bottom center vertical maxrows $nseries
plot $plots
EOF
done
if [ -s "$RAW/bulk.tsv" ]; then
  { echo "# contender nopk pk"
    for k in copy_text copy_binary copy_csv insert_select enqueue_array enqueue_array_memory libpgingest pgingest_load_csv; do
      a=$(bulk_rps bench_nopk $k); b=$(bulk_rps bench_pk $k)
      echo "$k ${a:-0} ${b:-0}"
    done; } >"$G/bulk.dat"
  gp <<EOF
set terminal pngcairo size 1000,540 noenhanced font ",10"
set output "$OUT/bulk.png"
set xtics rotate by -20
set title "Bulk load of $(fmt "$(awk -F'\t' '$6 == "ok" {print $3; exit}' "$RAW/bulk.tsv")") rows: rows/s (0 = skipped or failed)"
set style data histograms; set style histogram clustered gap 1; set style fill solid 0.8 border -1
set ylabel "rows/s"; set yrange [0:*]; set grid ytics; set key top right
plot "$G/bulk.dat" using 2:xtic(1) title "bench_nopk (no index)", "" using 3 title "bench_pk (primary key)"
EOF
fi
curves=$(ls "$RAW"/latency_curve_*.dat 2>/dev/null || true)
if [ -n "$curves" ]; then
  plots=""
  for f in $curves; do
    k=$(basename "$f" .dat); k=${k#latency_curve_}
    # x = "nines": -log10(1 - p/100), so p50 .. p99.99 are evenly spread
    plots="$plots${plots:+, }\"$f\" using (-log10(1-\$1/100)):2 with linespoints lw 2 title \"$(label "$k") ($(awk -F'\t' -v k="$k" '$1 == k {print $2 " clients, " $3 " tx/s"; exit}' "$RAW/latency.tsv"))\""
  done
  gp <<EOF
set terminal pngcairo size 900,560 noenhanced font ",10"
set output "$OUT/latency.png"
set title "Latency (scheduled start to acknowledged commit) at half of peak throughput, bench_nopk"
set logscale y; set grid
set xlabel "percentile"; set ylabel "ms"
set xtics ("p50" 0.301, "p90" 1, "p99" 2, "p99.9" 3, "p99.99" 4)
set xrange [0:4.1]; set key top left
plot $plots
EOF
fi
if [ -s "$RAW/memory.tsv" ]; then
  # per sample time: worker RssAnon, pgbench RssAnon, largest backend RssAnon (MB)
  awk -F'\t' '{t = $1; k = $2; v = $6 / 1024
    if (!(t in seen)) {seen[t] = 1; order[++n] = t}
    if (k == "backend") {if (v > b[t]) b[t] = v} else if (k == "worker") w[t] = v; else c[t] = v}
    END {for (i = 1; i <= n; i++) {t = order[i]; printf "%s %s %s %s\n", t, (t in w ? w[t] : "?"), (t in c ? c[t] : "?"), (t in b ? b[t] : "?")}}' \
    "$RAW/memory.tsv" >"$G/memory.dat"
  gp <<EOF
set terminal pngcairo size 900,500 noenhanced font ",10"
set output "$OUT/memory.png"
set title "Private memory (RssAnon) during $(meta BENCH_MEMORY_SECONDS) s of single-row enqueue, ack committed, $(meta BENCH_MEMORY_CLIENTS) clients"
set datafile missing "?"
set xlabel "seconds"; set ylabel "MB"; set yrange [0:*]; set grid; set key top left
plot "$G/memory.dat" using 1:2 with linespoints lw 2 title "pg_ingest worker", \
     "" using 1:4 with linespoints lw 2 title "largest backend", \
     "" using 1:3 with linespoints lw 2 title "pgbench (client)"
EOF
fi

# ---------------------------------------------------------------- RESULTS.md
small=""
if [ "$(meta BENCH_ROWS)" != 10000000 ] || [ "$(meta BENCH_SECONDS)" != 8 ] || [ "$(meta BENCH_MEMORY_SECONDS)" != 300 ] ||
   [ "$(meta BENCH_CLIENTS)" != "1 4 16 64 256 1000" ]; then
  small="> **Not a full run**: parameters differ from the defaults (see below). Treat the numbers as a smoke test."
fi
{
  echo "# pg_ingest benchmark results"
  echo
  echo "Generated by \`bench/run.sh\` on $(meta date) in $(meta elapsed_seconds) s. Do not edit: re-run the suite."
  echo
  [ -n "$small" ] && { echo "$small"; echo; }
  echo "Parameters: BENCH_ROWS=$(meta BENCH_ROWS) BENCH_SECONDS=$(meta BENCH_SECONDS) BENCH_CLIENTS=\"$(meta BENCH_CLIENTS)\"" \
       "BENCH_TABLES=\"$(meta BENCH_TABLES)\" BENCH_JOBS=$(meta BENCH_JOBS) BENCH_ARRAY_ROWS=$(meta BENCH_ARRAY_ROWS)" \
       "BENCH_ARRAY_SESSIONS=$(meta BENCH_ARRAY_SESSIONS) BENCH_LATENCY_SECONDS=$(meta BENCH_LATENCY_SECONDS)" \
       "BENCH_MEMORY_SECONDS=$(meta BENCH_MEMORY_SECONDS) BENCH_MEMORY_INTERVAL=$(meta BENCH_MEMORY_INTERVAL)" \
       "BENCH_MEMORY_CLIENTS=$(meta BENCH_MEMORY_CLIENTS) BENCH_CLIENT_PROGRAM=$(meta BENCH_CLIENT_PROGRAM)" \
       "BENCH_CLIENT_THREADS=$(meta BENCH_CLIENT_THREADS)$(lp=$(meta BENCH_LOADER_PROGRAM); [ -n "$lp" ] && echo " BENCH_LOADER_PROGRAM=$lp")$(pgs=$(meta BENCH_PG_SETTINGS); [ -n "$pgs" ] && echo " BENCH_PG_SETTINGS=\"$pgs\"")$(fd=$(meta BENCH_FLUSH_DELAY_US); [ -n "$fd" ] && [ "$fd" != 0 ] && echo " BENCH_FLUSH_DELAY_US=$fd (every WAL flush of the server sleeps that long more: a slower disk)")"
  echo
  echo "Machine: $(meta cpu), $(meta cores) cores, $(meta memory) RAM, $(meta os), $(meta kernel); data disk $(meta disk)."
  echo "Load average at start / end: $(meta loadavg_at_start) / $(meta loadavg_at_end) (the machine may be shared: noisy)."
  echo "Software: $(meta postgres), $(meta pgbench), pg_ingest $(meta pg_ingest)."
  echo
  echo "## Targets"
  echo
  cat "$TARGETS"
  echo
  if [ -s "$TARGETS13" ]; then
    echo "### Targets of issue 13 (web table, call overhead, pgbouncer; narrow table at 16 clients; CSV loader)"
    echo
    cat "$TARGETS13"
    echo
  fi
  if [ -s "$TARGETS14" ]; then
    echo "### Targets of issue 14 (ingest.ack modes, narrow table)"
    echo
    cat "$TARGETS14"
    echo
    echo "| contender | calls/s | committed rows/s (incl. drain) | WAL bytes per row |"
    echo "|---|---|---|---|"
    while IFS=$'\t' read -r k c rows wal per; do
      echo "| $k | $(cell "$(extra ack "$k" "$c" 6)") | $(cell "$(extra ack "$k" "$c" 8)") | $per |"
    done <"$RAW/ack_wal.tsv"
    echo
    echo "\`bench/ack_phase.sh\`: pgbench -M prepared, $(meta BENCH_ACK_CLIENTS) clients, $(meta BENCH_ACK_SECONDS) s each, one row per transaction;"
    echo "\`enqueue_ring_only_v02\` is the same library in a database whose extension is 0.2.0 (no \`ingest_queue\`):"
    echo "the fire-and-forget of before issue 14. WAL per row: \`pg_current_wal_lsn()\` difference over the run and the drain."
    echo
  fi
  echo "## 1. Single rows from N concurrent clients"
  echo
  echo "pgbench -M prepared -j $(meta BENCH_JOBS) -T $(meta BENCH_SECONDS) per cell, one row per transaction, each run from an empty"
  echo "table after CHECKPOINT. **Committed rows/s**: pgbench's transactions / its measured time (initial"
  echo "connection time excluded). ingest_enqueue's acknowledgement mode is set per session (\`PGOPTIONS=-c ingest.ack=...\`):"
  echo "*committed* (durable: COMMIT returns once the worker committed the row), *memory* (the ring-only"
  echo "fire-and-forget: COMMIT returns at once, the row is only in shared memory until the worker inserts it)"
  echo "and, at 16 clients only, *queued* (what \`wait_for_commit = off\` means since 0.3.0: COMMIT returns at once,"
  echo "the row is in WAL through \`ingest_queue\`, one heap row per transaction). For memory and queued the time"
  echo "\`ingest_flush()\` needed after the last enqueue to commit the rest (*drain*) is added:"
  echo "rows / (pgbench time + drain); the bare enqueue rate is shown separately. INSERT with"
  echo "synchronous_commit=off is committed but not yet durable when it returns; ingest memory and queued are"
  echo "not even committed."
  echo "pgbench 15 starts its -T clock before all clients are connected, so each client count is"
  echo "connected once first (row *initial connection time*) and -T is $(meta BENCH_SECONDS) s + 2× that time:"
  echo "about $(meta BENCH_SECONDS) s are measured with all clients connected."
  for t in $TABLES; do
    grep -q "^$t	" "$RAW/single.tsv" || continue
    echo
    echo "### $t ($( [ "$t" = bench_pk ] && echo "primary key on id" || echo "no index"))"
    echo
    printf '| rows/s \\ clients |'; for c in $CLIENTS; do printf ' %s |' "$c"; done; echo
    printf '|---|'; for c in $CLIENTS; do printf -- '---:|'; done; echo
    for k in $CONTENDERS; do
      printf '| %s |' "$(label "$k")"; for c in $CLIENTS; do printf ' %s |' "$(cell "$(single "$t" "$k" "$c" 8)")"; done; echo
    done
    for k in $FF_CONTENDERS; do
      printf '| %s |' "$(label "${k}_enq")"; for c in $CLIENTS; do printf ' %s |' "$(cell "$(single "$t" "$k" "$c" 6)")"; done; echo
      printf '| drain time after %s (s) |' "$(mode "$k")"; for c in $CLIENTS; do printf ' %s |' "$(single "$t" "$k" "$c" 7 | sed 's/^$/–/')"; done; echo
    done
    for k in $DURABLE_CONTENDERS; do
      printf '| **ratio** enqueue %s / INSERT sync on |' "$(mode "$k")"; for c in $CLIENTS; do printf ' %s |' "$(ratio "$(single "$t" "$k" "$c" 8)" "$(single "$t" insert_sync_on "$c" 8)")"; done; echo
    done
    for k in $FF_CONTENDERS; do
      printf '| **ratio** enqueue %s (committed) / INSERT sync off |' "$(mode "$k")"; for c in $CLIENTS; do printf ' %s |' "$(ratio "$(single "$t" "$k" "$c" 8)" "$(single "$t" insert_sync_off "$c" 8)")"; done; echo
    done
    printf '| pgbench initial connection time, ms |'; for c in $CLIENTS; do printf ' %s |' "$(awk -F'\t' -v c="$c" '$1 == c {print ($4 == "ok" ? $2 : "could not connect"); exit}' "$RAW/connect.tsv" 2>/dev/null | sed 's/^$/–/')"; done; echo
    for k in $DURABLE_CONTENDERS $FF_CONTENDERS; do
      printf '| avg rows per worker batch, %s |' "$(mode "$k")"; for c in $CLIENTS; do printf ' %s |' "$(single "$t" "$k" "$c" 12 | sed 's/^$/–/')"; done; echo
    done
    echo
    [ -f "$OUT/scaling_$t.png" ] && echo "![rows/s vs clients, $t](scaling_$t.png)"
  done
  notes=$(awk -F'\t' '$4 != "ok" {printf "- %s, %s, %s clients: %s — %s\n", $1, $2, $3, $4, $14}' "$RAW/single.tsv")
  [ -n "$notes" ] && { echo; echo "Runs that did not complete:"; echo; echo "$notes"; }
  if [ -s "$RAW/bulk.tsv" ]; then
    echo
    echo "## 2. Bulk load"
    echo
    echo "The same rows (id 1..N, ts, n, 40-byte msg) for every contender, each into an empty table after"
    echo "CHECKPOINT; wall time from start to the last row committed (ingest: after \`ingest_flush()\`),"
    echo "rows counted in the table. COPY: \`psql \\copy ... FROM\` (libpq COPY FROM STDIN) of files made"
    echo "beforehand with \`\\copy (SELECT ...) TO\` (text, \`FORMAT binary\` and \`FORMAT csv\`: $(tr '\n' ' ' <"$RAW/bulk_files.txt" 2>/dev/null | awk '{for (i = 1; i < NF; i += 2) printf "%s%s %.0f MB", (i > 1 ? ", " : ""), gensub_name($i), $(i+1) / 1048576}
      function gensub_name(p) {n = split(p, a, "/"); return a[n]}'))."
    echo "INSERT ... SELECT and the arrays build the rows in the server from generate_series."
    echo "pgingest load CSV: the command-line loader (\`$(meta BENCH_LOADER_PROGRAM) load -t TABLE -f csv --progress none FILE\`,"
    echo "libpgingest underneath, its default \`--ack committed\`) reads the same CSV file client side, like \`\\copy\`;"
    echo "timed from its start to its exit plus \`ingest_flush()\`. A contender whose row count differs from the rows"
    echo "of the file is marked failed."
    echo
    echo "| table | contender | rows | seconds | rows/s | × binary COPY | × text COPY | × CSV COPY | note |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---|"
    while IFS=$'\t' read -r t k rows secs rps status note; do
      if [ "$status" = ok ]; then
        echo "| $t | $(label "$k") | $(fmt "$rows") | $secs | $(fmt "$rps") | $(ratio "$rps" "$(bulk_rps "$t" copy_binary)") | $(ratio "$rps" "$(bulk_rps "$t" copy_text)") | $(ratio "$rps" "$(bulk_rps "$t" copy_csv)") | |"
      else
        echo "| $t | $(label "$k") | – | – | – | – | – | – | $status: $note |"
      fi
    done <"$RAW/bulk.tsv"
    echo
    [ -f "$OUT/bulk.png" ] && echo "![bulk rows/s](bulk.png)"
  fi
  if [ -s "$RAW/latency.tsv" ]; then
    echo
    echo "## 3. Latency at about half of peak throughput"
    echo
    echo "SQL contenders on bench_nopk: \`pgbench --rate\` at half of the best committed rows/s measured in"
    echo "section 1, with the client count of that best cell, for $(meta BENCH_LATENCY_SECONDS) s, every transaction logged (\`-l\`)."
    echo "Latency is pgbench's: from the transaction's *scheduled* start to the end of COMMIT, i.e."
    echo "enqueue to durable acknowledgement (ingest.ack=committed: the worker committed the row and the"
    echo "WAL is flushed), including any client-side schedule lag; the last column leaves that lag out."
    echo "libpgingest: as reported by the hook program (enqueue() to delivery report)."
    echo
    echo "| contender | clients | target tx/s | achieved tx/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | p99 w/o lag ms | note |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    while IFS=$'\t' read -r k c rate tps p50 p90 p99 p999 pmax p99s status note; do
      if [ "$status" = ok ]; then
        echo "| $(label "$k") | $c | $(fmt "$rate") | $(fmt "$tps") | $p50 | $p90 | $p99 | $p999 | $pmax | $p99s | |"
      else
        echo "| $(label "$k") | $c | – | – | – | – | – | – | – | – | $status: $note |"
      fi
    done <"$RAW/latency.tsv"
    echo
    [ -f "$OUT/latency.png" ] && echo "![latency percentiles](latency.png)"
  fi
  if [ -s "$RAW/memory.tsv" ] || ls "$RAW"/memory_hook_*.tsv >/dev/null 2>&1; then
    echo
    echo "## 4. Memory"
    echo
    echo "Single-row ingest_enqueue with ingest.ack=committed, $(meta BENCH_MEMORY_CLIENTS) clients at full speed for $(meta BENCH_MEMORY_SECONDS) s;"
    echo "/proc/PID/status sampled every $(meta BENCH_MEMORY_INTERVAL) s. VmRSS/VmHWM of PostgreSQL processes include the"
    echo "shared memory they touched (shared_buffers, the ring); **RssAnon** is private memory and is what"
    echo "must stay flat. Backends: the largest of the $(meta BENCH_MEMORY_CLIENTS) at each sample. \"flat\": last RssAnon ≤"
    echo "first × 1.1 + 1 MB, where *first* is the first sample under load (the one taken at the start, before"
    echo "queues and buffers fill, is left out when there are 3 or more). libpgingest rows: sampled during its"
    echo "bulk runs, and for $(meta BENCH_MEMORY_SECONDS) s enqueueing at the rate of its bulk peak (*at_peak*); its bound is its"
    echo "queue (queue_max_rows, queue_max_bytes) plus the batches in flight."
    echo
    echo "| process | samples | first RssAnon MB | last RssAnon MB | peak RssAnon MB | first VmRSS MB | last VmRSS MB | VmHWM MB | flat? |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---|"
    for f in "$RAW/memory.tsv" "$RAW"/memory_hook_*.tsv; do
      [ -s "$f" ] || continue
      # per label and sample time: for backends take the largest process
      awk -F'\t' -v src="$(basename "$f" .tsv)" '
        { key = $2 SUBSEP $1
          if (!(key in anon) || $6 > anon[key]) {anon[key] = $6; rss[key] = $4}
          if ($5 > hwm[$2]) hwm[$2] = $5
          if (!($2 in first)) {first[$2] = $1; labels[++nl] = $2}
          else if (!($2 in second) && $1 != first[$2]) second[$2] = $1
          last[$2] = $1; if (!(key in cnt)) {cnt[key] = 1; n[$2]++}
          if ($6 > peak[$2]) peak[$2] = $6 }
        END {
          for (i = 1; i <= nl; i++) {
            l = labels[i]; f = l SUBSEP ((n[l] >= 3 && (l in second)) ? second[l] : first[l]); z = l SUBSEP last[l]
            name = (l == "worker" ? "pg_ingest worker" : l == "backend" ? "client backend (largest)" : l == "pgbench" ? "pgbench (client process)" : l)
            if (src ~ /^memory_hook_/) name = name " (" substr(src, 13) ")"
            flat = (anon[z] <= anon[f] * 1.1 + 1024) ? "flat" : "**grew**"
            printf "| %s | %d | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %s |\n", name, n[l], anon[f] / 1024, anon[z] / 1024, peak[l] / 1024, rss[f] / 1024, rss[z] / 1024, hwm[l] / 1024, flat
          }
        }' "$f"
    done
    echo
    [ -f "$OUT/memory.png" ] && echo "![memory](memory.png)"
  fi
  if [ -s "$RAW/extra.tsv" ]; then
    echo
    echo "## 5. Web table, call overhead, pgbouncer"
    echo
    echo "\`bench/web_phases.sh\`. **web**: \`web_events (id bigserial PRIMARY KEY, at timestamptz DEFAULT now(), user_id int"
    echo "REFERENCES users, kind text, path text, payload jsonb)\` with btree (user_id, at), btree (kind), GIN (payload);"
    echo "$(meta BENCH_WEB_USERS) users; one event per pgbench transaction (\`bench/sql/web_insert.sql\`, \`web_enqueue.sql\`: the same"
    echo "values, the enqueue as one JSON object whose missing keys id and at take their defaults in the worker),"
    echo "-M prepared, $(meta BENCH_WEB_SECONDS) s; modes per session (\`PGOPTIONS=-c ingest.ack=...\`): *enqueue_memory* is the"
    echo "ring-only fire-and-forget (\`ingest.ack = memory\`), *enqueue_queued* \`ingest.ack = queued\` (= \`wait_for_commit = off\`"
    echo "since 0.3.0, at $(meta BENCH_WEB_CLIENTS) clients only), *enqueue_committed* the durable \`ingest.ack = committed\`."
    echo "**overhead**: bench_nopk, the single-row enqueue of section 1 with \`ingest.ack = memory\` vs"
    echo "\`SELECT length(ROW(...)::bench_nopk::text)\` (builds the same row, enqueues nothing), $(meta BENCH_OVERHEAD_SECONDS) s; compared"
    echo "by calls/s. **pgbouncer**: $(meta BENCH_PGB_CLIENTS) pgbench clients (-M simple) to a pgbouncer started by the suite on"
    echo "127.0.0.1 (transaction pooling, pool $(meta BENCH_PGB_POOL), trust), bench_nopk, $(meta BENCH_PGB_SECONDS) s; the acknowledgement mode is"
    echo "the role's default (\`ALTER ROLE bench_ff SET ingest.ack = memory\`, \`bench_durable\` committed, \`synchronous_commit\` for"
    echo "INSERT), except the *setlocal_memory* row (\`BEGIN; SET LOCAL ingest.ack = memory; SELECT ingest_enqueue(...); COMMIT\`);"
    echo "the durable and SET LOCAL rows are short checks ($(meta BENCH_PGB_CHECK_SECONDS) s). Each run from TRUNCATE + CHECKPOINT."
    echo "*Rows before drain*: rows in the table when pgbench returned, before \`ingest_flush()\`: for a"
    echo "durable acknowledgement it must equal the transactions."
    echo
    echo "| phase | contender | clients | transactions | calls/s | drain s | committed rows/s | rows before drain | rows in table | latency avg ms | avg rows per batch | note |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    while IFS=$'\t' read -r ph k c status tx tps drain crps before rows lat conn avgb failed note; do
      if [ "$status" = ok ]; then
        echo "| $ph | $k | $c | $(fmt "$tx") | $(fmt "$tps") | $drain | $(fmt "$crps") | $(fmt "$before") | $(fmt "$rows") | $lat | $avgb | $note |"
      else
        echo "| $ph | $k | $c | – | – | – | – | – | – | – | – | $status: $note |"
      fi
    done <"$RAW/extra.tsv"
    if [ -s "$RAW/pgb_show.tsv" ]; then
      echo
      echo "What a pooled server connection runs with (\`SHOW\` through pgbouncer, as each role):"
      echo
      echo "| role | how | setting | value |"
      echo "|---|---|---|---|"
      awk -F'\t' '{printf "| %s | %s | %s | %s |\n", $1, $2, $3, $4}' "$RAW/pgb_show.tsv"
    fi
    if [ -s "$RAW/worker_cpu.tsv" ]; then
      echo
      echo "The pg_ingest worker's CPU from pgbench's start to the last row inserted (after the drain),"
      echo "per enqueue contender: one process, so 100% is one core, its ceiling:"
      echo
      echo "| phase | contender | clients | worker CPU s | s | % of one core |"
      echo "|---|---|---:|---:|---:|---:|"
      awk -F'\t' '{printf "| %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6}' "$RAW/worker_cpu.tsv"
    fi
    if [ -s "$RAW/pgb_cpu.tsv" ]; then
      echo
      echo "pgbouncer's own CPU during each pgbouncer run (one process: 100% is one core, its ceiling;"
      echo "pgbench's connection phase included):"
      echo
      echo "| contender | pgbouncer CPU s | run s | % of one core |"
      echo "|---|---:|---:|---:|"
      awk -F'\t' '{printf "| %s | %s | %s | %s |\n", $1, $2, $3, $4}' "$RAW/pgb_cpu.tsv"
    fi
  fi
  echo
  echo "## Settings (identical for every contender)"
  echo
  echo "Fresh cluster made by \`scripts/cluster.sh\` + the lines \`bench/run.sh\` appends; values as the server reports them."
  echo "Per-contender session settings: \`PGOPTIONS=-c synchronous_commit=on|off\` or \`-c ingest.ack=committed|memory|queued\`"
  echo "only (pgbouncer phase: the same as role defaults, or SET LOCAL)."
  echo "Tables have autovacuum disabled; ids of single rows come from an UNLOGGED sequence (no WAL, no xid)."
  echo
  echo "| setting | value |"
  echo "|---|---|"
  awk -F'\t' '{printf "| %s | %s |\n", $1, $2}' "$RAW/settings.tsv"
  echo
  echo "Raw pgbench logs and samples of this run: \`bench/results/raw/\` (not committed)."
} >"$MD"
echo "report: wrote $MD"
