// `phoenix rotate` (rolling rebirth, one instance after another, capacity never dips),
// `phoenix drill` (SIGKILL at once, a report of the time to full recovery, failed requests and
// lost state) and [chaos] (unannounced SIGKILLs, never the last ready instance).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { makeApp, up, phoenix, ps, httpGet, readEvents, waitFor, minReady } from './harness.mjs';

test('rotate: every instance replaced one after another, capacity never dips', { timeout: 30000 }, async (t) => {
  const app = makeApp(t, 'echo', { files: { 'phoenix.toml': '[process.web]\ninstances = 3\nstop_timeout = "2s"\n' } });
  const px = await up(app);
  await px.waitReady(3);
  const r = await phoenix(app, ['rotate'], { timeout: 20000 });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /rotation done/);
  const after = await ps(app);
  for (const i of after.filter((x) => x.type === 'web')) assert.equal(i.incarnation, 2, JSON.stringify(i));
  const ev = readEvents(app.eventsFile);
  assert.equal(minReady(ev, 3), 3, `capacity dipped\n${px.describe()}`);
  // One after another: a slot's successor is born only after the previous slot's one is ready.
  const births = ev.filter((e) => e.event === 'born' && e.incarnation === 2 && e.instance.startsWith('web.'));
  const readies = ev.filter((e) => e.event === 'ready' && e.incarnation === 2 && e.instance.startsWith('web.'));
  for (let k = 1; k < births.length; ++k) {
    assert.ok(ev.indexOf(readies[k - 1]) < ev.indexOf(births[k]), `${births[k].instance} was born before ${readies[k - 1].instance} was ready`);
  }
  await waitFor(() => ev.length && readEvents(app.eventsFile).filter((e) => e.event === 'died' && e.reason === 'rotated').length >= 3,
    { timeout: 10000, what: 'three rotated deaths' });
  // A type that does not exist.
  const bad = await phoenix(app, ['rotate', 'wbe']);
  assert.equal(bad.code, 2, 'a type that does not exist is a usage error');
  assert.match(bad.stderr, /wbe/);
});

test('rotate: a release that cannot boot fails the rotation (exit 1); the old instances keep serving', { timeout: 30000 }, async (t) => {
  const app = makeApp(t, 'echo', { files: { 'phoenix.toml': '[process.web]\ninstances = 2\n' } });
  const px = await up(app);
  const before = (await px.waitReady(2)).filter((i) => i.type === 'web');
  // The next release crashes at once (a syntax error, a missing module...).
  fs.writeFileSync(path.join(app.dir, 'server.js'), 'process.exit(1);\n');
  const r = await phoenix(app, ['rotate', 'web'], { timeout: 20000 });
  assert.equal(r.code, 1, `exit ${r.code}\n${r.stdout}\n${r.stderr}\n${px.describe()}`);
  assert.match(r.stderr, /rotation failed: web\.1 #2 crashed before it was ready \(exit 1\); web\.1 #1 keeps serving; 0 of 2 instances replaced/);
  const after = (await ps(app)).filter((i) => i.type === 'web');
  assert.deepEqual(after.map((i) => [i.instance, i.incarnation, i.pid, i.state]),
    before.map((i) => [i.instance, i.incarnation, i.pid, 'ready']));
  assert.equal((await httpGet(px.port, '/')).status, 200);
  const ev = readEvents(app.eventsFile);
  assert.equal(ev.filter((e) => e.event === 'rotation-failed').length, 1);
  assert.equal(ev.filter((e) => e.event === 'born' && e.incarnation === 2).length, 1, 'no retries in the background');
});

test('drill --all: every instance SIGKILLed at once, recovery reported with failed requests and lost state', { timeout: 30000 }, async (t) => {
  const app = makeApp(t, 'writer', { files: { 'phoenix.toml': '[process.web]\ninstances = 2\n' } });
  const px = await up(app);
  const list = await px.waitReady(2);
  const r = await phoenix(app, ['drill', '--all'], { timeout: 20000 });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /drill done: 2 instances killed; every one ready again after \S+; \d+ requests failed meanwhile; [1-9]\d* files? \(.*\) lost/);
  const ev = readEvents(app.eventsFile);
  const drill = ev.find((e) => e.event === 'drill');
  assert.ok(drill, px.describe());
  assert.ok(Number.isInteger(drill.recovery_ms) && drill.recovery_ms > 0, JSON.stringify(drill));
  assert.ok(Number.isInteger(drill.failed_requests), JSON.stringify(drill));
  assert.ok(drill.lost.paths.includes('written.txt'), JSON.stringify(drill.lost));
  const died = ev.filter((e) => e.event === 'died');
  assert.equal(died.length, 2);
  for (const d of died) {
    assert.equal(d.reason, 'drill');
    assert.equal(d.signal, 'SIGKILL');
  }
  // Served again, through the router.
  const res = await httpGet(px.port, '/');
  assert.equal(res.status, 200);
  assert.ok(list.length === 2);
  // --fraction validation is a usage error.
  const bad = await phoenix(app, ['drill', '--fraction', '2']);
  assert.equal(bad.code, 2);
});

