-- Attack 6: exactly-once producer ids were shared by all roles.
-- (producer_id, batch_seq) was one global namespace: a batch of atk_bob's with producer 'etl',
-- seq 1 made atk_alice's own first batch with the same pair count as an already committed resend,
-- so her rows were silently discarded (and any role could pre-empt another's producer ids).
-- Fixed behaviour: both land. Every check prints ok = t.
SET client_min_messages = error;
CREATE ROLE atk_alice;
CREATE ROLE atk_bob;
CREATE TABLE prod_bob (id int, v text);
ALTER TABLE prod_bob OWNER TO atk_bob;
CREATE TABLE prod_alice (id int, v text);
ALTER TABLE prod_alice OWNER TO atk_alice;

SET ROLE atk_bob;
SELECT ingest_enqueue_copy('prod_bob', convert_to(E'1\tbob\n', 'UTF8'), NULL, 'etl', 1) > 0 AS ok;
RESET ROLE;
SET ROLE atk_alice;
SELECT ingest_enqueue_copy('prod_alice', convert_to(E'1\talice\n', 'UTF8'), NULL, 'etl', 1) > 0 AS ok;
SELECT ingest_flush('30s') AS flushed;
RESET ROLE;

-- Check: bob's batch landed.
SELECT count(*) = 1 AS ok FROM prod_bob;
-- Check: alice's batch landed too (her pair is hers, not bob's).
SELECT count(*) = 1 AS ok FROM prod_alice;
-- Check: her own resend of the same pair is still recognised as a duplicate (not landed twice).
SET ROLE atk_alice;
SELECT ingest_enqueue_copy('prod_alice', convert_to(E'1\talice\n', 'UTF8'), NULL, 'etl', 1) > 0 AS ok;
SELECT ingest_flush('30s') AS flushed;
RESET ROLE;
SELECT count(*) = 1 AS ok FROM prod_alice;

DELETE FROM ingest_resend WHERE original_ticket IN (SELECT ticket FROM ingest_producer_batch WHERE producer_id = 'etl');
DELETE FROM ingest_producer_batch WHERE producer_id = 'etl';
DROP TABLE prod_bob, prod_alice;
DROP OWNED BY atk_alice, atk_bob;
DROP ROLE atk_alice, atk_bob;
RESET client_min_messages;
