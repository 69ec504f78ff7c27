-- Records without the duplicates that at-least-once delivery leaves (a replay after a crash,
-- a redelivered Pub/Sub message): one row per id. Pruned to the last 7 days of partitions so
-- the window function never scans the whole table; widen the interval if you query further
-- back (or filter the base table directly).
--
-- Duplicates of one record carry the same id and the same content, so which one survives
-- does not matter; ordering by time keeps the choice deterministic.
CREATE OR REPLACE VIEW `PROJECT.DATASET.records_dedup` AS
SELECT *
FROM `PROJECT.DATASET.records`
WHERE time >= TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 7 DAY)
QUALIFY ROW_NUMBER() OVER (PARTITION BY id ORDER BY time) = 1;
