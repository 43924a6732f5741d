// When phoenix itself is killed with SIGKILL (no destructor runs), every process it started is
// gone within a second, orphans included, and no overlay mount is left. The next `phoenix up`
// reports the incarnations that died with it (reason phoenix-killed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeApp, up, phoenix, processesWith, mountsWith, readEvents, waitFor, waitNothingLeft } from './harness.mjs';

test('SIGKILL of phoenix leaves no process and no mount; the next up reports phoenix-killed', { timeout: 25000 }, async (t) => {
  const app = makeApp(t, 'echo', {
    files: {
      Procfile: 'web: node server.js\nworker: node worker.js\n',
      '.env': 'SPAWN_ORPHAN=1\n',
      'phoenix.toml': '[process.worker]\nstop_timeout = "1s"\n',
    },
  });
  const px = await up(app, ['--scale', 'web=2,worker=1']);
  await px.waitReady(2);
  await px.waitReady(1, { type: 'worker' });
  await px.waitOutput(/worker spawned orphan pid \d+/);

  // The detection works: before the kill, the test sees the instances and their overlay mounts.
  await waitFor(() => processesWith(app.marker).some((p) => p.cmdline.startsWith('sleep 300')), { timeout: 3000, what: 'the orphan sleep' });
  const before = processesWith(app.marker);
  assert.ok(before.length >= 6, `phoenix, inits, node x3, sleep: ${JSON.stringify(before)}`);
  assert.ok(mountsWith(app.stateDir).length >= 3, `overlay mounts with upperdir under the state dir:\n${mountsWith(app.stateDir).join('\n')}`);

  px.child.kill('SIGKILL');
  const exit = await px.waitExit(3000);
  assert.equal(exit.signal, 'SIGKILL');
  await waitNothingLeft(app, { timeout: 1000 });

  const ps = await phoenix(app, ['ps']);
  assert.equal(ps.code, 1);
  assert.match(ps.stderr, /phoenix is not running for this app/);

  // The next phoenix finds the layers of the killed incarnations and reports what they lost.
  const again = await up(app, ['--scale', 'web=2,worker=1']);
  await again.waitReady(2);
  const died = readEvents(app.eventsFile).filter((e) => e.event === 'died');
  assert.deepEqual(died.map((e) => e.instance).sort(), ['web.1', 'web.2', 'worker.1'], JSON.stringify(died));
  for (const d of died) {
    assert.equal(d.reason, 'phoenix-killed', JSON.stringify(d));
    // When it died is unknown; how long it can have lived is (since its birth), not "0s".
    assert.ok(typeof d.age_at_most_s === 'number' && !('age_s' in d), JSON.stringify(d));
  }
  assert.match(again.stdout, /web\.1 #1 died within \S+ of its birth \(phoenix-killed\)/);
});
