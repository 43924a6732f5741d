// Drain: a planned replacement (`phoenix kill web.N`) takes the old instance out of rotation at
// once, lets its in-flight request finish, and only then stops it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { makeApp, up, phoenix, ps, httpRequest, httpGet, readEvents, waitFor, rawConnect } from './harness.mjs';

test('router: a slow request in flight completes while its instance is replaced', { timeout: 30000 }, async (t) => {
  const app = makeApp(t, 'router-echo');
  const px = await up(app);
  await px.waitReady(2);

  const id = 'drain-test-slow-request-0001';
  const slow = httpRequest(px.port, '/slow?ms=1500', { headers: { 'x-request-id': id }, timeout: 10000 });
  const started = await px.waitOutput(new RegExp(`(web\\.\\d)\\s*\\| slow start ${id}`));
  assert.ok(started);
  const instance = new RegExp(`(web\\.\\d)\\s*\\| slow start ${id}`).exec(px.stdout)[1];
  const other = instance === 'web.1' ? 'web.2' : 'web.1';

  const kill = await phoenix(app, ['kill', instance]);
  assert.equal(kill.code, 0, kill.stderr);
  await px.waitEvent((e) => e.event === 'draining' && e.instance === instance && e.incarnation === 1, { what: `${instance} #1 draining` });

  // ps shows it on its way out, with its request still in flight.
  const list = await ps(app);
  const leaving = list.find((v) => v.instance === instance).leaving;
  assert.equal(leaving.length, 1, JSON.stringify(list));
  assert.equal(leaving[0].incarnation, 1);
  assert.equal(leaving[0].state, 'draining');
  assert.equal(leaving[0].in_flight, 1);

  // While it drains, new requests go to the others (the successor or the other slot), never to it.
  for (let i = 0; i < 10; i++) {
    const r = await httpGet(px.port, `/during-${i}`);
    assert.equal(r.status, 200);
    assert.ok(!(r.json.instance === instance && r.json.incarnation === '1'), `a request went to the draining ${instance} #1`);
  }

  const r = await slow;
  const answeredAt = Date.now();
  assert.equal(r.status, 200, r.body);
  assert.equal(r.json.instance, instance);
  assert.equal(r.json.incarnation, '1');
  assert.equal(r.json.slept, 1500);

  const died = await px.waitEvent((e) => e.event === 'died' && e.instance === instance && e.incarnation === 1, { what: `${instance} #1 died` });
  assert.equal(died.reason, 'killed', JSON.stringify(died));
  const ev = readEvents(app.eventsFile);
  const at = (kind, inst, inc) => ev.findIndex((e) => e.event === kind && e.instance === inst && e.incarnation === inc);
  assert.ok(at('ready', instance, 2) >= 0 && at('ready', instance, 2) < at('draining', instance, 1), 'successor ready before the drain');
  assert.ok(at('draining', instance, 1) < at('stopping', instance, 1), 'drained before SIGTERM');
  // SIGTERM only after the response: the app printed "slow done" before it got SIGTERM.
  const done = px.stdout.search(new RegExp(`${instance.replace('.', '\\.')}\\s*\\| slow done ${id}`));
  const term = px.stdout.search(new RegExp(`${instance.replace('.', '\\.')}\\s*\\| router-echo ${instance.replace('.', '\\.')} #1 got SIGTERM`));
  assert.ok(done >= 0 && term >= 0 && done < term, `slow done (${done}) before SIGTERM (${term})\n${px.describe()}`);
  const stopping = ev[at('stopping', instance, 1)];
  assert.ok(Date.parse(stopping.time) >= answeredAt - 250, `stopping at ${stopping.time}, response at ${new Date(answeredAt).toISOString()}`);
  assert.ok(!ev.some((e) => e.instance === other && e.event === 'died'), `${other} untouched`);
  await px.waitOutput(new RegExp(`router  \\| at=info method=GET path="/slow\\?ms=1500" host=\\S+ request_id=${id} .*dyno=${instance.replace('.', '\\.')} .*status=200`));
});

