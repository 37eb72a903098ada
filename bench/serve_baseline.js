// Baseline for the serve phase (bench/serve.sh): a minimal HTTP endpoint on node-postgres that
// answers POST /v1/tables/<table>/rows (a JSON array of objects) with one multi-row INSERT per
// request over a pool of 20 connections. Installed by the suite with npm (`pg`), never in CI.
// Usage: node serve_baseline.js PORT   (connection from the PG* environment)
'use strict';
const http = require('http');
const { Pool } = require('pg');

const port = Number(process.argv[2] || 8081);
const pool = new Pool({ max: 20 });
const columns = ['id', 'ts', 'n', 'msg'];

function insert(table, rows) {
  const values = [];
  const tuples = rows.map((row, i) => {
    columns.forEach((c) => values.push(row[c] === undefined ? null : row[c]));
    return '(' + columns.map((_, j) => '$' + (i * columns.length + j + 1)).join(',') + ')';
  });
  return pool.query(`INSERT INTO ${table} (${columns.join(',')}) VALUES ${tuples.join(',')}`, values);
}

http.createServer((req, res) => {
  const m = /^\/v1\/tables\/([a-z_][a-z0-9_]*)\/rows/.exec(req.url);
  if (req.method !== 'POST' || !m) {
    res.writeHead(404).end();
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    let rows;
    try {
      rows = JSON.parse(Buffer.concat(chunks).toString());
    } catch (e) {
      res.writeHead(400).end(JSON.stringify({ error: e.message }));
      return;
    }
    insert(m[1], rows).then(
      (r) => res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ rows: r.rowCount })),
      (e) => res.writeHead(500).end(JSON.stringify({ error: e.message })));
  });
}).listen(port, '127.0.0.1', () => console.error(`baseline listening on 127.0.0.1:${port}`));
process.on('SIGTERM', () => pool.end().then(() => process.exit(0)));
