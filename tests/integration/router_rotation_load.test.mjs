// Rotation under load: 20,000 requests over 16 keep-alive connections while the instances are
// replaced one after the other, over and over. Planned replacements (`phoenix kill web.N`):
// not one failed request. Unplanned ones (`kill --now`, SIGKILL): every GET still succeeds (the
// router retries an idempotent request that got no response byte on another instance); only
// POSTs in flight on the killed instance may fail.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { makeApp, up, phoenix, readEvents } from './harness.mjs';

const TOTAL = 20000;
const CONNECTIONS = 16;

// The access log stays on: its at=error lines say why a request failed.
const TOML = `[router]
access_log = true

[process.web]
instances = 2
drain_timeout = "5s"
stop_timeout = "2s"
`;

/**
 * Sends `total` requests over `connections` keep-alive sockets (one request at a time each).
 * `postEvery`: every Nth request is a POST with a small body (0: GETs only). Resolves counts and
 * the first failures.
 */
function load(port, { total, connections, postEvery = 0, timeout = 10000 }) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  let next = 0;
  const result = { ok: 0, getFailed: 0, postFailed: 0, posts: 0, failures: [], byInstance: {}, sockets: new Set() };
  const one = (i) => new Promise((resolve) => {
    const post = postEvery > 0 && i % postEvery === 0;
    if (post) result.posts++;
    const fail = (why) => {
      if (post) result.postFailed++; else result.getFailed++;
      if (result.failures.length < 20) result.failures.push(`${post ? 'POST' : 'GET'} #${i}: ${why}`);
      resolve();
    };
    const body = post ? JSON.stringify({ i }) : undefined;
    const req = http.request({
      host: '127.0.0.1', port, agent, timeout, method: post ? 'POST' : 'GET', path: `/load/${i}`,
      headers: post ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {},
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        if (res.statusCode !== 200) return fail(`status ${res.statusCode}: ${text.slice(0, 200)}`);
        let json;
        try { json = JSON.parse(text); } catch { return fail(`bad body ${text.slice(0, 200)}`); }
        if (json.url !== `/load/${i}`) return fail(`answer for ${json.url}`);
        if (post && json.body !== body) return fail(`body ${json.body}`);
        const key = `${json.instance}#${json.incarnation}`;
        result.byInstance[key] = (result.byInstance[key] || 0) + 1;
        result.ok++;
        resolve();
      });
      res.on('error', (err) => fail(`response error ${err.message}`));
    });
    req.on('socket', (s) => result.sockets.add(s));
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeout} ms`)));
    req.on('error', (err) => fail(err.message));
    req.end(body);
  });
  const worker = async () => {
    while (next < total) await one(next++);
  };
  const started = Date.now();
  return Promise.all(Array.from({ length: connections }, worker)).then(() => {
    agent.destroy();
    result.ms = Date.now() - started;
    result.socketCount = result.sockets.size;
    delete result.sockets;
    return result;
  });
}

/**
 * Replaces web.1, web.2, web.1, ... until `done()`: each time waits for the next incarnation of the
 * slot to be ready and (planned) for the old one to be gone, so that they never overlap.
 */
async function rotate(px, app, done, { now = false } = {}) {
  let replaced = 0;
  const errors = [];
  while (!done()) {
    const inst = replaced % 2 === 0 ? 'web.1' : 'web.2';
    // The one serving now: the newest ready incarnation (not always #1 + kills: on a loaded
    // machine a first boot can time out and be retried).
    const old = Math.max(...px.events().filter((e) => e.event === 'ready' && e.instance === inst).map((e) => e.incarnation));
    const r = await phoenix(app, ['kill', inst, ...(now ? ['--now'] : [])]);
    if (r.code !== 0) { errors.push(`kill ${inst} (#${old}): exit ${r.code} ${r.stderr}`); break; }
    await px.waitEvents((ev) => ev.some((e) => e.event === 'ready' && e.instance === inst && e.incarnation > old) &&
      ev.some((e) => e.event === 'died' && e.instance === inst && e.incarnation === old),
    { timeout: 15000, what: `${inst} after #${old} ready and #${old} gone` });
    replaced++;
  }
  return { replaced, errors };
}

