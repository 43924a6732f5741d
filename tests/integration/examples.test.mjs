// The two example apps under phoenix. photos-stateful keeps uploads and sessions on local disk:
// when an instance dies, its died event lists uploads/... and sessions/... as lost. photos-stateless
// keeps everything in a real Redis and passes its own smoke test across two instances.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { REPO, makeApp, up, phoenix, ps, startRedis, runCommand, httpRequest, readEvents } from './harness.mjs';

const EXAMPLES = path.join(REPO, 'examples');
const TIMEOUTS = 'boot_timeout = "10s"\ndrain_timeout = "1s"\nstop_timeout = "2s"\n';

function exampleApp(t, name, mode) {
  const source = path.join(EXAMPLES, name);
  assert.ok(fs.existsSync(path.join(source, 'node_modules')), `${source}/node_modules is missing: run scripts/install-deps.sh`);
  return makeApp(t, name, {
    source,
    files: {
      // The example's settings with short timeouts, so that a failing test stays short.
      'phoenix.toml': `[process.web]\ninstances = 2\n${TIMEOUTS}\n[filesystem]\nmode = "${mode}"\nwritable = ["tmp/"]\n`,
    },
  });
}

/** A tiny valid PNG (1x1). */
const PNG = Buffer.from(
  '89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415408d763f8cfc0000003010100c9fe92ef0000000049454e44ae426082',
  'hex');

test('photos-stateful: the died event lists the uploads/ and sessions/ files the instance kept', { timeout: 30000 }, async (t) => {
  const app = exampleApp(t, 'photos-stateful', 'ephemeral');
  const px = await up(app);
  const list = await px.waitReady(2, { timeout: 15000 });
  const web1 = list.find((i) => i.instance === 'web.1');
  const base = `http://127.0.0.1:${web1.port}`;

  const login = await httpRequest(web1.port, '/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ user: 'alice' }),
  });
  assert.equal(login.status, 200, login.body);
  const cookie = String(login.headers['set-cookie']).split(';')[0];
  assert.match(cookie, /=/, 'a session cookie');

  const form = new FormData();
  form.append('photo', new Blob([PNG], { type: 'image/png' }), 'dot.png');
  const res = await fetch(`${base}/photos`, {
    method: 'POST', body: form, headers: { cookie, accept: 'application/json' }, signal: AbortSignal.timeout(5000),
  });
  const photo = await res.json();
  assert.equal(res.status, 201, JSON.stringify(photo));
  assert.match(photo.id, /^[0-9a-f]{32}$/);
  assert.ok(!fs.existsSync(path.join(app.dir, 'uploads', photo.id)), 'the upload reached the host disk');

  const kill = await phoenix(app, ['kill', 'web.1']);
  assert.equal(kill.code, 0, kill.stderr);
  const died = await px.waitEvent((e) => e.event === 'died' && e.instance === 'web.1', { what: 'web.1 died', timeout: 15000 });
  assert.equal(died.reason, 'killed');
  const paths = died.lost.paths;
  assert.ok(paths.includes(`uploads/${photo.id}`), `uploads/${photo.id} in ${JSON.stringify(paths)}`);
  assert.ok(paths.some((p) => /^sessions\/.+\.json$/.test(p)), `a sessions/*.json in ${JSON.stringify(paths)}`);
  const upload = died.lost.changes.find((c) => c.path === `uploads/${photo.id}`);
  assert.deepEqual(upload, { path: `uploads/${photo.id}`, bytes: PNG.length, change: 'created' });
  assert.match(px.stdout, new RegExp(`web\\.1 #1 died after \\S+ \\(killed[^)]*\\); it wrote \\d+ files \\(.*\\) that are gone: .*uploads/${photo.id}`));

  // The new web.1 was born from the release: the photo is gone with the old one.
  const reborn = (await ps(app)).find((i) => i.instance === 'web.1');
  assert.equal(reborn.incarnation, 2);
  const gone = await httpRequest(reborn.port, `/photos/${photo.id}`, { headers: { accept: 'application/json' } });
  assert.equal(gone.status, 404);
});

test('photos-stateless with a real redis: smoke.mjs passes across both instances, nothing is lost', { timeout: 40000 }, async (t) => {
  const app = exampleApp(t, 'photos-stateless', 'strict');
  const redis = await startRedis(app);
  const envFile = path.join(app.root, 'redis.env');
  fs.writeFileSync(envFile, `REDIS_URL=${redis.url}\nSESSION_SECRET=integration-test-secret\n`);
  const px = await up(app, ['--env', envFile]);
  const list = await px.waitReady(2, { timeout: 15000 });
  const urls = list.filter((i) => i.type === 'web').map((i) => `http://127.0.0.1:${i.port}`);
  assert.equal(urls.length, 2);

  const smoke = await runCommand(process.execPath, [path.join(EXAMPLES, 'photos-stateless', 'smoke.mjs')], {
    env: { ...process.env, BASE_URLS: urls.join(','), SMOKE_TIMEOUT_MS: '5000' },
    timeout: 25000,
  });
  assert.equal(smoke.code, 0, `smoke.mjs failed:\n${smoke.stdout}\n${smoke.stderr}\n${px.describe()}`);
  assert.match(smoke.stdout, /smoke: PASS/);

  // A death loses nothing: the app root is read-only and nothing was written.
  const kill = await phoenix(app, ['kill', 'web.2']);
  assert.equal(kill.code, 0, kill.stderr);
  const died = await px.waitEvent((e) => e.event === 'died' && e.instance === 'web.2', { what: 'web.2 died', timeout: 15000 });
  assert.ok(!died.lost || died.lost.files === 0, JSON.stringify(died));
  assert.ok(readEvents(app.eventsFile).every((e) => e.event !== 'died' || e.instance === 'web.2'));
});
