// `phoenix scale TYPE=N` at runtime: new slots are born without touching the others; removed slots
// drain and die with reason scaled-down.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeApp, up, phoenix, ps, readEvents, httpGet } from './harness.mjs';

test('scale web=3 then web=1: ps counts follow, the others are not restarted, reason scaled-down', { timeout: 20000 }, async (t) => {
  const app = makeApp(t, 'echo');
  const px = await up(app, ['--scale', 'web=1']);
  const [only] = await px.waitReady(1);

  const upScale = await phoenix(app, ['scale', 'web=3']);
  assert.equal(upScale.code, 0, upScale.stderr);
  assert.equal(upScale.stdout, 'web: 1 → 3 instances (the new ones boot now)\n');
  const three = await px.waitReady(3);
  assert.deepEqual(three.map((i) => i.instance).sort(), ['web.1', 'web.2', 'web.3']);
  const web1 = three.find((i) => i.instance === 'web.1');
  assert.equal(web1.pid, only.pid, 'web.1 was not restarted by scaling up');
  assert.equal(web1.incarnation, 1);
  for (const i of three) assert.equal((await httpGet(i.port, '/')).json.instance, i.instance);
  assert.ok(readEvents(app.eventsFile).some((e) => e.event === 'scaled'), 'a scaled event');

  const down = await phoenix(app, ['scale', 'web=1']);
  assert.equal(down.code, 0, down.stderr);
  assert.equal(down.stdout, 'web: 3 → 1 instance (the ones scaled away drain, then stop)\n');
  await px.waitEvents((ev) => ev.filter((e) => e.event === 'died').length >= 2, { what: 'two deaths' });
  const died = readEvents(app.eventsFile).filter((e) => e.event === 'died');
  assert.deepEqual(died.map((e) => e.instance).sort(), ['web.2', 'web.3'], 'the highest slots go');
  for (const d of died) assert.equal(d.reason, 'scaled-down', JSON.stringify(d));
  const one = await px.waitReady(1);
  assert.equal(one.length, 1, JSON.stringify(one));
  assert.equal(one[0].pid, only.pid, 'web.1 untouched by scaling down');
  // Nothing is reborn in a removed slot.
  assert.ok(!readEvents(app.eventsFile).some((e) => e.event === 'born' && e.instance !== 'web.1' && e.incarnation > 1));
});

test('scale of an unknown type or a bad count fails and changes nothing', { timeout: 15000 }, async (t) => {
  const app = makeApp(t, 'echo');
  const px = await up(app);
  await px.waitReady(2);
  const unknown = await phoenix(app, ['scale', 'wbe=3']);
  assert.equal(unknown.code, 2, `exit ${unknown.code}`);
  assert.match(unknown.stderr, /wbe/);
  const bad = await phoenix(app, ['scale', 'web=lots']);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /lots/);
  const list = await ps(app);
  assert.equal(list.length, 2);
  assert.ok(!readEvents(app.eventsFile).some((e) => e.event === 'scaled'));
});
