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
  const timeout = ev.find((e) => e.event === 'boot-timeout' && e.instance === 'web.1');
  assert.ok(timeout, 'a boot-timeout event');
  // Why, as far as phoenix can see: nothing listens at all.
  assert.match(timeout.message, /^not ready within 2s; it listens on no TCP port \(it must listen on \$PORT, \d+\)$/);
  await px.waitOutput(/web\.1 #1 boot timeout: not ready within 2s; it listens on no TCP port/);
  assert.ok(!ev.some((e) => e.event === 'ready'), 'never ready');
  const took = Date.parse(died.time) - Date.parse(born.time);
  assert.ok(took >= 1900 && took < 4500, `died ${took} ms after birth; boot_timeout is 2 s (+ stop_timeout 1 s)`);

  // The slot is reborn.
  await px.waitEvent((e) => e.event === 'born' && e.incarnation === 2, { what: 'web.1 #2 born', timeout: 3000 });
});

test('a boot timeout says what the app listens on instead of $PORT, or what its health check got', { timeout: 30000 }, async (t) => {
  // Each instance listens on a port the kernel picks, never $PORT: a fixed port could be taken
  // meanwhile by another test's process (it was, once, under --test-concurrency).
  const app = makeApp(t, 'sleeper', {
    files: { 'server.js': "require('http').createServer((q, s) => s.end('hi')).listen(0, '127.0.0.1');\n" },
  });
  const px = await up(app);
  const timeout = await px.waitEvent((e) => e.event === 'boot-timeout', { what: 'a boot timeout', timeout: 8000 });
  assert.match(timeout.message, /it listens on 127\.0\.0\.1:\d+ instead of \$PORT \(\d+\): the app must use \$PORT/);
  await px.shutdown();

  // With a longer boot_timeout, it is said at 5 s, long before the timeout (60 s by default).
  const patient = makeApp(t, 'sleeper', {
    files: {
      'server.js': "require('http').createServer((q, s) => s.end('hi')).listen(0, '127.0.0.1');\n",
      'phoenix.toml': '[process.web]\ninstances = 1\nboot_timeout = "60s"\nstop_timeout = "1s"\n',
    },
  });
  const px3 = await up(patient);
  await px3.waitOutput(/web\.1 #1 listens on 127\.0\.0\.1:\d+ but not yet on \$PORT \(\d+\) after \d+ s: the app must listen on \$PORT/, { timeout: 10000 });
  await px3.shutdown();

  const health = makeApp(t, 'sleeper', {
    files: {
      'server.js': "require('http').createServer((q, s) => { s.statusCode = q.url === '/health' ? 503 : 200; s.end(); }).listen(process.env.PORT);\n",
      'phoenix.toml': '[router]\nhealth_path = "/health"\n\n[process.web]\ninstances = 1\nboot_timeout = "2s"\nstop_timeout = "1s"\n',
    },
  });
  const px2 = await up(health);
  const t2 = await px2.waitEvent((e) => e.event === 'boot-timeout', { what: 'a boot timeout', timeout: 8000 });
  assert.equal(t2.message, 'not ready within 2s; $PORT accepts, but GET /health answered 503');
});
