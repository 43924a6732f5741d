// The sandbox's filesystem: in "ephemeral" mode what an incarnation writes in the app root is
// invisible on the host and to the next incarnation, and is listed in its died event (lost state;
// paths under filesystem.writable listed apart as scratch); /tmp, /var/tmp and /dev/shm are
// private, and what is left in them is lost state too. In "strict" mode a write in the app root
// fails with EROFS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { makeApp, up, phoenix, ps, httpGet } from './harness.mjs';

test('ephemeral: writes are invisible on the host and to the next incarnation, and reported at death', { timeout: 20000 }, async (t) => {
  const app = makeApp(t, 'writer'); // instances = 1, writable = ["tmp/"]
  const px = await up(app);
  const [first] = await px.waitReady(1);
  const one = (await httpGet(first.port, '/')).json;
  assert.deepEqual(one.did, { written: 'ok', existing: 'ok', doomed: 'ok', scratch: 'ok', privateTmp: 'ok', privateVarTmp: 'ok', privateShm: 'ok' });
  assert.deepEqual(one.saw, { written: false, existing: 'original\n', doomed: true, scratch: false, privateTmp: false, privateVarTmp: false, privateShm: false });

  // The host's app root is as released; the private /tmp file is not in the host's /tmp.
  assert.ok(!fs.existsSync(path.join(app.dir, 'written.txt')), 'written.txt leaked to the host');
  assert.equal(fs.readFileSync(path.join(app.dir, 'existing.txt'), 'utf8'), 'original\n');
  assert.ok(fs.existsSync(path.join(app.dir, 'doomed.txt')), 'doomed.txt was deleted on the host');
  assert.ok(!fs.existsSync(path.join(app.dir, 'tmp', 'scratch.txt')), 'tmp/scratch.txt leaked to the host');
  assert.ok(!fs.existsSync(`/tmp/${app.marker}.txt`), "the instance's /tmp is the host's /tmp");
  assert.ok(!fs.existsSync(`/var/tmp/${app.marker}.txt`), "the instance's /var/tmp is the host's");
  assert.ok(!fs.existsSync(`/dev/shm/${app.marker}.txt`), "the instance's /dev/shm is the host's");

  const kill = await phoenix(app, ['kill', 'web.1']);
  assert.equal(kill.code, 0, kill.stderr);
  const died = await px.waitEvent((e) => e.event === 'died' && e.incarnation === 1, { what: 'web.1 #1 died' });

  // The next incarnation starts from the release again.
  const [second] = await px.waitReady(1);
  assert.equal(second.incarnation, 2);
  const two = (await httpGet(second.port, '/')).json;
  assert.equal(two.incarnation, '2');
  assert.deepEqual(two.saw, { written: false, existing: 'original\n', doomed: true, scratch: false, privateTmp: false, privateVarTmp: false, privateShm: false },
    'the second incarnation saw what the first one wrote');

  // The died event lists the lost state, with scratch apart.
  const lost = died.lost;
  assert.ok(lost, JSON.stringify(died));
  const change = (p) => lost.changes.find((c) => c.path === p);
  const kept = [`/dev/shm/${app.marker}.txt`, `/tmp/${app.marker}.txt`, `/var/tmp/${app.marker}.txt`];
  assert.deepEqual([...lost.paths].sort(), [...kept, 'doomed.txt', 'existing.txt', 'written.txt'], JSON.stringify(lost));
  // What was left in the private /tmp (formidable's and multer's uploads go to os.tmpdir()).
  assert.deepEqual(change(kept[1]), { path: kept[1], bytes: 7, change: 'created' });
  assert.deepEqual(change('written.txt'), { path: 'written.txt', bytes: 11, change: 'created' });
  assert.equal(change('existing.txt').change, 'modified');
  assert.equal(change('existing.txt').bytes, 'original\nchanged\n'.length);
  assert.equal(change('doomed.txt').change, 'deleted');
  assert.equal(lost.files, lost.paths.length);
  assert.ok(lost.bytes >= 11, JSON.stringify(lost));
  assert.deepEqual(died.scratch.paths, ['tmp/scratch.txt'], JSON.stringify(died.scratch));
  assert.equal(died.scratch.files, 1);
  assert.equal(died.scratch.bytes, 8);
  assert.deepEqual(died.scratch.changes, [{ path: 'tmp/scratch.txt', bytes: 8, change: 'created' }]);

  // The terminal line and ps say it too.
  assert.match(px.stdout, /phoenix\s*\| web\.1 #1 died after \S+ \(killed[^)]*\); it wrote .* gone: .*written\.txt/);
  const slot = (await ps(app)).find((i) => i.instance === 'web.1');
  assert.ok(slot.lost_files >= 3 && slot.lost_bytes >= 11, JSON.stringify(slot));
});

test('strict: a write in the app root fails with EROFS; only the private /tmp files are lost; writable and /tmp stay writable', { timeout: 20000 }, async (t) => {
  const app = makeApp(t, 'writer', {
    files: { 'phoenix.toml': '[process.web]\ninstances = 1\nstop_timeout = "1s"\n\n[filesystem]\nmode = "strict"\nwritable = ["tmp/"]\n' },
  });
  const px = await up(app);
  const [first] = await px.waitReady(1);
  const one = (await httpGet(first.port, '/')).json;
  assert.equal(one.did.written, 'EROFS');
  assert.equal(one.did.existing, 'EROFS');
  assert.equal(one.did.doomed, 'EROFS');
  assert.equal(one.did.privateTmp, 'ok', '/tmp is a private tmpfs, writable');
  assert.equal(one.did.scratch, 'ok', 'filesystem.writable stays writable in strict mode');
  assert.ok(!fs.existsSync(path.join(app.dir, 'tmp', 'scratch.txt')), 'scratch stays in the layer');
  assert.ok(!fs.existsSync(`/tmp/${app.marker}.txt`), "the instance's /tmp is the host's /tmp");
  assert.ok(!fs.existsSync(path.join(app.dir, 'written.txt')));
  assert.ok(fs.existsSync(path.join(app.dir, 'doomed.txt')));

  const stop = await phoenix(app, ['stop']);
  assert.equal(stop.code, 0, stop.stderr);
  const died = await px.waitEvent((e) => e.event === 'died', { what: 'web.1 died' });
  assert.equal(died.reason, 'shutdown');
  // Nothing outside writable can be written in the app root: only the private /tmp files are
  // lost; the scratch is listed apart.
  assert.deepEqual([...died.lost.paths].sort(),
    [`/dev/shm/${app.marker}.txt`, `/tmp/${app.marker}.txt`, `/var/tmp/${app.marker}.txt`], JSON.stringify(died));
  assert.deepEqual(died.scratch.paths, ['tmp/scratch.txt']);
  assert.equal((await px.waitExit(5000)).code, 0);
});

test('strict: a writable folder the release lacks is made in the layer; none through a link out of the app', { timeout: 20000 }, async (t) => {
  const app = makeApp(t, 'writer', {
    files: { 'phoenix.toml': '[process.web]\ninstances = 1\nstop_timeout = "1s"\n\n[filesystem]\nmode = "strict"\nwritable = ["tmp/", "out/cache/"]\n' },
  });
  fs.rmSync(path.join(app.dir, 'tmp'), { recursive: true, force: true });
  // `out` links outside the app: nothing may be made there.
  const outside = fs.mkdtempSync(path.join(app.root, 'outside-'));
  fs.symlinkSync(outside, path.join(app.dir, 'out'));
  const px = await up(app);
  const [first] = await px.waitReady(1);
  const one = (await httpGet(first.port, '/')).json;
  assert.equal(one.did.scratch, 'ok', 'tmp/ is writable although the release has none');
  assert.equal(one.did.written, 'EROFS');
  assert.ok(!fs.existsSync(path.join(app.dir, 'tmp')), 'made in the layer, not in the release');
  assert.deepEqual(fs.readdirSync(outside), [], 'nothing made through the link');
  const stop = await phoenix(app, ['stop']);
  assert.equal(stop.code, 0, stop.stderr);
  const died = await px.waitEvent((e) => e.event === 'died', { what: 'web.1 died' });
  assert.ok(died.lost.paths.every((p) => p.startsWith('/')), JSON.stringify(died));
  assert.deepEqual(died.scratch.paths, ['tmp/scratch.txt']);
});
