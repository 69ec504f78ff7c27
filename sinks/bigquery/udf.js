/**
 * tailgate: prepares an envelope for a BigQuery subscription with use_table_schema.
 * - copies kubernetes.namespace and kubernetes.pod to the top-level clustering columns;
 * - cuts the time to microseconds, the precision of a BigQuery TIMESTAMP.
 * A message that is not a JSON object passes unchanged (BigQuery then rejects it and the
 * subscription's dead-letter policy takes it).
 */
function tailgateEnvelope(message, metadata) {
  var r;
  try {
    r = JSON.parse(message.data);
  } catch (e) {
    return message;
  }
  if (r === null || typeof r !== 'object') {
    return message;
  }
  var k = r.kubernetes || {};
  if (r.namespace === undefined && k.namespace !== undefined) {
    r.namespace = k.namespace;
  }
  if (r.pod === undefined && k.pod !== undefined) {
    r.pod = k.pod;
  }
  if (typeof r.time === 'string') {
    r.time = r.time.replace(/(\.\d{6})\d+/, '$1');
  }
  return {data: JSON.stringify(r), attributes: message.attributes};
}
