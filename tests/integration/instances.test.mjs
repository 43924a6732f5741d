// Instance counts, and what every instance finds in its environment: PORT, PHOENIX_INSTANCE,
// PHOENIX_INCARNATION, DYNO and the .env (or --env FILE) variables.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { makeApp, up, phoenix, httpGet, readEvents, waitNothingLeft } from './harness.mjs';

test('two web instances by default, each on its own PORT with its identity and .env', { timeout: 30000 }, async (t) => {
  const app = makeApp(t, 'echo');
  const px = await up(app);
  const list = await px.waitReady(2);

  const web = list.filter((i) => i.type === 'web').sort((a, b) => a.instance.localeCompare(b.instance));
  assert.deepEqual(web.map((i) => i.instance), ['web.1', 'web.2']);
  assert.notEqual(web[0].port, web[1].port, 'each instance has its own port');
  for (const inst of web) {
    assert.notEqual(inst.port, px.port, 'an instance port is private, not the public port');
    assert.equal(inst.incarnation, 1);
    const res = await httpGet(inst.port, '/');
    assert.equal(res.status, 200);
    assert.deepEqual(
      { instance: res.json.instance, dyno: res.json.dyno, port: res.json.port, incarnation: res.json.incarnation, fromDotenv: res.json.fromDotenv },
      { instance: inst.instance, dyno: inst.instance, port: String(inst.port), incarnation: '1', fromDotenv: 'hello-from-dotenv' },
    );
    assert.equal(res.json.cwd, app.dir, 'the command runs in the app root');
    // Its own PID namespace: the app is a child of the namespace's PID 1 (the sandbox init).
    assert.equal(res.json.ppid, 1, `ppid ${res.json.ppid}: not in its own PID namespace`);
    assert.notEqual(res.json.pid, inst.pid, 'the pid inside the namespace differs from the host pid');
    // The born and ready events name the same process and port as ps.
    const born = readEvents(app.eventsFile).find((e) => e.event === 'born' && e.instance === inst.instance);
    const ready = readEvents(app.eventsFile).find((e) => e.event === 'ready' && e.instance === inst.instance);
    assert.ok(born && ready, `born and ready events for ${inst.instance}`);
    assert.equal(born.incarnation, 1);
    assert.equal(ready.port, inst.port);
    assert.equal(ready.pid, inst.pid);
    assert.equal(typeof born.time, 'string');
    assert.equal(typeof ready.age_ms, 'number');
  }

  // `phoenix stop` returns once everything stopped; phoenix exits 0; nothing is left.
  const stop = await phoenix(app, ['stop']);
  assert.equal(stop.code, 0, `phoenix stop: ${stop.stderr}`);
  assert.equal(stop.stdout, 'stopped\n');
  const exit = await px.waitExit(5000);
  assert.equal(exit.code, 0, px.describe());
  const died = readEvents(app.eventsFile).filter((e) => e.event === 'died');
  assert.deepEqual(died.map((e) => e.instance).sort(), ['web.1', 'web.2']);
  assert.ok(died.every((e) => e.reason === 'shutdown'), JSON.stringify(died));
  await waitNothingLeft(app);
  const after = await phoenix(app, ['ps', '--json']);
  assert.equal(after.code, 1);
  assert.match(after.stderr, /phoenix is not running for this app/);
});

test('--scale web=3,worker=1 and --env FILE; a worker is ready when started; SIGINT stops all', { timeout: 30000 }, async (t) => {
  const app = makeApp(t, 'echo', { files: { Procfile: 'web: node server.js\nworker: node worker.js\n' } });
  const envFile = path.join(app.root, 'other.env');
  fs.writeFileSync(envFile, 'FROM_ENV_FILE=from-env-file\n');
  const px = await up(app, ['--scale', 'web=3,worker=1', '--env', envFile]);
  await px.waitReady(3);
  const list = await px.waitReady(1, { type: 'worker' });

  const web = list.filter((i) => i.type === 'web');
  assert.deepEqual(web.map((i) => i.instance).sort(), ['web.1', 'web.2', 'web.3']);
  assert.equal(new Set(web.map((i) => i.port)).size, 3, 'three distinct ports');
  for (const inst of web) {
    const res = await httpGet(inst.port, '/');
    assert.equal(res.json.instance, inst.instance);
    assert.equal(res.json.dyno, inst.instance);
    assert.equal(res.json.port, String(inst.port));
    assert.equal(res.json.fromEnvFile, 'from-env-file');
  }

  const worker = list.filter((i) => i.type === 'worker');
  assert.deepEqual(worker.map((i) => i.instance), ['worker.1']);
  const line = await px.waitOutput(/worker\.1\s*\| worker env (\{.*\})/);
  const env = JSON.parse(px.stdout.match(/worker\.1\s*\| worker env (\{.*\})/)[1]);
  assert.equal(env.instance, 'worker.1');
  assert.equal(env.dyno, 'worker.1');
  assert.equal(env.incarnation, '1');
  assert.match(env.port || '', /^\d+$/, 'a worker gets a PORT too');
  assert.ok(line);

  px.child.kill('SIGINT');
  const exit = await px.waitExit(8000);
  assert.equal(exit.code, 0, px.describe());
  const died = readEvents(app.eventsFile).filter((e) => e.event === 'died');
  assert.deepEqual(died.map((e) => e.instance).sort(), ['web.1', 'web.2', 'web.3', 'worker.1']);
  await waitNothingLeft(app);
});
