// phoenix audit against real Node apps: the photos examples (all three mistakes found; the
// stateless one clean, with a real redis-server), one small app per kind of state, a HAR
// recording, and bad input. The JSON report is checked against docs/audit-report.schema.json,
// the JUnit report against the JUnit XML structure CI systems read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { REPO, makeApp, phoenix, phoenixBackground, processesWith, startRedis, waitFor } from './harness.mjs';

const SCENARIOS = path.join(REPO, 'tests', 'integration', 'audit');
const SCHEMA = JSON.parse(fs.readFileSync(path.join(REPO, 'docs', 'audit-report.schema.json'), 'utf8'));

// The part of JSON Schema the report's schema uses: type, enum, required, properties, items, $ref.
function validate(value, schema, where = '$', root = schema) {
  if (schema.$ref) return validate(value, root.$defs[schema.$ref.split('/').pop()], where, root);
  const type = Array.isArray(value) ? 'array' : value === null ? 'null' : typeof value;
  if (schema.type) {
    const ok = schema.type === 'integer' ? Number.isInteger(value) : schema.type === type;
    assert.ok(ok, `${where}: expected ${schema.type}, got ${type}`);
  }
  if (schema.enum) assert.ok(schema.enum.includes(value), `${where}: ${JSON.stringify(value)} not in ${schema.enum}`);
  if (schema.pattern) assert.match(value, new RegExp(schema.pattern), where);
  if (schema.required) for (const key of schema.required) assert.ok(key in value, `${where}: missing ${key}`);
  if (schema.properties && type === 'object') {
    for (const [key, sub] of Object.entries(schema.properties)) {
      if (key in value) validate(value[key], sub, `${where}.${key}`, root);
    }
  }
  if (schema.items && type === 'array') value.forEach((item, i) => validate(item, schema.items, `${where}[${i}]`, root));
}

function checkJunit(xml) {
  assert.match(xml, /^<\?xml version="1.0" encoding="UTF-8"\?>\n<testsuites /);
  const tests = Number(xml.match(/<testsuites [^>]*tests="(\d+)"/)[1]);
  const failures = Number(xml.match(/<testsuites [^>]*failures="(\d+)"/)[1]);
  assert.equal((xml.match(/<testcase /g) || []).length, tests);
  assert.equal((xml.match(/<failure /g) || []).length, failures);
  // Balanced elements, nothing unescaped.
  assert.equal((xml.match(/<testcase /g) || []).length, (xml.match(/<\/testcase>/g) || []).length);
  assert.doesNotMatch(xml.replace(/<[^>]+>/g, ''), /[<>]/);
  return { tests, failures };
}

async function audit(t, app, args, { env = {}, timeout = 120000 } = {}) {
  const json = path.join(app.root, 'report.json');
  const junit = path.join(app.root, 'report.xml');
  const r = await phoenix(app, ['audit', app.dir, '--json', json, '--junit', junit, ...args], { env, timeout });
  const report = fs.existsSync(json) ? JSON.parse(fs.readFileSync(json, 'utf8')) : null;
  const xml = fs.existsSync(junit) ? fs.readFileSync(junit, 'utf8') : null;
  if (report) validate(report, SCHEMA);
  if (xml) checkJunit(xml);
  return { ...r, report, xml };
}

const kinds = (report) => [...new Set(report.findings.map((f) => f.kind))].sort();

