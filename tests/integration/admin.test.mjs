// The admin address: Prometheus metrics, status JSON and a status page on loopback, with the
// router's traffic per instance, deaths by reason and lost state; robust to bad requests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { makeApp, up, phoenix, httpGet, httpRequest, waitFor, rawConnect, freePort, readEvents } from './harness.mjs';

const adminPort = async (px) => {
  await px.waitOutput(/admin on http:\/\/127\.0\.0\.1:\d+/);
  return Number(px.stdout.match(/admin on http:\/\/127\.0\.0\.1:(\d+)/)[1]);
};

// "name{labels} value" lines of a scrape, as { 'name{labels}': number }.
const samples = (text) => {
  const out = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out[line.slice(0, at)] = Number(line.slice(at + 1));
  }
  return out;
};

test('admin: /metrics counts each instance\'s requests, states and deaths; /status and / agree', { timeout: 60000 }, async (t) => {
  const app = makeApp(t, 'router-echo', { files: { 'phoenix.toml': '[process.web]\ninstances = 2\n' } });
  const px = await up(app);
  await px.waitReady(2);
  const port = await adminPort(px);

  for (let i = 0; i < 30; i++) assert.equal((await httpGet(px.port, `/n${i}`)).status, 200);
  const m = await httpGet(port, '/metrics');
  assert.equal(m.status, 200);
  assert.match(m.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  const s = samples(m.body);
  const perInstance = s['phoenix_instance_requests_total{type="web",slot="web.1"}'] +
    s['phoenix_instance_requests_total{type="web",slot="web.2"}'];
  assert.equal(perInstance, 30, m.body);
  assert.ok(s['phoenix_instance_requests_total{type="web",slot="web.1"}'] >= 10, 'round-robin spreads the requests');
  assert.equal(s['phoenix_instances{type="web",state="ready"}'], 2);
  assert.equal(s['phoenix_instance_up{type="web",slot="web.1"}'], 1);
  assert.equal(s['phoenix_router_requests_total'], 30);
  assert.equal(s['phoenix_router_responses_total{code="2xx"}'], 30);

  // ps shows the same traffic and says where the admin address is.
  const ps = await phoenix(app, ['ps']);
  assert.match(ps.stdout, /REQUESTS/);
  assert.match(ps.stdout, new RegExp(`admin: http://127\\.0\\.0\\.1:${port} `));

  // A planned kill: counted by reason; the new incarnation starts from 0 requests.
  assert.equal((await phoenix(app, ['kill', 'web.1'])).code, 0);
  await waitFor(async () => samples((await httpGet(port, '/metrics')).body)['phoenix_deaths_total{type="web",reason="killed"}'] === 1,
    { timeout: 20000, what: 'the kill in phoenix_deaths_total' });
  const after = samples((await httpGet(port, '/metrics')).body);
  assert.equal(after['phoenix_instance_incarnation{type="web",slot="web.1"}'], 2);
  assert.equal(after['phoenix_instance_requests_total{type="web",slot="web.1"}'], 0);

  const st = await httpGet(port, '/status');
  assert.equal(st.status, 200);
  assert.equal(st.headers['content-type'], 'application/json');
  assert.equal(st.json.router.port, px.port);
  assert.equal(st.json.instances.length, 2);
  assert.deepEqual(st.json.deaths, [{ type: 'web', reason: 'killed', count: 1 }]);

  const page = await httpGet(port, '/');
  assert.match(page.headers['content-type'], /^text\/html/);
  assert.match(page.body, /<td>web\.2<\/td>/);

  // The events as JSON lines, without --events: the births, and the death with its reason.
  const ev = await httpGet(port, '/events');
  assert.equal(ev.status, 200);
  assert.equal(ev.headers['content-type'], 'application/x-ndjson');
  const lines = ev.body.trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(lines.filter((e) => e.event === 'ready').length >= 3, ev.body);
  const died = lines.find((e) => e.event === 'died');
  assert.ok(died && died.instance === 'web.1' && died.reason === 'killed', ev.body);
  assert.deepEqual(lines, readEvents(app.eventsFile).slice(-lines.length), 'the same lines as --events');
});

test('admin: HEAD, wrong methods, unknown paths, bad and oversized requests, idle hoarders', { timeout: 60000 }, async (t) => {
  const app = makeApp(t, 'router-echo', { files: { 'phoenix.toml': '[process.web]\ninstances = 1\n' } });
  const px = await up(app);
  await px.waitReady(1);
  const port = await adminPort(px);

  const get = await httpGet(port, '/metrics?x=1');
  const head = await httpRequest(port, '/metrics', { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.body, '');
  assert.ok(Math.abs(Number(head.headers['content-length']) - Buffer.byteLength(get.body)) < 64, 'HEAD says the size of a GET');
  const post = await httpRequest(port, '/metrics', { method: 'POST', body: 'x' });
  assert.equal(post.status, 405);
  assert.equal(post.headers.allow, 'GET, HEAD');
  assert.equal((await httpGet(port, '/nope')).status, 404);

  const bad = await rawConnect(port, { t });
  bad.write('GARBAGE\r\n\r\n');
  await bad.waitData(/^HTTP\/1\.1 400 /);
  await bad.waitClosed();

  const big = await rawConnect(port, { t });
  big.write(`GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20000)}\r\n\r\n`);
  await big.waitData(/^HTTP\/1\.1 431 /);
  await big.waitClosed();

  // Keep-alive: two requests on one connection.
  const ka = await rawConnect(port, { t });
  ka.write('GET /status HTTP/1.1\r\nHost: x\r\n\r\nGET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  await ka.waitClosed();
  assert.equal(ka.text.match(/HTTP\/1\.1 200 OK/g).length, 2);

  // Absolute form (RFC 9112 3.2.2).
  const abs = await rawConnect(port, { t });
  abs.write(`GET http://127.0.0.1:${port}/status?x HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
  await abs.waitClosed();
  assert.match(abs.text, /^HTTP\/1\.1 200 OK/);

  // Connections that asked once and then sit idle do not lock scrapers out: at the limit the
  // oldest idle one makes room.
  const idle = [];
  for (let i = 0; i < 80; i++) {
    const c = await rawConnect(port, { t });
    c.write('GET /status HTTP/1.1\r\nHost: x\r\n\r\n');
    idle.push(c);
  }
  await waitFor(() => idle.filter((c) => /^HTTP\/1\.1 200 /.test(c.text)).length >= 64, { what: 'answers to the idle ones' });
  for (let i = 0; i < 5; i++) assert.equal((await httpGet(port, '/metrics')).status, 200, 'a scrape among idle connections');
  // Connections that never send a byte: beyond the limit a connection is closed at once, and
  // once they go the address answers again.
  for (const c of idle) c.destroy();
  const hoarders = [];
  t.after(() => { for (const c of hoarders) c.destroy(); });
  for (let i = 0; i < 80; i++) {
    const c = net.connect({ host: '127.0.0.1', port });
    c.on('error', () => {});
    hoarders.push(c);
  }
  await waitFor(() => hoarders.every((c) => c.readyState === 'open' || c.destroyed || c.closed), { what: 'hoarders connected' });
  for (const c of hoarders) c.destroy();
  await waitFor(async () => (await httpGet(port, '/metrics').catch(() => ({ status: 0 }))).status === 200,
    { timeout: 10000, what: 'the admin address answering again' });
  // The router was never disturbed.
  assert.equal((await httpGet(px.port, '/')).status, 200);
});

test('admin: a taken address refuses to start (exit 2, says which); "" turns it off', { timeout: 60000 }, async (t) => {
  const taken = await freePort();
  const holder = net.createServer().listen(taken, '127.0.0.1');
  await new Promise((resolve) => holder.once('listening', resolve));
  t.after(() => holder.close());
  const app = makeApp(t, 'router-echo', { files: { 'phoenix.toml': `[admin]\nlisten = "127.0.0.1:${taken}"\n` } });
  const px = await up(app);
  const r = await px.waitExit(15000);
  assert.equal(r.code, 2, px.describe());
  assert.match(r.stderr, new RegExp(`admin address 127\\.0\\.0\\.1:${taken}: Address already in use`));
  assert.doesNotMatch(r.stdout, /born/, 'nothing started');

  const off = makeApp(t, 'router-echo', { files: { 'phoenix.toml': '[admin]\nlisten = ""\n\n[process.web]\ninstances = 1\n' } });
  const px2 = await up(off);
  await px2.waitReady(1);
  assert.doesNotMatch(px2.stdout, /admin on/);
  const ps = await phoenix(off, ['ps']);
  assert.doesNotMatch(ps.stdout, /admin:/);
});

test('admin: "[::]" listens on IPv4 and IPv6 alike', { timeout: 30000 }, async (t) => {
  const app = makeApp(t, 'router-echo', { files: { 'phoenix.toml': '[admin]\nlisten = "[::]:0"\n\n[process.web]\ninstances = 1\n' } });
  const px = await up(app);
  await px.waitOutput(/admin on http:\/\/\[::\]:\d+/);
  const port = Number(px.stdout.match(/admin on http:\/\/\[::\]:(\d+)/)[1]);
  assert.equal((await httpGet(port, '/status')).status, 200);
  const v6 = await new Promise((resolve, reject) => {
    http.get({ host: '::1', port, path: '/status', timeout: 5000 }, (res) => { res.resume(); resolve(res.statusCode); }).on('error', reject);
  });
  assert.equal(v6, 200);
});

test('admin: an answer the instance cut short after its head went on is counted', { timeout: 30000 }, async (t) => {
  const app = makeApp(t, 'router-faulty', { files: { 'phoenix.toml': '[process.web]\ninstances = 1\n' } });
  const px = await up(app);
  await px.waitReady(1);
  const port = await adminPort(px);
  const c = await rawConnect(px.port, { t });
  c.write('GET /cut-short HTTP/1.1\r\nHost: x\r\n\r\n');
  await c.waitClosed();
  assert.match(c.text, /^HTTP\/1\.1 200 [^]*only a part$/);
  await waitFor(async () => samples((await httpGet(port, '/metrics')).body)['phoenix_router_responses_interrupted_total'] === 1,
    { timeout: 5000, what: 'phoenix_router_responses_interrupted_total 1' });
  assert.equal((await httpGet(port, '/status')).json.router.responses_interrupted, 1);
});
