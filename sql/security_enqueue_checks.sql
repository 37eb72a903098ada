-- Checks at enqueue time, run as a non-superuser role:
--  * a row whose foreign key points at a parent written earlier in the same transaction is
--    refused (the worker, in its own transaction, could not see that parent);
--  * bulk lines that could end the worker's COPY or join the next call's row are refused.
CREATE ROLE ec_owner;
CREATE TABLE ec_parent (id int PRIMARY KEY);
CREATE TABLE ec_child (id int, parent int REFERENCES ec_parent);
CREATE TABLE ec_other (id int);
CREATE TABLE ec_text (id int, v text);
ALTER TABLE ec_parent OWNER TO ec_owner;
ALTER TABLE ec_child OWNER TO ec_owner;
ALTER TABLE ec_other OWNER TO ec_owner;
ALTER TABLE ec_text OWNER TO ec_owner;
SET ROLE ec_owner;

-- A parent committed before: the child is accepted and lands.
INSERT INTO ec_parent VALUES (1);
SELECT ingest_enqueue('ec_child', ROW(10, 1)::ec_child) > 0 AS accepted;

-- A parent written in the same transaction: refused, with the reason.
BEGIN;
INSERT INTO ec_parent VALUES (2);
SELECT ingest_enqueue('ec_child', ROW(20, 2)::ec_child);
ROLLBACK;

-- The same inside a savepoint that wrote the parent.
BEGIN;
SAVEPOINT s;
INSERT INTO ec_parent VALUES (3);
SELECT ingest_enqueue('ec_child', '{"id": 30, "parent": 3}'::jsonb);
ROLLBACK;

-- A transaction that wrote only an unrelated table may enqueue.
BEGIN;
INSERT INTO ec_other VALUES (1);
SELECT ingest_enqueue('ec_child', ROW(40, 1)::ec_child) > 0 AS accepted;
COMMIT;

-- Bulk lines: a trailing unescaped backslash would escape the newline and swallow the next row;
-- a raw carriage return ends a COPY line; \. anywhere ends the COPY. All refused.
SELECT ingest_enqueue_copy('ec_text', convert_to(E'1\ta\\\n2\tb\n', 'UTF8'));
SELECT ingest_enqueue_copy('ec_text', convert_to(E'1\ta\rb\n', 'UTF8'));
SELECT ingest_enqueue_copy('ec_text', convert_to(E'1\tab\\.\n', 'UTF8'));
-- Escaped, the same bytes are fine: an escaped backslash at the end, \r and \. as escapes.
SELECT ingest_enqueue_copy('ec_text', convert_to(E'3\ta\\\\\n4\tx\\ry\n5\t\\\\.\n', 'UTF8')) > 0 AS accepted;

SELECT ingest_flush();
SELECT id, parent FROM ec_child ORDER BY id;
SELECT id, v = E'a\\' AS backslash, v = E'x\ry' AS carriage_return, v = '\.' AS dot FROM ec_text ORDER BY id;
RESET ROLE;
DROP TABLE ec_child, ec_parent, ec_other, ec_text;
DROP ROLE ec_owner;
