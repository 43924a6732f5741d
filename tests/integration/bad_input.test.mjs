// Bad input on the command line and in the environment of phoenix itself: each is refused with
// exit 2 and a message that names what was wrong, before anything starts, or (for the events
// file) reported once on the terminal. Never a crash, never a silently different meaning.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { makeApp, phoenix, freePort, readEvents, waitNothingLeft } from './harness.mjs';

/** Asserts a refusal: exit 2 (not a signal), `pattern` on stderr, no instance started. */
async function expectUsageError(app, args, pattern, { env = {} } = {}) {
  const r = await phoenix(app, args, { timeout: 8000, env });
  assert.equal(r.code, 2, `expected exit 2, got ${r.code ?? r.signal}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  assert.match(r.stderr, pattern);
  assert.equal(readEvents(app.eventsFile).length, 0, 'an instance was started');
  await waitNothingLeft(app, { timeout: 1000 });
  return r;
}

test('up refuses a state folder whose control socket path is too long for a unix socket', { timeout: 15000 }, async (t) => {
  const app = makeApp(t, 'echo');
  const longBase = path.join(app.root, 's'.repeat(90));
  const port = await freePort();
  await expectUsageError(app, ['up', app.dir, '--port', String(port), '--events', app.eventsFile],
    /control\.sock: path too long for a unix socket \(\d+ bytes, at most 107\); set PHOENIX_STATE_DIR/,
    { env: { PHOENIX_STATE_DIR: longBase } });
  assert.equal(fs.existsSync(longBase), false, 'the state folder was made anyway');
});