test('router: drain closes the idle pooled connections to the old instance at once', { timeout: 30000 }, async (t) => {
  const app = makeApp(t, 'router-echo', { files: { '.env': 'LOG_CONNECTIONS=1\n' } });
  const px = await up(app);
  await px.waitReady(2);
  // Warm the pool: 8 requests at once leave several idle keep-alive connections to each instance.
  const warm = await Promise.all(Array.from({ length: 8 }, (_, i) => httpGet(px.port, `/slow?ms=200&warm=${i}`)));
  assert.ok(warm.every((r) => r.status === 200));
  // (phoenix's readiness probe, a connect and close, printed one line each already.)
  // Lines of incarnation #1 only: the successor has the same name, and its own probe.
  const ended = (inst) => (px.stdout.match(new RegExp(`${inst.replace('.', '\\.')}\\s*\\| connection ended by peer \\(#1\\)`, 'g')) || []).length;

  // A slow request keeps the old instance draining (and alive) for 2 s.
  const id = 'drain-test-pool-request-0001';
  const slow = httpRequest(px.port, '/slow?ms=2000', { headers: { 'x-request-id': id }, timeout: 10000 });
  await px.waitOutput(new RegExp(`(web\\.\\d)\\s*\\| slow start ${id}`));
  const instance = new RegExp(`(web\\.\\d)\\s*\\| slow start ${id}`).exec(px.stdout)[1];
  const before = ended(instance);
  const kill = await phoenix(app, ['kill', instance]);
  assert.equal(kill.code, 0, kill.stderr);
  await px.waitEvent((e) => e.event === 'draining' && e.instance === instance && e.incarnation === 1, { what: `${instance} #1 draining` });

  // Its idle connections are closed by the router while the slow request is still in flight
  // (well before they would expire as idle, 2 s after the warm-up).
  await waitFor(() => ended(instance) > before, { timeout: 1000, what: `the router to close its idle connections to ${instance} #1`, describe: () => px.describe() });
  assert.doesNotMatch(px.stdout, new RegExp(`slow done ${id}`), 'closed before the drain ended');

  const r = await slow;
  assert.equal(r.status, 200);
  assert.equal(r.json.instance, instance);
  const died = await px.waitEvent((e) => e.event === 'died' && e.instance === instance && e.incarnation === 1, { what: `${instance} #1 died` });
  assert.notEqual(died.signal, 'SIGKILL', JSON.stringify(died));
  for (let i = 0; i < 6; i++) assert.equal((await httpGet(px.port, `/after-${i}`)).status, 200);
});

test('router: an open event stream does not hold up a drain; the instance gets its SIGTERM at once', { timeout: 30000 }, async (t) => {
  // An event stream (Server-Sent Events) never ends by itself, as a WebSocket does not: waiting
  // for it held the old instance for all of drain_timeout. Now the app gets its SIGTERM once
  // its ordinary requests are done, and ends the stream (EventSource reconnects elsewhere).
  const app = makeApp(t, 'router-echo', {
    files: { 'phoenix.toml': '[process.web]\ninstances = 1\ndrain_timeout = "10m"\nstop_timeout = "2s"\n' },
  });
  const px = await up(app);
  await px.waitReady(1);
  const stream = await new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: px.port, path: '/held?id=sse-drain' }, resolve).on('error', reject);
  });
  assert.equal(stream.headers['content-type'], 'text/event-stream');
  const ended = new Promise((resolve) => { stream.on('close', resolve); stream.resume(); });
  const r = await phoenix(app, ['kill', 'web.1']);
  assert.equal(r.code, 0, r.stderr);
  await px.waitOutput('router-echo web.1 #1 got SIGTERM', { timeout: 15000 });
  await px.waitEvent((e) => e.event === 'died' && e.instance === 'web.1' && e.incarnation === 1, { timeout: 15000, what: 'web.1 #1 died' });
  await ended;
  const after = await httpGet(px.port, '/');
  assert.equal(after.status, 200);
  assert.equal(after.json.incarnation, '2');
});

test('router: an instance with no request in flight gets SIGTERM only after every idle connection to it is closed', { timeout: 30000 }, async (t) => {
  // An app's graceful shutdown (server.close) waits for its open connections: one the router
  // still held idle at SIGTERM would keep the app up until stop_timeout and its SIGKILL.
  const app = makeApp(t, 'router-echo', { files: { '.env': 'LOG_CONNECTIONS=1\n' } });
  const px = await up(app);
  await px.waitReady(2);
  // Concurrent requests leave idle connections to both instances: kept by their clients'
  // connections (Node's global agent keeps alive), cooling, or pooled.
  for (let round = 0; round < 3; round++) {
    const rs = await Promise.all(Array.from({ length: 12 }, (_, i) => httpGet(px.port, `/slow?ms=50&r=${round}&i=${i}`)));
    assert.ok(rs.every((r) => r.status === 200));
  }
  for (const instance of ['web.1', 'web.2']) {
    const kill = await phoenix(app, ['kill', instance]);
    assert.equal(kill.code, 0, kill.stderr);
    const esc = instance.replace('.', '\\.');
    await px.waitOutput(new RegExp(`${esc}\\s*\\| held open at SIGTERM: \\d+ \\(#1\\)`), { timeout: 15000 });
    const held = Number(new RegExp(`${esc}\\s*\\| held open at SIGTERM: (\\d+) \\(#1\\)`).exec(px.stdout)[1]);
    assert.equal(held, 0, `${instance} #1 had ${held} connections open at SIGTERM\n${px.describe()}`);
    const died = await px.waitEvent((e) => e.event === 'died' && e.instance === instance && e.incarnation === 1, { what: `${instance} #1 died` });
    assert.notEqual(died.signal, 'SIGKILL', JSON.stringify(died));
  }
});

