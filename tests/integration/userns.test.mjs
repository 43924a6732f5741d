// An ordinary user gets the same sandbox through a user namespace: the app root is an overlay,
// writes are invisible on the host and reported at death. Runs phoenix as uid 65534 (nobody)
// with setpriv; skipped where the test is not root or the kernel refuses user namespaces.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { makeApp, up, httpRequest, waitNothingLeft } from './harness.mjs';

const NOBODY = 65534;

function userNamespacesWork() {
  if (process.getuid() !== 0) return false;
  try {
    execFileSync('setpriv', ['--reuid', String(NOBODY), '--regid', String(NOBODY), '--clear-groups',
      'unshare', '--user', '--map-root-user', '--mount', 'true'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function chownTree(dir, uid) {
  fs.chownSync(dir, uid, uid);
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) chownTree(p, uid); else fs.chownSync(p, uid, uid);
  }
}

test('as an ordinary user: user-namespace sandbox, writes invisible on the host and reported', { timeout: 20000, skip: !userNamespacesWork() && 'needs root to switch users, and user namespaces' }, async (t) => {
  const app = makeApp(t, 'writer', {
    files: { 'phoenix.toml': '[process.web]\ninstances = 1\nstop_timeout = "2s"\n' },
  });
  fs.chmodSync(app.root, 0o755);
  chownTree(app.root, NOBODY);  // the app, its state folder and the events file's folder
  const px = await up(app, [], {
    wrap: ['setpriv', '--reuid', String(NOBODY), '--regid', String(NOBODY), '--clear-groups'],
  });
  const [inst] = await px.waitReady(1);
  assert.match(px.stdout, /user-namespace isolation/);
  const seen = (await httpRequest(inst.port, '/')).json;
  assert.equal(seen.did.written, 'ok');
  assert.ok(!fs.existsSync(path.join(app.dir, 'written.txt')), 'the write stayed in the layer');

  px.child.kill('SIGTERM');
  const died = await px.waitEvent((e) => e.event === 'died', { what: 'web.1 died' });
  assert.equal(died.reason, 'shutdown');
  assert.ok(died.lost.paths.includes('written.txt'), JSON.stringify(died.lost));
  assert.equal((await px.waitExit(5000)).code, 0);
  assert.deepEqual(fs.readdirSync(path.join(fs.readdirSync(app.stateDir).map((d) => path.join(app.stateDir, d))[0], 'layers')), [],
    'every layer was removed, even overlay work folders an ordinary user cannot enter');
  await waitNothingLeft(app);
});
