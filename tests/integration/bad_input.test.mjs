// Bad input on the command line and in the environment of phoenix itself: each is refused with
// exit 2 and a message that names what was wrong, before anything starts, or (for the events
// file) reported once on the terminal. Never a crash, never a silently different meaning.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { makeApp, phoenix, phoenixBackground, freePort, portAccepts, readEvents, waitFor, waitNothingLeft } from './harness.mjs';

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

// CLI11 read numbers as C does: "044267" was octal (port 18615), "0x48A9" hex, "nan" a fraction.
const numberCases = [
  { args: (app) => ['up', app.dir, '--port', '0x48A9', '--events', app.eventsFile], pattern: /^phoenix: --port: '0x48A9' is not a whole number \(expected 1\.\.65535\)$/m },
  { args: (app) => ['up', app.dir, '--port', '70000', '--events', app.eventsFile], pattern: /^phoenix: --port: 70000 is out of range \(1\.\.65535\)$/m },
  { args: (app) => ['audit', app.dir, '--instances', '0x3', '--scenario', 'x.json'], pattern: /^phoenix: --instances: '0x3' is not a whole number \(expected 2\.\.16\)$/m },
  { args: () => ['drill', '--fraction', 'nan'], pattern: /^phoenix: drill: --fraction: 'nan' is not a decimal number/m },
  { args: () => ['drill', '--fraction', '0x1p-1'], pattern: /^phoenix: drill: --fraction: '0x1p-1' is not a decimal number/m },
];

for (const c of numberCases) {
  test(`numbers on the command line are plain decimal: ${c.args({ dir: 'DIR', eventsFile: 'EV' }).join(' ')}`, { timeout: 15000 }, async (t) => {
    const app = makeApp(t, 'echo');
    await expectUsageError(app, c.args(app), c.pattern);
  });
}

test('--port with a leading zero is decimal, as $PORT is', { timeout: 20000 }, async (t) => {
  const app = makeApp(t, 'echo');
  const port = await freePort();
  const px = phoenixBackground(app, ['up', app.dir, '--port', `0${port}`, '--events', app.eventsFile]);
  await px.waitOutput(`router on http://0.0.0.0:${port} `);
  await waitFor(() => portAccepts(port), { timeout: 10000, what: `port ${port} to accept` });
  const stop = await phoenix(app, ['stop']);
  assert.equal(stop.code, 0, stop.stderr);
  const r = await px.exitWithin(10000);
  assert.ok(r, 'phoenix did not exit after stop');
  assert.equal(r.code, 0, r.stderr);
});

// --scale took every following word, so `up --scale web=1 DIR` read DIR as a scale entry.
test('--scale takes one word per occurrence: up --scale web=1 --scale worker=2 DIR', { timeout: 20000 }, async (t) => {
  const app = makeApp(t, 'echo', { files: { Procfile: 'web: node server.js\nworker: node worker.js\n' } });
  const port = await freePort();
  const px = phoenixBackground(app, ['up', '--scale', 'web=1', '--scale', 'worker=2', app.dir, '--port', String(port), '--events', app.eventsFile]);
  let last = '';
  await waitFor(async () => {
    if (px.child.exitCode !== null) throw new Error(`phoenix exited ${px.child.exitCode}: ${px.out.stderr}`);
    const r = await phoenix(app, ['ps', '--json']);
    if (r.code !== 0) return false;
    last = r.stdout;
    const list = JSON.parse(r.stdout);
    const count = (type) => list.filter((i) => i.type === type && i.state === 'ready').length;
    return list.length === 3 && count('web') === 1 && count('worker') === 2;
  }, { timeout: 10000, what: '1 web and 2 workers ready', describe: () => `last ps: ${last}\nstderr: ${px.out.stderr}` });
  const stop = await phoenix(app, ['stop']);
  assert.equal(stop.code, 0, stop.stderr);
  assert.ok(await px.exitWithin(10000), 'phoenix did not exit after stop');
});

test('--scale entries are still checked: a repeated type names the flag', { timeout: 15000 }, async (t) => {
  const app = makeApp(t, 'echo');
  await expectUsageError(app, ['up', '--scale', 'web=1', '--scale', 'web=2', app.dir, '--events', app.eventsFile],
    /^phoenix: --scale: entry 'web=2': process type 'web' is given twice$/m);
});

// `audit --scenario /dev/zero` read without end (2 GB before the probe stopped it).
test('audit refuses traffic files that are endless or folders, before starting anything', { timeout: 20000 }, async (t) => {
  const app = makeApp(t, 'echo');
  await expectUsageError(app, ['audit', app.dir, '--scenario', '/dev/zero'],
    /^phoenix audit: \/dev\/zero: larger than 16 MiB, the most phoenix reads as a scenario; is this the right file\?$/m);
  await expectUsageError(app, ['audit', app.dir, '--har', app.root],
    new RegExp(`: is a directory, expected a recording file$`, 'm'));
});

// Writes to --events were ignored: with a full disk every event was lost without a word.
test('events that cannot be written are reported once on the terminal', { timeout: 20000 }, async (t) => {
  const app = makeApp(t, 'echo');
  const port = await freePort();
  const px = phoenixBackground(app, ['up', app.dir, '--port', String(port), '--events', '/dev/full']);
  await px.waitOutput('warning: --events /dev/full: No space left on device; events are being lost');
  // Two births and two readies later, still one warning.
  await waitFor(async () => {
    const r = await phoenix(app, ['ps', '--json']);
    return r.code === 0 && JSON.parse(r.stdout).filter((i) => i.state === 'ready').length === 2;
  }, { timeout: 10000, what: 'two ready instances' });
  assert.equal(px.out.stdout.split('events are being lost').length - 1, 1, px.out.stdout);
  const stop = await phoenix(app, ['stop']);
  assert.equal(stop.code, 0, stop.stderr);
  assert.ok(await px.exitWithin(10000), 'phoenix did not exit after stop');
});

test('an unknown command is named, with the known ones', { timeout: 15000 }, async (t) => {
  const app = makeApp(t, 'echo');
  await expectUsageError(app, ['stpo'],
    /^phoenix: unknown command 'stpo' \(did you mean 'stop'\?\); commands: up, ps, scale, kill, logs, stop, rotate, drill, audit$/m);
  await expectUsageError(app, ['frobnicate', '--now'], /^phoenix: unknown command 'frobnicate'; commands: up, /m);
});
