// `phoenix kill web.N`: planned (successor born and ready first, then the old one drains and gets
// SIGTERM) and --now (SIGKILL at once, reason killed, reborn at once).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { makeApp, up, phoenix, ps, httpGet, readEvents, minReady } from './harness.mjs';

test('kill web.1: a successor is ready before the old one drains; capacity never dips', { timeout: 20000 }, async (t) => {
  const app = makeApp(t, 'echo');
  const px = await up(app);
  await px.waitReady(2);

  const r = await phoenix(app, ['kill', 'web.1']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'web.1 #1: replacement #2 booting; #1 drains and stops once it is ready\n');
  const died = await px.waitEvent((e) => e.event === 'died' && e.instance === 'web.1', { what: 'web.1 #1 died' });
  assert.equal(died.incarnation, 1);
  assert.equal(died.reason, 'killed', JSON.stringify(died));

  const ev = readEvents(app.eventsFile);
  const at = (kind, inc) => ev.findIndex((e) => e.event === kind && e.instance === 'web.1' && e.incarnation === inc);
  assert.ok(at('born', 2) >= 0 && at('ready', 2) >= 0, `successor born and ready\n${px.describe()}`);
  assert.ok(at('ready', 2) < at('draining', 1), `successor ready before the old one drains\n${px.describe()}`);
  assert.ok(at('draining', 1) < at('died', 1), 'drained before it died');
  assert.ok(at('stopping', 1) < at('died', 1), 'SIGTERM (stopping) before it died');
  assert.ok(!ev.some((e) => e.instance === 'web.2' && e.event !== 'born' && e.event !== 'ready'), 'web.2 untouched');
  assert.equal(minReady(ev, 2), 2, `capacity dipped\n${px.describe()}`);
  assert.match(px.stdout, /web\.1\s*\| echo web\.1 got SIGTERM/, 'the old incarnation got SIGTERM');

  const list = await ps(app);
  const web1 = list.find((i) => i.instance === 'web.1');
  assert.equal(web1.incarnation, 2);
  assert.equal(web1.state, 'ready');
  const res = await httpGet(web1.port, '/');
  assert.equal(res.json.instance, 'web.1');
  assert.equal(res.json.incarnation, '2');
});

test('kill --now web.2: SIGKILL at once, no drain, reason killed, reborn at once', { timeout: 20000 }, async (t) => {
  const app = makeApp(t, 'echo');
  const px = await up(app);
  const before = (await px.waitReady(2)).find((i) => i.instance === 'web.2');

  const r = await phoenix(app, ['kill', 'web.2', '--now']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'web.2 #1: SIGKILL sent; out of rotation now, reborn at once\n');
  const died = await px.waitEvent((e) => e.event === 'died' && e.instance === 'web.2', { what: 'web.2 died' });
  assert.equal(died.reason, 'killed', JSON.stringify(died));
  assert.equal(died.signal, 'SIGKILL', JSON.stringify(died));
  assert.equal(died.pid, before.pid);
  const born = await px.waitEvent((e) => e.event === 'born' && e.instance === 'web.2' && e.incarnation === 2, { what: 'web.2 #2 born' });
  const ev = readEvents(app.eventsFile);
  assert.ok(!ev.some((e) => e.event === 'draining' && e.instance === 'web.2' && e.incarnation === 1), 'no drain with --now');
  assert.ok(!ev.some((e) => e.event === 'backoff'), '--now is not a crash: no backoff');
  assert.ok(Date.parse(born.time) - Date.parse(died.time) < 1000, 'reborn at once');
  assert.doesNotMatch(px.stdout, /web\.2\s*\| echo web\.2 got SIGTERM/, 'no SIGTERM with --now');

  const list = await px.waitReady(2);
  assert.equal(list.find((i) => i.instance === 'web.2').incarnation, 2);
  assert.equal(list.find((i) => i.instance === 'web.1').incarnation, 1, 'web.1 untouched');
});

test('kill of an instance that does not exist is a usage error (exit 2) and says which', { timeout: 15000 }, async (t) => {
  const app = makeApp(t, 'echo');
  const px = await up(app);
  await px.waitReady(2);
  const r = await phoenix(app, ['kill', 'web.9']);
  assert.equal(r.code, 2, `exit ${r.code}: ${r.stderr}`);
  assert.match(r.stderr, /web\.9/);
  const list = await ps(app);
  assert.ok(list.every((i) => i.incarnation === 1 && i.state === 'ready'), JSON.stringify(list));
});

test('kill --now under a long request: it waits for the successor (retry_timeout from the failure, not the request start)', { timeout: 30000 }, async (t) => {
  // One instance; a GET that has been at it longer than retry_timeout when its instance is
  // SIGKILLed. Nothing is ready until the successor boots: the request must wait for it, as a
  // fresh request would, not get a 503 because it is old.
  const app = makeApp(t, 'router-echo', { files: { 'phoenix.toml': '[router]\nretry_timeout = "1s"\n\n[process.web]\ninstances = 1\n' } });
  const px = await up(app);
  await px.waitReady(1);
  const answer = new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: px.port, path: '/slow?ms=2500', timeout: 20000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d) => { body += d; }).on('end', () => resolve({ status: res.statusCode, body }));
    }).on('error', reject);
  });
  await px.waitOutput(/slow start/);
  await new Promise((resolve) => setTimeout(resolve, 1500)); // older than retry_timeout now
  const r = await phoenix(app, ['kill', 'web.1', '--now']);
  assert.equal(r.code, 0, r.stderr);
  const res = await answer;
  assert.equal(res.status, 200, res.body);
  assert.match(px.stdout, /web\.1 #2 ready/);
});
