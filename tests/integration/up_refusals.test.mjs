// `phoenix up` refuses bad input before starting anything: exit 2, a message on stderr that says
// what and where (file:line:col, key), and nothing left behind. A second `up` of a running app
// refuses too. Commands for an app that is not running say so.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { makeApp, up, phoenix, ps, freePort, readEvents, waitNothingLeft, httpGet } from './harness.mjs';

/** Runs `phoenix up` on the app, expecting a refusal; checks that nothing was left behind. */
async function expectRefusal(app, extraArgs, pattern, { dir = app.dir, port } = {}) {
  const p = port || (await freePort());
  const r = await phoenix(app, ['up', dir, '--port', String(p), '--events', app.eventsFile, ...extraArgs], { timeout: 8000 });
  assert.equal(r.code, 2, `expected exit 2, got ${r.code ?? r.signal}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  assert.match(r.stderr, pattern);
  assert.equal(readEvents(app.eventsFile).length, 0, 'an instance was started');
  await waitNothingLeft(app, { timeout: 1000 });
  const after = await phoenix(app, ['ps', '--json']);
  assert.notEqual(after.code, 0, `ps found a running phoenix: ${after.stdout}`);
  return r;
}

const cases = [
  {
    name: 'DIR that does not exist',
    args: (app) => ({ dir: path.join(app.root, 'no-such-dir') }),
    pattern: /no-such-dir: no such directory/,
  },
  {
    name: 'missing Procfile',
    prepare: (app) => fs.rmSync(path.join(app.dir, 'Procfile')),
    pattern: /Procfile: not found/,
  },
  {
    name: 'empty Procfile',
    files: { Procfile: '' },
    pattern: /Procfile: no process types/,
  },
  {
    name: 'malformed Procfile line names Procfile:LINE:COL',
    files: { Procfile: '# comment\n\nweb: node server.js\nthis is bad\n' },
    pattern: /Procfile:4:\d+: malformed line/,
  },
  {
    name: 'TOML syntax error names phoenix.toml:LINE:COL',
    files: { 'phoenix.toml': '[process.web]\ninstances = \n' },
    pattern: /phoenix\.toml:2:\d+: /,
  },
  {
    name: 'unknown key with did-you-mean',
    files: { 'phoenix.toml': '[process.web]\ninstance = 3\n' },
    pattern: /phoenix\.toml:2:\d+: unknown key 'process\.web\.instance' \(did you mean 'instances'\?\)/,
  },
  {
    name: 'unknown table with did-you-mean',
    files: { 'phoenix.toml': '[routr]\nport = 5000\n' },
    pattern: /phoenix\.toml:1:\d+: unknown table 'routr' \(did you mean 'router'\?\)/,
  },
  {
    name: 'bad duration names the key',
    files: { 'phoenix.toml': '[process.web]\nmax_age = "4 parsecs"\n' },
    pattern: /phoenix\.toml:2:\d+: process\.web\.max_age: invalid duration '4 parsecs'/,
  },
  {
    name: 'bad filesystem mode',
    files: { 'phoenix.toml': '[filesystem]\nmode = "sometimes"\n' },
    pattern: /phoenix\.toml:2:\d+: filesystem\.mode: unknown mode 'sometimes'/,
  },
  {
    name: 'malformed .env line names .env:LINE:COL',
    files: { '.env': 'GOOD=1\nFOO\n' },
    pattern: /\.env:2:\d+: /,
  },
  {
    name: '--scale of a type the Procfile does not define',
    extra: ['--scale', 'web=1,wroker=2'],
    pattern: /--scale: unknown process type 'wroker'/,
  },
  {
    name: '--config FILE that does not exist',
    extra: (app) => ['--config', path.join(app.root, 'missing.toml')],
    pattern: /missing\.toml: not found/,
  },
];

for (const c of cases) {
  test(`up refuses: ${c.name} (exit 2, nothing started)`, { timeout: 15000 }, async (t) => {
    const app = makeApp(t, 'echo', { files: c.files || {} });
    if (c.prepare) c.prepare(app);
    const extra = typeof c.extra === 'function' ? c.extra(app) : c.extra || [];
    await expectRefusal(app, extra, c.pattern, c.args ? c.args(app) : {});
  });
}

test('up refuses a busy port (exit 2, nothing started)', { timeout: 15000 }, async (t) => {
  const app = makeApp(t, 'echo');
  const server = net.createServer();
  await new Promise((resolve, reject) => { server.once('error', reject); server.listen(0, '127.0.0.1', resolve); });
  t.after(() => new Promise((resolve) => server.close(resolve)));
  const { port } = server.address();
  await expectRefusal(app, [], new RegExp(`port ${port} is busy`), { port });
});

// SO_REUSEPORT (one listener a router loop) lets another process of the same user bind the
// same port and take a share of its connections, silently: a second phoenix (another app)
// left on the same port must be refused, not split the traffic of the first.
test('up refuses a port another phoenix (SO_REUSEPORT) already serves; the first keeps all traffic', { timeout: 30000 }, async (t) => {
  const first = makeApp(t, 'router-echo', { files: { 'phoenix.toml': '[router]\nthreads = 2\n\n[process.web]\ninstances = 1\n' } });
  const px = await up(first);
  await px.waitReady(1);
  const second = makeApp(t, 'echo');
  await expectRefusal(second, [], new RegExp(`port ${px.port} is busy \\(another process listens on it\\)`), { port: px.port });
  // Every request still reaches the first app (the refused one never took a connection).
  for (let i = 0; i < 10; i++) {
    const r = await httpGet(px.port, '/who');
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body).url, '/who', 'answered by the first app');
  }
});

test('a second up of a running app exits 2 "already running" and disturbs nothing', { timeout: 15000 }, async (t) => {
  const app = makeApp(t, 'echo');
  const px = await up(app);
  const before = await px.waitReady(2);
  const otherEvents = path.join(app.root, 'second.jsonl');
  const r = await phoenix(app, ['up', app.dir, '--port', String(await freePort()), '--events', otherEvents], { timeout: 8000 });
  assert.equal(r.code, 2, `exit ${r.code}: ${r.stderr}`);
  assert.match(r.stderr, /already running/);
  assert.match(r.stderr, new RegExp(`pid ${px.pid}`), 'names the running phoenix');
  assert.equal(readEvents(otherEvents).length, 0);
  const after = await ps(app);
  assert.deepEqual(after.map((i) => [i.instance, i.pid, i.state]), before.map((i) => [i.instance, i.pid, i.state]));
  assert.equal(px.result, null, 'the first phoenix still runs');
});

test('commands for an app that is not running exit 1 "phoenix is not running for this app"', { timeout: 15000 }, async (t) => {
  const app = makeApp(t, 'echo');
  for (const args of [['ps'], ['ps', '--json'], ['scale', 'web=3'], ['kill', 'web.1'], ['logs'], ['stop']]) {
    const r = await phoenix(app, args);
    assert.equal(r.code, 1, `phoenix ${args.join(' ')}: exit ${r.code}`);
    assert.match(r.stderr, /phoenix is not running for this app/, `phoenix ${args.join(' ')}: ${r.stderr}`);
  }
});