test('drill: a release that cannot boot any more fails the drill (exit 1) at the first crash, not a wait for ever', { timeout: 30000 }, async (t) => {
  const app = makeApp(t, 'echo', { files: { 'phoenix.toml': '[process.web]\ninstances = 2\n' } });
  const px = await up(app);
  await px.waitReady(2);
  fs.writeFileSync(path.join(app.dir, 'server.js'), 'process.exit(1);\n');
  const r = await phoenix(app, ['drill', '--all'], { timeout: 20000 });
  assert.equal(r.code, 1, `exit ${r.code}\n${r.stdout}\n${r.stderr}\n${px.describe()}`);
  assert.match(r.stderr, /drill failed: 2 instances killed; web\.\d did not come back after .*: #2 crashed before it was ready \(exit 1\)/);
  const ev = readEvents(app.eventsFile);
  assert.equal(ev.filter((e) => e.event === 'drill-failed').length, 1);
  // The next drill is not refused as "already running".
  const again = await phoenix(app, ['drill', '--all'], { timeout: 20000 });
  assert.doesNotMatch(again.stderr, /already running/);
});

test('drill --all: GETs in flight on pooled connections are retried until the successors answer', { timeout: 60000 }, async (t) => {
  // Each slow GET dies with its instance and is retried; its retry may meet the other instance's
  // dead pooled connection, killed by the same drill. Deaths phoenix caused itself do not count
  // against a request's retries (those guard against a request that kills its instances).
  const app = makeApp(t, 'router-echo', { files: { 'phoenix.toml': '[process.web]\ninstances = 2\n' } });
  const px = await up(app);
  await px.waitReady(2);
  await Promise.all(Array.from({ length: 40 }, (_, i) => httpGet(px.port, `/warm-${i}`)));  // pooled connections to both
  const N = 40;
  const slow = Array.from({ length: N }, () => httpGet(px.port, '/slow?ms=1500', { timeout: 30000 }).catch((e) => ({ status: e.message })));
  await waitFor(() => (px.stdout.match(/slow start/g) || []).length >= N, { timeout: 10000, what: 'the slow GETs in flight' });
  const r = await phoenix(app, ['drill', '--all'], { timeout: 20000 });
  assert.equal(r.code, 0, r.stderr);
  const statuses = (await Promise.all(slow)).map((x) => x.status);
  assert.deepEqual(statuses.filter((s) => s !== 200), [], `${statuses.join(' ')}\n${px.stdout.split('\n').filter((l) => /status=5/.test(l)).join('\n')}`);
});

test('chaos: unannounced SIGKILLs, never the last ready instance, service goes on', { timeout: 30000 }, async (t) => {
  const app = makeApp(t, 'echo', {
    files: { 'phoenix.toml': '[process.web]\ninstances = 2\n[chaos]\nmean_time_between_kills = "300ms"\nhours = "00:00-24:00"\n' },
  });
  const px = await up(app);
  await px.waitReady(2);
  await waitFor(() => readEvents(app.eventsFile).filter((e) => e.event === 'chaos').length >= 3,
    { timeout: 15000, what: 'three chaos kills' });
  const ev = readEvents(app.eventsFile);
  for (const d of ev.filter((e) => e.event === 'died')) assert.equal(d.reason, 'chaos', JSON.stringify(d));
  assert.ok(minReady(ev, 2) >= 1, `chaos took the last ready instance\n${px.describe()}`);
  const res = await httpGet(px.port, '/');
  assert.equal(res.status, 200);
});