test('photos-stateful: all three mistakes found, with the uploaded bytes as evidence', async (t) => {
  const app = makeApp(t, 'photos-stateful', { source: path.join(REPO, 'examples', 'photos-stateful') });
  const r = await audit(t, app, ['--scenario', path.join(app.dir, 'audit', 'scenario.json')]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.equal(r.report.verdict, 'stateful');
  assert.deepEqual(kinds(r.report), ['global-cache', 'session-file', 'upload-on-disk']);
  const upload = r.report.findings.find((f) => f.kind === 'upload-on-disk');
  assert.ok(upload.files.some((f) => f.path.startsWith('uploads/') && /same bytes/.test(f.evidence || '')), JSON.stringify(upload));
  const session = r.report.findings.find((f) => f.kind === 'session-file' && f.run === 'spread');
  assert.equal(session.step, 2);
  assert.match(session.instances, /web\.1#1 -> web\.2#1/);
  assert.ok(session.files.some((f) => f.path.startsWith('sessions/')));
  assert.match(r.stdout, /keeps server-local state/);
  assert.match(r.stdout, /fix: /);
  const { failures } = checkJunit(r.xml);
  assert.ok(failures >= 3);
  // Nothing left behind: no work folder, no phoenix.
  assert.doesNotMatch(r.stderr, /kept in/);
});

test('photos-stateless: clean, with its sessions and photos in a real redis-server', async (t) => {
  const app = makeApp(t, 'photos-stateless', { source: path.join(REPO, 'examples', 'photos-stateless') });
  const redis = await startRedis(app);
  const r = await audit(t, app, ['--scenario', path.join(app.dir, 'audit', 'scenario.json')], { env: { REDIS_URL: redis.url } });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(r.report.verdict, 'stateless');
  assert.deepEqual(r.report.findings, []);
  assert.equal(r.report.runs.length, 4);
  assert.equal(r.report.runs[2].instances, 2);
  // The spread run really alternated instances, and the reborn run really replaced them.
  assert.deepEqual(r.report.runs[2].steps.map((s) => s.served_by.split('#')[0]), ['web.1', 'web.2', 'web.1', 'web.2', 'web.1', 'web.2']);
  const reborn = r.report.runs[3].steps.map((s) => s.served_by);
  assert.equal(new Set(reborn).size, reborn.length, reborn.join(' '));
  assert.equal(checkJunit(r.xml).failures, 0);
});

for (const [mode, scenario, expected] of [
  ['memory-session', 'sessions.json', ['session-memory']],
  ['cookie-session', 'sessions.json', []],
  ['global-cache', 'notes.json', ['global-cache']],
  ['json-db', 'notes.json', ['local-db-file']],
  ['tmp-db', 'notes.json', ['local-db-file']],
  ['polling', 'polling.json', ['in-memory-websocket-state']],
  // The refresh answers 200 either way; what differs is the token it leaves out, and the step
  // that needs it cannot be sent: that is state, not a pass.
  ['memory-token', 'tokens.json', ['global-cache']],
  ['cookie-session', 'tokens.json', []],
  ['stateless', 'notes.json', []],
]) {
  test(`a ${mode} app, ${scenario}: ${expected.length ? expected.join(', ') : 'clean'}`, async (t) => {
    const app = makeApp(t, 'audit-kinds', { files: { '.env': `MODE=${mode}\n` } });
    const r = await audit(t, app, ['--scenario', path.join(SCENARIOS, scenario)]);
    assert.equal(r.code, expected.length ? 1 : 0, r.stdout + r.stderr);
    assert.deepEqual(kinds(r.report), expected, r.stdout);
    if (mode === 'json-db' || mode === 'tmp-db') {
      const f = r.report.findings[0];
      const file = mode === 'json-db' ? 'data/notes.json' : '/tmp/notes.json';
      assert.ok(f.files.some((w) => w.path === file && w.step === 3), JSON.stringify(f));
    }
  });
}

test('a HAR recording: other hosts skipped, recorded statuses checked, cookies from the jar', async (t) => {
  const app = makeApp(t, 'photos-stateful', { source: path.join(REPO, 'examples', 'photos-stateful') });
  const r = await audit(t, app, ['--har', path.join(SCENARIOS, 'photos.har')]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.ok(kinds(r.report).includes('session-file'), r.stdout);
  assert.ok(r.report.warnings.some((w) => w.includes('https://cdn.example.com/app.css')));
  assert.equal(r.report.runs[0].steps.length, 4);
});

test('bad input: a scenario error names the step and the field; a broken baseline exits 2', async (t) => {
  const app = makeApp(t, 'audit-kinds');
  let r = await phoenix(app, ['audit', app.dir, '--scenario', path.join(SCENARIOS, 'bad-field.json')]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /bad-field\.json: step 2 \('typo'\): unknown field 'expct' \(did you mean 'expect'\?\)/);
  r = await phoenix(app, ['audit', app.dir, '--scenario', path.join(app.root, 'missing.json')]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /missing\.json: cannot read/);
  fs.writeFileSync(path.join(app.root, 'not.har'), '{"log": {"entries": [ }');
  r = await phoenix(app, ['audit', app.dir, '--har', path.join(app.root, 'not.har')]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /not\.har:1:\d+: not valid JSON/);
  r = await phoenix(app, ['audit', app.dir]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--scenario FILE, --har FILE/);
  const broken = await audit(t, app, ['--scenario', path.join(SCENARIOS, 'broken-baseline.json')]);
  assert.equal(broken.code, 2, broken.stdout + broken.stderr);
  assert.equal(broken.report.verdict, 'baseline-broken');
  assert.match(broken.stdout, /the baseline is broken: step 1 \('home'\) fails on the baseline .*status 200 \(expected 418\)/);
});

test('a test command: BASE_URL set, its requests compared one by one, the failing one named', async (t) => {
  const app = makeApp(t, 'photos-stateful', { source: path.join(REPO, 'examples', 'photos-stateful') });
  const r = await audit(t, app, ['--', path.join(SCENARIOS, 'login-test.sh')]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.deepEqual(kinds(r.report), ['session-file']);
  const spread = r.report.findings.find((f) => f.run === 'spread');
  assert.equal(spread.step, 2);
  assert.ok(spread.evidence.some((e) => /test command failed in this run \(exit 1\)/.test(e)), JSON.stringify(spread));
  assert.match(r.report.source, /^command .*login-test\.sh$/);
  assert.equal(r.report.runs[0].steps.length, 3);
});

test('an audit stopped by SIGTERM or Ctrl-C stops its runs and test command, and removes its work folder', async (t) => {
  for (const sig of ['SIGTERM', 'SIGINT']) {
    const app = makeApp(t, 'echo');
    const tmp = path.join(app.root, 'tmp');
    fs.mkdirSync(tmp);
    // A test command that never ends, with a child of its own (as npm test runs node).
    const run = phoenixBackground(app, ['audit', app.dir, '--', 'sh', '-c', 'sleep 300 & sleep 301; wait'],
      { env: { TMPDIR: tmp } });
    await waitFor(() => processesWith(app.marker).some((p) => /^sleep 301/.test(p.cmdline)),
      { timeout: 30000, what: 'the test command running' });
    assert.match(fs.readdirSync(tmp).join(' '), /^phoenix-audit-\w+$/, 'the work folder, under $TMPDIR');
    run.child.kill(sig);
    const r = await run.exitWithin(30000);
    assert.ok(r, `audit did not exit after ${sig}`);
    // It dies of the signal itself, so that a script running audits in a loop stops too.
    assert.equal(r.signal, sig, `${r.code} ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`audit: ${sig.slice(3)}: stopping its runs`));
    assert.doesNotMatch(r.stdout, /stateless|keeps server-local state/, 'no verdict');
    assert.deepEqual(fs.readdirSync(tmp), [], 'the work folder is gone');
    await waitFor(() => processesWith(app.marker).length === 0,
      { timeout: 10000, what: 'no process of the audit left', describe: () => JSON.stringify(processesWith(app.marker)) });
  }
});

test('an audit killed with SIGKILL: its phoenix run stops its instances all the same', async (t) => {
  const app = makeApp(t, 'echo');
  const run = phoenixBackground(app, ['audit', app.dir, '--', 'sh', '-c', 'sleep 302']);
  await waitFor(() => processesWith(app.marker).some((p) => /^sleep 302/.test(p.cmdline)),
    { timeout: 30000, what: 'the test command running' });
  const runs = () => processesWith(app.marker).filter((p) => !/^(sh -c )?sleep 302/.test(p.cmdline));
  assert.ok(runs().some((p) => / up .* --audit /.test(p.cmdline)), JSON.stringify(runs()));
  run.child.kill('SIGKILL');
  await run.exitWithin(10000);
  await waitFor(() => runs().length === 0,
    { timeout: 20000, what: 'the phoenix run and its instances gone', describe: () => JSON.stringify(runs()) });
  // (The test command itself, orphaned by a SIGKILL nobody can catch, is ours to stop.)
  for (const p of processesWith(app.marker)) process.kill(p.pid, 'SIGKILL');
});

test('a test command: clean on the stateless example; a command that fails on the baseline exits 2', async (t) => {
  const app = makeApp(t, 'photos-stateless', { source: path.join(REPO, 'examples', 'photos-stateless') });
  const redis = await startRedis(app);
  const r = await audit(t, app, ['--', path.join(SCENARIOS, 'login-test.sh')], { env: { REDIS_URL: redis.url } });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(r.report.verdict, 'stateless');
  const broken = await audit(t, app, ['--', 'sh', '-c', 'echo "expected 200, got 500" >&2; exit 3'], { env: { REDIS_URL: redis.url } });
  assert.equal(broken.code, 2, broken.stdout + broken.stderr);
  assert.equal(broken.report.verdict, 'baseline-broken');
  assert.match(broken.stdout, /the test command fails on the baseline .*exit 3\nexpected 200, got 500/);
  // A command that passes once and then fails (it left a record in the shared store that its
  // next run trips on): the second baseline fails too, so the spread runs are not to blame.
  const once = path.join(app.root, 'ran-once');
  const twice = await audit(t, app, ['--', 'sh', '-c', `if [ -e ${once} ]; then echo "user ana exists" >&2; exit 4; fi; touch ${once}`], { env: { REDIS_URL: redis.url } });
  assert.equal(twice.code, 2, twice.stdout + twice.stderr);
  assert.equal(twice.report.verdict, 'baseline-broken', twice.stdout + twice.stderr);
  assert.match(twice.stdout, /failed on a second baseline run .*exit 4.*\nuser ana exists/s);
  // A test that never uses BASE_URL (supertest runs the app in the test's own process) passes
  // every run without a request: no verdict on no evidence.
  const none = await audit(t, app, ['--', 'true'], { env: { REDIS_URL: redis.url } });
  assert.equal(none.code, 2, none.stdout + none.stderr);
  assert.match(none.stdout + none.stderr, /inconclusive: no request reached the app/);
});

// The corpus on real libraries: Express with express-session (MemoryStore, session-file-store,
// connect-redis), cookie-session, jsonwebtoken, multer, socket.io; and Redis-backed fixes.
for (const [mode, scenario, expected, needsRedis] of [
  ['memory-session', 'express-sessions.json', ['session-memory']],
  ['file-session', 'express-sessions.json', ['session-file']],
  ['redis-session', 'express-sessions.json', [], true],
  ['cookie-session', 'express-sessions.json', []],
  ['jwt', 'express-jwt.json', []],
  ['multer-dest', 'express-uploads.json', ['upload-on-disk']],
  ['shared-uploads', 'express-uploads.json', [], true],
  ['module-array', 'express-items.json', ['global-cache']],
  ['json-db', 'express-items.json', ['local-db-file']],
  ['redis-items', 'express-items.json', [], true],
  ['socketio', 'express-chat.json', ['in-memory-websocket-state']],
]) {
  test(`Express, ${mode}: ${expected.length ? expected.join(', ') : 'clean'}`, async (t) => {
    const app = makeApp(t, 'audit-express', { files: { '.env': `MODE=${mode}\n` } });
    const env = needsRedis ? { REDIS_URL: (await startRedis(app)).url } : {};
    const r = await audit(t, app, ['--scenario', path.join(SCENARIOS, scenario)], { env });
    assert.equal(r.code, expected.length ? 1 : 0, r.stdout + r.stderr);
    assert.deepEqual(kinds(r.report), expected, r.stdout);
    if (mode === 'multer-dest') {
      assert.ok(r.report.files.some((f) => f.path.startsWith('uploads/') && /same bytes/.test(f.evidence || '')), JSON.stringify(r.report.files));
    }
  });
}

// The same corpus from the two other sources: the user's own tests (curl scripts) and browser
// recordings (HAR, made here from the requests a browser would send; uploads and socket.io are
// left out of HAR: their ids are generated per run, so a recording cannot be replayed as is).
function har(requests) {
  return JSON.stringify({
    log: {
      version: '1.2', creator: { name: 'phoenix tests', version: '1' },
      pages: [{ id: 'p', title: 'http://app.example:3000/' }],
      entries: requests.map(([method, url, status, body, headers = []]) => ({
        request: {
          method, url: `http://app.example:3000${url}`,
          headers: [{ name: 'Accept-Encoding', value: 'gzip' }, ...headers],
          ...(body ? { postData: { mimeType: body[0], text: body[1] } } : {}),
        },
        response: { status },
      })),
    },
  });
}
const HARS = {
  sessions: har([['POST', '/login', 200, ['application/x-www-form-urlencoded', 'user=ana']],
    ['GET', '/me', 200], ['GET', '/me', 200]]),
  items: har([['POST', '/items', 201, ['application/json', '{"name":"milk"}']],
    ['GET', '/items', 200], ['GET', '/items', 200]]),
};