async function runUnderRotation(t, { now, postEvery }) {
  const app = makeApp(t, 'router-echo', { files: { 'phoenix.toml': TOML } });
  const px = await up(app);
  await px.waitReady(2);
  let finished = false;
  const loadDone = load(px.port, { total: TOTAL, connections: CONNECTIONS, postEvery }).finally(() => { finished = true; });
  const rotation = rotate(px, app, () => finished, { now });
  const [result, rot] = await Promise.all([loadDone, rotation]);
  t.diagnostic(`${now ? 'kill --now' : 'kill'} loop: ${TOTAL} requests in ${result.ms} ms over ${result.socketCount} sockets, ` +
    `${rot.replaced} replacements, ok ${result.ok}, failed GET ${result.getFailed}, failed POST ${result.postFailed} of ${result.posts}; ` +
    `served by ${Object.keys(result.byInstance).length} incarnations`);
  const errors = px.stdout.split('\n').filter((l) => l.includes('at=error'));
  if (errors.length) t.diagnostic(`${errors.length} router errors, the first: ${errors[0].replace(/^router\s+\|\s*/, '')}`);
  result.routerErrors = errors.slice(0, 40).join('\n');
  assert.deepEqual(rot.errors, []);
  return { app, px, result, rot };
}

test('router: zero failed requests while instances are replaced (planned) under load', { timeout: 90000 }, async (t) => {
  const { app, result, rot } = await runUnderRotation(t, { now: false, postEvery: 10 });
  assert.equal(result.getFailed + result.postFailed, 0, `failed requests:\n${result.failures.join('\n')}\n${result.routerErrors}`);
  assert.equal(result.ok, TOTAL);
  assert.ok(rot.replaced >= 2, `only ${rot.replaced} replacements happened during the load`);
  assert.ok(result.socketCount <= CONNECTIONS, `the client opened ${result.socketCount} sockets: the router closed kept-alive ones`);
  assert.ok(Object.keys(result.byInstance).length >= 3, `served by ${JSON.stringify(result.byInstance)}`);
  // Every planned death was a drain, then SIGTERM, never a SIGKILL after stop_timeout.
  const died = readEvents(app.eventsFile).filter((e) => e.event === 'died');
  assert.ok(died.length >= rot.replaced - 1, `${died.length} died events`);
  for (const d of died) assert.equal(d.reason, 'killed', JSON.stringify(d));
});

test('router: under kill --now, every GET succeeds; only POSTs may fail', { timeout: 90000 }, async (t) => {
  const { result, rot } = await runUnderRotation(t, { now: true, postEvery: 10 });
  assert.equal(result.getFailed, 0, `failed GETs:\n${result.failures.join('\n')}\n${result.routerErrors}`);
  assert.ok(rot.replaced >= 2, `only ${rot.replaced} replacements happened during the load`);
  // A POST may fail only when its instance died under it: at most a few per kill.
  assert.ok(result.postFailed <= rot.replaced * CONNECTIONS, `${result.postFailed} POSTs failed for ${rot.replaced} kills:\n${result.failures.join('\n')}`);
  assert.equal(result.ok + result.postFailed, TOTAL);
});

test('router: zero failed requests while `phoenix rotate` runs over and over under load', { timeout: 90000 }, async (t) => {
  const app = makeApp(t, 'router-echo', { files: { 'phoenix.toml': TOML } });
  const px = await up(app);
  await px.waitReady(2);
  let finished = false;
  const loadDone = load(px.port, { total: TOTAL, connections: CONNECTIONS, postEvery: 10 }).finally(() => { finished = true; });
  let rotations = 0;
  const errors = [];
  const rotating = (async () => {
    while (!finished) {
      const r = await phoenix(app, ['rotate']);
      if (r.code !== 0) { errors.push(`rotate: exit ${r.code} ${r.stderr}`); break; }
      // A rotation is over when both slots have a new incarnation ready and the old ones died.
      const want = rotations + 2;
      await px.waitEvents((ev) => ['web.1', 'web.2'].every((inst) =>
        ev.some((e) => e.event === 'ready' && e.instance === inst && e.incarnation === want) &&
        ev.some((e) => e.event === 'died' && e.instance === inst && e.incarnation === want - 1)),
      { timeout: 20000, what: `rotation ${rotations + 1} complete` });
      rotations++;
    }
  })();
  const [result] = await Promise.all([loadDone, rotating]);
  t.diagnostic(`rotate loop: ${TOTAL} requests in ${result.ms} ms, ${rotations} rotations, failed ${result.getFailed + result.postFailed}`);
  assert.deepEqual(errors, []);
  const routerErrors = px.stdout.split('\n').filter((l) => l.includes('at=error')).slice(0, 40).join('\n');
  assert.equal(result.getFailed + result.postFailed, 0, `failed requests:\n${result.failures.join('\n')}\n${routerErrors}`);
  assert.ok(rotations >= 1, 'at least one whole rotation during the load');
  assert.ok(result.socketCount <= CONNECTIONS, `the client opened ${result.socketCount} sockets`);
});
