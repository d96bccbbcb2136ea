// Drives the official @sendgrid/client against a seqscore server and prints what it saw.
//
// Usage: node seq_client.js '<json config>'
// config: {baseUrl, apiKey, unknownKey, subuser, customerId, closedFrom, closedTo,
//          date, today}
// Output (stdout, one JSON object): {quirks: {...}, calls: [{name, status, body,
//          contentType, rateLimit}]}. tests/api/test_api_seq_clients.py asserts on it.
'use strict';

const client = require('@sendgrid/client');
const { Client } = require('@sendgrid/client');

const config = JSON.parse(process.argv[2]);
const calls = [];

async function call(name, sg, request) {
  try {
    const [response, body] = await sg.request(request);
    calls.push({ name, status: response.statusCode, body,
                 contentType: response.headers['content-type'] ?? null,
                 rateLimit: response.headers['x-ratelimit-limit'] ?? null });
  } catch (err) {
    if (err.response === undefined) throw err; // a transport error: fail loudly
    calls.push({ name, status: err.code, body: err.response.body,
                 contentType: err.response.headers['content-type'] ?? null,
                 rateLimit: err.response.headers['x-ratelimit-limit'] ?? null });
  }
}

async function main() {
  // Quirk: setApiKey resets baseUrl, so the base URL must be set after the key.
  client.setDefaultRequest('baseUrl', config.baseUrl);
  client.setApiKey(config.apiKey);
  const baseUrlAfterSetApiKey = client.defaultRequest.baseUrl;
  client.setDefaultRequest('baseUrl', config.baseUrl);

  const scores = { method: 'GET', url: '/v3/engagementquality/scores',
                   qs: { from: config.closedFrom, to: config.closedTo } };
  const subusers = { method: 'GET', url: '/v3/engagementquality/subusers/scores',
                     qs: { date: config.date, limit: 1 } };

  await call('scores', client, scores);
  await call('subusers-page-1', client, subusers);
  const first = calls[calls.length - 1].body;
  const afterKey = first._metadata && first._metadata.next_params.after_key;
  await call('subusers-page-2', client,
             { ...subusers, qs: { ...subusers.qs, after_key: afterKey } });
  await call('scores-obo-subuser', client,
             { ...scores, headers: { 'on-behalf-of': config.subuser } });
  await call('scores-obo-customer', client,
             { ...scores, headers: { 'on-behalf-of': `account-id ${config.customerId}` } });
  await call('subusers-obo-subuser', client,
             { ...subusers, headers: { 'on-behalf-of': config.subuser } });

  client.setImpersonateSubuser(config.subuser); // sends "On-Behalf-Of"
  await call('scores-impersonate-subuser', client, scores);
  client.setImpersonateSubuser('');

  await call('scores-today-202', client,
             { ...scores, qs: { from: config.today, to: config.today } });
  await call('subusers-today-202', client,
             { ...subusers, qs: { date: config.today } });
  await call('scores-400', client, { ...scores, qs: { from: 'nope' } });

  const stranger = new Client();
  stranger.setApiKey(config.unknownKey);
  stranger.setDefaultRequest('baseUrl', config.baseUrl);
  await call('scores-unknown-key-401', stranger, scores);

  process.stdout.write(JSON.stringify({
    quirks: { baseUrlAfterSetApiKey },
    calls,
  }));
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : err);
  process.exit(1);
});
