// boot_timeout: an instance whose $PORT never accepts is killed, reported as boot-timeout, and
// reborn (a failed boot counts as a crash).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeApp, up, readEvents } from './harness.mjs';

test('an app that never listens dies with reason boot-timeout after boot_timeout', { timeout: 20000 }, async (t) => {
  const app = makeApp(t, 'sleeper'); // boot_timeout = "2s", stop_timeout = "1s"
  const px = await up(app);
  const died = await px.waitEvent((e) => e.event === 'died' && e.instance === 'web.1', { what: 'web.1 died', timeout: 7000 });
  assert.equal(died.reason, 'boot-timeout', JSON.stringify(died));
  const ev = readEvents(app.eventsFile);
  const born = ev.find((e) => e.event === 'born' && e.incarnation === 1);
  assert.ok(ev.some((e) => e.event === 'boot-timeout' && e.instance === 'web.1'), 'a boot-timeout event');
  assert.ok(!ev.some((e) => e.event === 'ready'), 'never ready');
  const took = Date.parse(died.time) - Date.parse(born.time);
  assert.ok(took >= 1900 && took < 4500, `died ${took} ms after birth; boot_timeout is 2 s (+ stop_timeout 1 s)`);

  // The slot is reborn.
  await px.waitEvent((e) => e.event === 'born' && e.incarnation === 2, { what: 'web.1 #2 born', timeout: 3000 });
});
