-- The tailgate records table. Replace `PROJECT.DATASET` (and the table name if you like).
-- `tailgate bigquery setup` creates the same table from schema.json; this file is for people
-- who manage tables with SQL or Terraform. Keep the two in step.
--
-- Clustering: BigQuery clusters only on top-level, non-repeated columns of simple types, so
-- `CLUSTER BY kubernetes.namespace` is refused. The table therefore carries top-level copies,
-- `namespace` and `pod`, filled by the loader (tailgate bigquery load) and, for a BigQuery
-- subscription, by the single message transform that setup attaches (sinks/bigquery/udf.js).
CREATE TABLE IF NOT EXISTS `PROJECT.DATASET.records` (
  id STRING NOT NULL OPTIONS (description = 'Stable record id; duplicates share it'),
  time TIMESTAMP NOT NULL OPTIONS (description = 'Record time (microsecond precision)'),
  stream STRING OPTIONS (description = 'stdout, stderr or app'),
  message STRING,
  source STRING OPTIONS (description = 'tailgate input name'),
  tag STRING OPTIONS (description = 'forward tag'),
  kubernetes STRUCT<
    namespace STRING,
    pod STRING,
    pod_uid STRING,
    container STRING,
    node STRING,
    labels JSON,
    workload STRING,
    workload_kind STRING,
    image STRING,
    annotations JSON
  >,
  fields JSON,
  namespace STRING OPTIONS (description = 'Copy of kubernetes.namespace (clustering column)'),
  pod STRING OPTIONS (description = 'Copy of kubernetes.pod (clustering column)')
)
PARTITION BY DATE(time)
CLUSTER BY namespace, pod
OPTIONS (
  -- Drop day partitions after 30 days; remove the line to keep them forever
  -- (setup: --partition-expiration 720h).
  partition_expiration_days = 30,
  -- Optional, not set by setup: require_partition_filter = TRUE makes every query name a
  -- time range.
  description = 'tailgate log records (DESIGN.md envelope)'
);

-- Tables created before the workload, workload_kind, image and annotations columns existed
-- take them with this additive change (what `tailgate bigquery setup` does by itself); rows
-- already loaded keep NULL there.
-- ALTER TABLE `PROJECT.DATASET.records` ADD COLUMN IF NOT EXISTS ... cannot add a field inside
-- a STRUCT, so the STRUCT is widened with SET DATA TYPE:
-- ALTER TABLE `PROJECT.DATASET.records` ALTER COLUMN kubernetes SET DATA TYPE STRUCT<
--   namespace STRING, pod STRING, pod_uid STRING, container STRING, node STRING, labels JSON,
--   workload STRING, workload_kind STRING, image STRING, annotations JSON>;
