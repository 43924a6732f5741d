// `phoenix logs [-f] [INSTANCE]`: recent output of every instance or of one, and following it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { makeApp, up, phoenix, phoenixBackground, httpGet, waitFor, vmRssKb } from './harness.mjs';

const token = () => `tok${randomBytes(5).toString('hex')}`;

test('logs shows every instance\'s recent output; logs INSTANCE only that one', { timeout: 15000 }, async (t) => {
  const app = makeApp(t, 'echo');
  const px = await up(app);
  const list = await px.waitReady(2);
  const port = (name) => list.find((i) => i.instance === name).port;
  const t1 = token();
  const t2 = token();
  await httpGet(port('web.1'), `/say?text=${t1}`);
  await httpGet(port('web.2'), `/say?text=${t2}`);

  // All instances: poll until both lines are there (output goes through a pipe).
  let all;
  await waitFor(async () => {
    all = await phoenix(app, ['logs']);
    return all.code === 0 && all.stdout.includes(t1) && all.stdout.includes(t2);
  }, { timeout: 5000, what: 'both tokens in phoenix logs', describe: () => JSON.stringify(all) });
  assert.match(all.stdout, new RegExp(`^web\\.1\\s*\\| said: ${t1}$`, 'm'));
  assert.match(all.stdout, new RegExp(`^web\\.2\\s*\\| said: ${t2}$`, 'm'));
  assert.match(all.stdout, /^web\.1\s*\| echo web\.1 listening on \d+$/m);
  assert.match(all.stdout, /^phoenix\s*\| web\.1 #1 ready/m, "phoenix's own lines are in the log too");

  // One instance.
  const one = await phoenix(app, ['logs', 'web.1']);
  assert.equal(one.code, 0, one.stderr);
  assert.ok(one.stdout.includes(t1), one.stdout);
  assert.ok(!one.stdout.includes(t2), `logs web.1 shows web.2's output:\n${one.stdout}`);
  for (const line of one.stdout.split('\n').filter(Boolean)) assert.match(line, /^web\.1\s*\|/);

  // Unknown instance.
  const none = await phoenix(app, ['logs', 'web.7']);
  assert.equal(none.code, 2, none.stderr);
  assert.match(none.stderr, /web\.7/);
});

test('logs -f INSTANCE keeps printing new lines of that instance until phoenix stops', { timeout: 15000 }, async (t) => {
  const app = makeApp(t, 'echo');
  const px = await up(app);
  const list = await px.waitReady(2);
  const port = (name) => list.find((i) => i.instance === name).port;
  const t2 = token();
  await httpGet(port('web.2'), `/say?text=${t2}`);
  await waitFor(async () => (await phoenix(app, ['logs', 'web.2'])).stdout.includes(t2), { timeout: 5000, what: 'the line in the log' });

  const follow = phoenixBackground(app, ['logs', '-f', 'web.2']);
  await follow.waitOutput(t2); // recent lines first
  const t3 = token();
  const t4 = token();
  await httpGet(port('web.1'), `/say?text=${t4}`);
  await httpGet(port('web.2'), `/say?text=${t3}`);
  await follow.waitOutput(new RegExp(`^web\\.2\\s*\\| said: ${t3}$`, 'm'), { timeout: 5000 });
  assert.ok(!follow.out.stdout.includes(t4), 'logs -f web.2 shows web.1 output');

  // When phoenix stops, the follower ends.
  const stop = await phoenix(app, ['stop']);
  assert.equal(stop.code, 0, stop.stderr);
  assert.ok(await follow.exitWithin(5000), 'phoenix logs -f did not end when phoenix stopped');
  assert.equal((await px.waitExit(5000)).code, 0);
});

// phoenix's terminal is a pipe here; `phoenix up | slow-logger` or a full journald pipe is the
// same. Whoever reads it late, or never, must stop neither the router nor the supervisor: lines
// past what phoenix queues are dropped and counted, as HAProxy and nginx drop log lines.
test('a stdout nobody reads stops neither requests nor the supervisor; dropped lines are counted', { timeout: 60000 }, async (t) => {
  const app = makeApp(t, 'echo'); // the access log is on
  const px = await up(app);
  await px.waitReady(2);
  px.child.stdout.pause();
  // 3 MB of the app's output (more than the 2 MiB phoenix queues), then access-log lines.
  for (let i = 0; i < 30; i++) {
    const r = await httpGet(px.port, '/spam?lines=100&size=1000', { timeout: 10000 });
    assert.equal(r.status, 200);
  }
  for (let i = 0; i < 300; i++) assert.equal((await httpGet(px.port, '/')).status, 200);
  const ps = await phoenix(app, ['ps']);
  assert.equal(ps.code, 0, ps.stderr);

  px.child.stdout.resume();
  await px.waitOutput(/^phoenix\s*\| \d+ lines of output dropped: it was not read for \d+\.\ds$/m);
  const t1 = token();
  await httpGet(px.port, `/say?text=${t1}`);
  await px.waitOutput(new RegExp(`said: ${t1}$`, 'm'));
});

// The backlog `phoenix logs` keeps is bounded in bytes too, not only in lines: an app that prints
// long lines must not grow phoenix by its output (10,000 lines of 16 KiB would be 160 MB).
test('the logs backlog is bounded in bytes: long lines do not grow phoenix', { timeout: 60000 }, async (t) => {
  const app = makeApp(t, 'echo', { files: { 'phoenix.toml': '[router]\naccess_log = false\n[process.web]\ninstances = 1\n' } });
  const px = await up(app);
  await px.waitReady(1);
  for (let i = 0; i < 12; i++) {
    const r = await httpGet(px.port, '/spam?lines=500&size=16000', { timeout: 20000 }); // 8 MB each
    assert.equal(r.status, 200);
  }
  const last = token();
  await httpGet(px.port, `/say?text=${last}`);
  let logs;
  await waitFor(async () => {
    logs = await phoenix(app, ['logs', 'web.1'], { timeout: 30000 });
    return logs.stdout.includes(last);
  }, { timeout: 20000, what: 'the last line in phoenix logs' });
  assert.ok(logs.stdout.length < 8 << 20, `phoenix logs printed ${logs.stdout.length} bytes`);
  const rss = vmRssKb(px.pid);
  assert.ok(rss < 64 * 1024, `phoenix RSS ${rss} KiB after 96 MB of output`);
});