test('router: a request its client abandoned is abandoned to the app too, and does not hold up a drain', { timeout: 30000 }, async (t) => {
  // A long poll whose client left (a closed tab, a client timeout): without this, the app
  // works on for nobody, and a rotation waits for it until drain_timeout (10 s here).
  const app = makeApp(t, 'router-echo');
  const px = await up(app);
  await px.waitReady(2);
  const id = 'drain-test-abandoned-request-01';
  const c = await rawConnect(px.port, { t });
  c.write(`GET /slow?ms=20000 HTTP/1.1\r\nHost: x\r\nX-Request-Id: ${id}\r\n\r\n`);
  await px.waitOutput(new RegExp(`(web\\.\\d)\\s*\\| slow start ${id}`));
  const instance = new RegExp(`(web\\.\\d)\\s*\\| slow start ${id}`).exec(px.stdout)[1];
  const esc = instance.replace('.', '\\.');
  const kill = await phoenix(app, ['kill', instance]);
  assert.equal(kill.code, 0, kill.stderr);
  await px.waitEvent((e) => e.event === 'draining' && e.instance === instance && e.incarnation === 1, { what: `${instance} #1 draining` });
  const left = Date.now();
  c.destroy();
  // The app sees its request's connection close, and the drain ends: well before the request's
  // 20 s and the drain's 10 s.
  await px.waitOutput(new RegExp(`${esc}\\s*\\| slow abandoned ${id}`), { timeout: 5000 });
  const stopping = await px.waitEvent((e) => e.event === 'stopping' && e.instance === instance && e.incarnation === 1, { what: `${instance} #1 stopping`, timeout: 5000 });
  assert.ok(Date.parse(stopping.time) - left < 5000, `stopping ${Date.parse(stopping.time) - left} ms after the client left`);
  assert.ok(!new RegExp(`slow done ${id}`).test(px.stdout), 'the abandoned request ran to its end');
  await px.waitOutput(new RegExp(`router  \\| at=error code=H27 desc="Client left before the answer" method=GET path="/slow\\?ms=20000" .*request_id=${id} .*status=499`));
});

test('router: a quick request from a client that half-closed after sending it is still answered', { timeout: 30000 }, async (t) => {
  // Half-closing after the request is allowed (RFC 9112 9.6): only a request that waited past
  // a second is taken for abandoned when its client's FIN comes.
  const app = makeApp(t, 'router-echo');
  const px = await up(app);
  await px.waitReady(2);
  const c = await rawConnect(px.port, { t });
  c.socket.end('GET /slow?ms=300 HTTP/1.1\r\nHost: x\r\n\r\n');
  await c.waitData('"slept":300', { timeout: 5000 });
  assert.match(c.text, /^HTTP\/1\.1 200 /);
});

test('router: a client that pipelined two requests and half-closed gets both answers, however slow the first', { timeout: 30000 }, async (t) => {
  // Its FIN comes behind a request the router already read: no sign that it left.
  const app = makeApp(t, 'router-echo');
  const px = await up(app);
  await px.waitReady(2);
  const c = await rawConnect(px.port, { t });
  c.socket.end('GET /slow?ms=1500 HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n');
  await c.waitData('"url":"/second"', { timeout: 10000 });
  assert.match(c.text, /^HTTP\/1\.1 200 [^]*"slept":1500[^]*HTTP\/1\.1 200 /);
});

test('router: a request with a body is abandoned too once the body went on and its client left', { timeout: 30000 }, async (t) => {
  const app = makeApp(t, 'router-echo');
  const px = await up(app);
  await px.waitReady(2);
  const id = 'drain-test-abandoned-post-0001';
  const c = await rawConnect(px.port, { t });
  c.write(`POST /slow?ms=20000 HTTP/1.1\r\nHost: x\r\nX-Request-Id: ${id}\r\nContent-Length: 5\r\n\r\nhello`);
  await px.waitOutput(new RegExp(`web\\.\\d\\s*\\| slow start ${id}`));
  c.destroy();
  await px.waitOutput(new RegExp(`web\\.\\d\\s*\\| slow abandoned ${id}`), { timeout: 5000 });
  await px.waitOutput(new RegExp(`router  \\| at=error code=H27 .*request_id=${id} .*status=499`));
});
