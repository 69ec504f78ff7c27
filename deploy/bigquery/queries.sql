-- Questions people ask of their logs. Replace `PROJECT.DATASET`. Every query filters on
-- time (the partition column) and, where it can, on namespace/pod (the clustering columns),
-- so BigQuery reads only the partitions and blocks it needs.

-- 1. Errors per namespace in the last hour: stderr lines, plus lines whose text or
--    structured level says error.
SELECT
  namespace,
  COUNT(*) AS errors
FROM `PROJECT.DATASET.records_dedup`
WHERE time >= TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 1 HOUR)
  AND (
    stream = 'stderr'
    OR LOWER(JSON_VALUE(fields, '$.level')) IN ('error', 'fatal', 'panic')
    OR REGEXP_CONTAINS(message, r'(?i)\b(error|exception|panic|fatal)\b')
  )
GROUP BY namespace
ORDER BY errors DESC;

-- 2. Top talking pods in the last 24 hours, by lines and bytes.
SELECT
  namespace,
  pod,
  COUNT(*) AS lines,
  SUM(BYTE_LENGTH(message)) AS bytes
FROM `PROJECT.DATASET.records`
WHERE time >= TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 24 HOUR)
GROUP BY namespace, pod
ORDER BY bytes DESC
LIMIT 20;

-- 3. One pod's logs around a moment (five minutes either side), in order.
DECLARE around TIMESTAMP DEFAULT TIMESTAMP '2026-11-23 03:00:00+00';
SELECT time, kubernetes.container, stream, message, fields
FROM `PROJECT.DATASET.records_dedup`
WHERE namespace = 'shop'
  AND pod = 'cart-7d9f'
  AND time BETWEEN TIMESTAMP_SUB(around, INTERVAL 5 MINUTE) AND TIMESTAMP_ADD(around, INTERVAL 5 MINUTE)
ORDER BY time, id;

-- 4. Log volume per workload per day over the last 14 days. The workload is the pod's
--    app label (app.kubernetes.io/name, then app), else the pod name without its
--    ReplicaSet/pod hash suffixes.
SELECT
  DATE(time) AS day,
  namespace,
  COALESCE(
    JSON_VALUE(kubernetes.labels, '$."app.kubernetes.io/name"'),
    JSON_VALUE(kubernetes.labels, '$.app'),
    REGEXP_REPLACE(pod, r'(-[a-z0-9]{8,10})?-[a-z0-9]{5}$', '')
  ) AS workload,
  COUNT(*) AS lines,
  SUM(BYTE_LENGTH(message)) AS bytes
FROM `PROJECT.DATASET.records`
WHERE time >= TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 14 DAY)
GROUP BY day, namespace, workload
ORDER BY day DESC, bytes DESC;