for (const [mode, script, harName, expected, needsRedis] of [
  ['memory-session', 'express-sessions-test.sh', 'sessions', ['session-memory']],
  ['file-session', 'express-sessions-test.sh', 'sessions', ['session-file']],
  ['redis-session', 'express-sessions-test.sh', 'sessions', [], true],
  ['cookie-session', 'express-sessions-test.sh', 'sessions', []],
  ['jwt', 'express-jwt-test.sh', null, []],
  ['multer-dest', 'express-uploads-test.sh', null, ['upload-on-disk']],
  ['shared-uploads', 'express-uploads-test.sh', null, [], true],
  ['module-array', 'express-items-test.sh', 'items', ['global-cache']],
  ['json-db', 'express-items-test.sh', 'items', ['local-db-file']],
  ['redis-items', 'express-items-test.sh', 'items', [], true],
  ['socketio', 'express-chat-test.sh', null, ['in-memory-websocket-state']],
]) {
  test(`Express, ${mode}, from a test command${harName ? ' and a HAR' : ''}: ${expected.length ? expected.join(', ') : 'clean'}`, async (t) => {
    const app = makeApp(t, 'audit-express', { files: { '.env': `MODE=${mode}\n` } });
    const env = needsRedis ? { REDIS_URL: (await startRedis(app)).url } : {};
    const r = await audit(t, app, ['--', path.join(SCENARIOS, script)], { env });
    assert.equal(r.code, expected.length ? 1 : 0, r.stdout + r.stderr);
    assert.deepEqual(kinds(r.report), expected, r.stdout);
    if (harName) {
      const file = path.join(app.root, `${harName}.har`);
      fs.writeFileSync(file, HARS[harName]);
      const h = await audit(t, app, ['--har', file], { env });
      assert.equal(h.code, expected.length ? 1 : 0, h.stdout + h.stderr);
      assert.deepEqual(kinds(h.report), expected, h.stdout);
    }
  });
}
