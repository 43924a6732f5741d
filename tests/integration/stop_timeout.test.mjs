// stop_timeout: an app that ignores SIGTERM gets SIGKILL once stop_timeout has passed, both on a
// planned replacement and when phoenix stops.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeApp, up, phoenix, readEvents, waitNothingLeft } from './harness.mjs';

test('an app ignoring SIGTERM is SIGKILLed after stop_timeout (kill, then stop)', { timeout: 20000 }, async (t) => {
  const app = makeApp(t, 'stubborn'); // instances = 1, stop_timeout = "1s"
  const px = await up(app);
  await px.waitReady(1);

  const kill = await phoenix(app, ['kill', 'web.1']);
  assert.equal(kill.code, 0, kill.stderr);
  const died = await px.waitEvent((e) => e.event === 'died' && e.incarnation === 1, { what: 'web.1 #1 died', timeout: 6000 });
  assert.equal(died.signal, 'SIGKILL', JSON.stringify(died));
  const ev = readEvents(app.eventsFile);
  const stopping = ev.find((e) => e.event === 'stopping' && e.incarnation === 1);
  const sigkill = ev.find((e) => e.event === 'sigkill' && e.incarnation === 1);
  assert.ok(stopping && sigkill, `stopping and sigkill events\n${px.describe()}`);
  const waited = Date.parse(sigkill.time) - Date.parse(stopping.time);
  assert.ok(waited >= 950 && waited < 2000, `SIGKILL ${waited} ms after SIGTERM; stop_timeout is 1 s`);
  assert.match(px.stdout, /web\.1\s*\| stubborn web\.1 ignores SIGTERM/, 'the app did get SIGTERM first');

  // Stopping phoenix is bounded by stop_timeout too.
  await px.waitReady(1);
  const t0 = Date.now();
  const stop = await phoenix(app, ['stop'], { timeout: 8000 });
  const took = Date.now() - t0;
  assert.equal(stop.code, 0, stop.stderr);
  assert.ok(took >= 900 && took < 4000, `phoenix stop took ${took} ms with a 1 s stop_timeout`);
  assert.equal((await px.waitExit(3000)).code, 0);
  const last = readEvents(app.eventsFile).find((e) => e.event === 'died' && e.incarnation === 2);
  assert.equal(last.signal, 'SIGKILL', JSON.stringify(last));
  assert.equal(last.reason, 'shutdown', JSON.stringify(last));
  await waitNothingLeft(app);
});

test('SIGTERM reaches every process of an instance, even one in its own session', { timeout: 20000 }, async (t) => {
  const app = makeApp(t, 'echo', {
    files: {
      Procfile: 'worker: node worker.js\n',
      '.env': 'SPAWN_ORPHAN=1\n',
      // Long enough that a SIGKILL after it would be plain to see.
      'phoenix.toml': '[process.worker]\nstop_timeout = "15s"\n',
    },
  });
  const px = await up(app);
  await px.waitReady(1, { type: 'worker' });
  await px.waitOutput(/worker spawned orphan pid \d+/);
  const t0 = Date.now();
  const stop = await phoenix(app, ['stop'], { timeout: 10000 });
  assert.equal(stop.code, 0, stop.stderr);
  assert.ok(Date.now() - t0 < 5000, `stop took ${Date.now() - t0} ms: the detached child did not get SIGTERM`);
  const died = readEvents(app.eventsFile).find((e) => e.event === 'died');
  assert.equal(died.reason, 'shutdown');
  assert.ok(!readEvents(app.eventsFile).some((e) => e.event === 'sigkill'), px.describe());
  assert.equal((await px.waitExit(3000)).code, 0);
  await waitNothingLeft(app);
});
