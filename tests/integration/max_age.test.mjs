// max_age with jitter: every incarnation is replaced after max_age minus a random jitter, and the
// successor is born and ready before the old one drains and dies (surge), reason max-age.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeApp, up, ps, readEvents } from './harness.mjs';

const TOML = `
[process.web]
instances = 2
max_age = "3s"
max_age_jitter = "1s"
drain_timeout = "500ms"
stop_timeout = "1s"
`;

test('max_age 3s, jitter 1s: each slot is reborn with a surge, reason max-age', { timeout: 20000 }, async (t) => {
  const app = makeApp(t, 'echo', { files: { 'phoenix.toml': TOML } });
  const px = await up(app);
  const first = await px.waitReady(2);
  for (const i of first) {
    assert.ok(typeof i.next_rebirth_s === 'number' && i.next_rebirth_s <= 3, `next rebirth within max_age: ${JSON.stringify(i)}`);
  }

  await px.waitEvents((ev) => ['web.1', 'web.2'].every((s) =>
    ev.some((e) => e.event === 'died' && e.instance === s && e.incarnation === 1)), { what: 'both first incarnations died', timeout: 8000 });
  const ev = readEvents(app.eventsFile);
  for (const slot of ['web.1', 'web.2']) {
    const at = (kind, inc) => ev.findIndex((e) => e.event === kind && e.instance === slot && e.incarnation === inc);
    const died = ev[at('died', 1)];
    assert.equal(died.reason, 'max-age', JSON.stringify(died));
    assert.ok(at('ready', 2) >= 0, `${slot} #2 ready\n${px.describe()}`);
    assert.ok(at('ready', 2) < at('draining', 1), `${slot}: successor ready before the old one drains\n${px.describe()}`);
    assert.ok(at('ready', 2) < at('died', 1), `${slot}: successor ready before the old one dies`);
    const draining = ev[at('draining', 1)];
    assert.ok(draining.age_ms >= 1900 && draining.age_ms <= 5000,
      `${slot} #1 drained at age ${draining.age_ms} ms; max_age 3s minus up to 1s jitter (+ boot of the successor)`);
  }
  // Capacity never dips below 2 ready instances once both were ready.
  const ready = new Set();
  let full = false;
  for (const e of ev) {
    const key = `${e.instance}#${e.incarnation}`;
    if (e.event === 'ready') ready.add(key);
    if (['draining', 'stopping', 'died'].includes(e.event)) ready.delete(key);
    if (ready.size >= 2) full = true;
    if (full) assert.ok(ready.size >= 2, `only ${ready.size} ready after ${JSON.stringify(e)}`);
  }
  const list = await ps(app);
  assert.ok(list.every((i) => i.incarnation >= 2), JSON.stringify(list));
});
