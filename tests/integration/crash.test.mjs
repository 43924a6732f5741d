// Unplanned deaths: a crash is reborn at once the first time, then with backoff 1 s, 2 s, 4 s...;
// `ps` shows the slot in backoff and why. A command that is not found crash-loops the same way
// (with backoff, not a spin).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeApp, up, ps, readEvents, waitFor } from './harness.mjs';

const ms = (e) => Date.parse(e.time);
const find = (events, kind, incarnation) => events.find((e) => e.event === kind && e.instance === 'web.1' && e.incarnation === incarnation);

test('a crashing app is reborn at once, then after 1 s, then after 2 s; ps shows backoff and why', { timeout: 20000 }, async (t) => {
  const app = makeApp(t, 'crasher');
  const px = await up(app, ['--scale', 'web=1']);

  // Third death: the slot is now waiting 2 s; ps must say so while it waits.
  await px.waitEvent((e) => e.event === 'backoff' && e.delay_ms === 2000, { what: 'backoff of 2 s', timeout: 8000 });
  const inBackoff = (await ps(app)).find((i) => i.instance === 'web.1');
  assert.equal(inBackoff.state, 'backoff', JSON.stringify(inBackoff));
  assert.match(inBackoff.why || '', /crash/, `why: ${JSON.stringify(inBackoff)}`);
  assert.match(inBackoff.why || '', /3/, `why names the exit status: ${JSON.stringify(inBackoff)}`);
  assert.ok(inBackoff.restarts >= 3, JSON.stringify(inBackoff));

  await px.waitEvent((e) => e.event === 'ready' && e.incarnation === 4, { what: 'web.1 #4 ready', timeout: 5000 });
  const ev = readEvents(app.eventsFile);
  const died = [1, 2, 3].map((n) => find(ev, 'died', n));
  const born = [1, 2, 3, 4].map((n) => find(ev, 'born', n));
  for (const d of died) {
    assert.equal(d.reason, 'crash', JSON.stringify(d));
    assert.equal(d.exit_code, 3, JSON.stringify(d));
  }
  const gap = (n) => ms(born[n]) - ms(died[n - 1]); // death of #n to birth of #n+1
  assert.ok(gap(1) < 500, `first crash: reborn at once, took ${gap(1)} ms`);
  assert.ok(gap(2) >= 900 && gap(2) < 1800, `second crash: ~1 s backoff, took ${gap(2)} ms`);
  assert.ok(gap(3) >= 1900 && gap(3) < 2900, `third crash: ~2 s backoff, took ${gap(3)} ms`);
  const backoffs = ev.filter((e) => e.event === 'backoff').map((e) => e.delay_ms);
  assert.deepEqual(backoffs.slice(0, 2), [1000, 2000]);
});

test('a command that is not found (exit 127) crash-loops with backoff, not a spin', { timeout: 20000 }, async (t) => {
  const app = makeApp(t, 'missing-command');
  const px = await up(app);
  const started = Date.now();
  await px.waitEvent((e) => e.event === 'backoff' && e.delay_ms >= 2000, { what: 'backoff of 2 s', timeout: 6000 });

  // ps during the backoff.
  const slot = (await ps(app)).find((i) => i.instance === 'web.1');
  assert.equal(slot.state, 'backoff', JSON.stringify(slot));
  assert.match(slot.why || '', /127/, JSON.stringify(slot));

  // Watch a bounded window of 2.5 s more: a spin would be born hundreds of times.
  const windowEnd = started + 4000;
  await waitFor(() => Date.now() >= windowEnd || px.result, { timeout: 5000, what: 'the end of the 4 s window' });
  const ev = readEvents(app.eventsFile);
  const births = ev.filter((e) => e.event === 'born');
  assert.ok(births.length >= 3 && births.length <= 5, `births in 4 s: ${births.length}\n${px.describe()}`);
  const died = ev.filter((e) => e.event === 'died');
  assert.ok(died.length >= 3);
  for (const d of died) {
    assert.equal(d.reason, 'crash', JSON.stringify(d));
    assert.equal(d.exit_code, 127, JSON.stringify(d));
  }
  const delays = ev.filter((e) => e.event === 'backoff').map((e) => e.delay_ms);
  for (let i = 1; i < delays.length; i++) assert.ok(delays[i] > delays[i - 1], `backoff grows: ${delays}`);
  assert.match(px.stdout, /web\.1\s*\| .*not found/, 'the shell says the command was not found');
  assert.equal(px.result, null, 'phoenix keeps running through a crash loop');
});

test('a command that puts itself in the background (exit 0 at once) is told to stay in the foreground', { timeout: 20000 }, async (t) => {
  // `sh -c 'sleep 60 &'` returns 0 at once, as `nginx` without `daemon off` or `redis-server
  // --daemonize yes` do; what it left running dies with the sandbox.
  const app = makeApp(t, 'crasher', { files: { Procfile: 'web: sleep 60 &\n' } });
  const px = await up(app, ['--scale', 'web=1']);
  await px.waitEvent((e) => e.event === 'died' && e.incarnation === 1, { what: 'web.1 #1 died', timeout: 8000 });
  const died = readEvents(app.eventsFile).find((e) => e.event === 'died' && e.incarnation === 1);
  assert.equal(died.exit_code, 0, JSON.stringify(died));
  assert.match(died.message || '', /in the foreground/, JSON.stringify(died));
  await px.waitOutput(/web\.1 #1 died .*exit 0\).*in the foreground/);
});
