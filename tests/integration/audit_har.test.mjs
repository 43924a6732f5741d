// phoenix audit --har with recordings as browsers make them: the app's host found where the
// page loads went (an identity provider's page or a tag manager's script first), entries in
// the order they started, a recording the baseline cannot replay called so (exit 2), bodies sent
// verbatim, non-ASCII paths encoded, reports valid UTF-8, uploads recorded with their bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { REPO, makeApp, phoenix } from './harness.mjs';

const FIXTURES = path.join(REPO, 'tests', 'integration', 'audit');
const APP = 'https://app.example';

// A Chrome-like entry: [method, url, status, { type, body: [mime, text], params, at, headers }].
function entry([method, url, status, { type = 'fetch', body, params, at, headers = [] } = {}], i) {
  const started = new Date(Date.UTC(2024, 4, 1, 10, 0, at ?? i)).toISOString();
  const postData = body ? { mimeType: body[0], text: body[1] } : params ? { mimeType: params[0], params: params[1] } : undefined;
  return {
    startedDateTime: started, _resourceType: type,
    request: { method, url, headers: [{ name: 'Accept-Encoding', value: 'gzip' }, ...headers], ...(postData ? { postData } : {}) },
    response: { status },
  };
}
function writeHar(app, name, title, entries) {
  const file = path.join(app.root, name);
  fs.writeFileSync(file, JSON.stringify({
    log: { version: '1.2', creator: { name: 'phoenix tests', version: '1' }, pages: [{ id: 'p', title }], entries: entries.map(entry) },
  }));
  return file;
}

async function audit(app, args, { env = {} } = {}) {
  const json = path.join(app.root, 'report.json');
  const junit = path.join(app.root, 'report.xml');
  fs.rmSync(json, { force: true });
  fs.rmSync(junit, { force: true });
  const r = await phoenix(app, ['audit', app.dir, '--json', json, '--junit', junit, ...args], { env, timeout: 120000 });
  const strict = new TextDecoder('utf-8', { fatal: true });  // throws on invalid UTF-8
  const report = fs.existsSync(json) ? JSON.parse(strict.decode(fs.readFileSync(json))) : null;
  const xml = fs.existsSync(junit) ? strict.decode(fs.readFileSync(junit)) : null;
  if (xml) assert.doesNotMatch(xml, /[\x00-\x08\x0b\x0c\x0e-\x1f]/, 'XML 1.0 has no such characters');
  return { ...r, report, xml };
}
const kinds = (report) => [...new Set(report.findings.map((f) => f.kind))].sort();

const login = ['POST', `${APP}/login`, 200, { type: 'document', body: ['application/x-www-form-urlencoded', 'user=ana'] }];
const me = ['GET', `${APP}/me`, 200];

test('an identity provider first, or a tag manager: the app is where the page loads went', async (t) => {
  const app = makeApp(t, 'audit-kinds', { files: { '.env': 'MODE=memory-session\n' } });
  const idp = [['GET', 'https://login.idp.example/authorize?client_id=shop', 200, { type: 'document' }],
    ['POST', 'https://login.idp.example/u/login', 302, { type: 'document', body: ['application/x-www-form-urlencoded', 'u=ana'] }]];
  const home = ['GET', `${APP}/cb?code=x`, 200, { type: 'document' }];  // where the identity provider sends back
  const sso = writeHar(app, 'sso.har', 'https://login.idp.example/authorize?client_id=shop', [...idp, home, login, me, me]);
  let r = await audit(app, ['--har', sso]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.equal(r.report.app, 'app.example');
  assert.deepEqual(kinds(r.report), ['session-memory']);
  assert.ok(r.report.warnings.some((w) => w === 'not replayed (another host): POST https://login.idp.example/u/login'), r.stdout);
  assert.ok(r.report.warnings.some((w) => /^replayed the requests to app\.example \(2 of the 4 page loads/.test(w)), r.stdout);
  // A tag manager's script first, a document title, and the default port written out.
  const gtm = writeHar(app, 'gtm.har', 'Shop \u2013 Dashboard', [['GET', 'https://www.googletagmanager.com/gtm.js?id=GTM-X', 200, { type: 'script' }],
    login, ['GET', `${APP}:443/me`, 200], me]);
  r = await audit(app, ['--har', gtm]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.deepEqual(kinds(r.report), ['session-memory']);
  assert.equal(r.report.runs[0].steps.length, 3);
});


test('most of the recording went elsewhere: inconclusive (exit 2) unless --host names the app', async (t) => {
  const app = makeApp(t, 'audit-kinds', { files: { '.env': 'MODE=stateless\n' } });
  const file = writeHar(app, 'thin.har', 'x', [['GET', `${APP}/`, 200, { type: 'document' }],
    ['GET', 'https://cdn.example/a.js', 200, { type: 'script' }], ['GET', 'https://fonts.example/f.css', 200, { type: 'stylesheet' }],
    ['POST', 'https://analytics.example/collect', 204]]);
  let r = await audit(app, ['--har', file]);
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.equal(r.report.verdict, 'error');
  assert.match(r.stdout, /inconclusive: 3 of the recording's requests were not replayed, more than the 1 replayed to app\.example .*--host HOST/);
  r = await audit(app, ['--har', file, '--host', 'app.example']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(r.report.verdict, 'stateless');
  r = await phoenix(app, ['audit', app.dir, '--har', file, '--host', 'nowhere.example']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /no request to nowhere\.example to replay/);
});

test('a recording the baseline cannot replay is a broken baseline; entries run in the order they started', async (t) => {
  const app = makeApp(t, 'audit-kinds', { files: { '.env': 'MODE=memory-session\n' } });
  // Recorded already logged in: the replay is logged out everywhere.
  const mid = writeHar(app, 'mid.har', `${APP}/`, [me, me, me]);
  let r = await audit(app, ['--har', mid]);
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.equal(r.report.verdict, 'baseline-broken');
  assert.match(r.stdout, /the baseline is broken: .*step 1 \('GET \/me'\) got 401 where the browser got 200/);
  // The login written last (browsers write entries as they finish) but started first.
  const late = writeHar(app, 'late.har', `${APP}/`, [[...me.slice(0, 3), { at: 2 }], [...me.slice(0, 3), { at: 3 }],
    [...login.slice(0, 3), { ...login[3], at: 1 }]]);
  r = await audit(app, ['--har', late]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.deepEqual(kinds(r.report), ['session-memory']);
  assert.deepEqual(r.report.runs[0].steps.map((s) => s.status), [200, 200, 200]);
});

test('bodies and headers verbatim, non-ASCII paths encoded, reports valid UTF-8, odd response text tolerated', async (t) => {
  const app = makeApp(t, 'audit-kinds', { files: { '.env': 'MODE=stateless\n' } });
  const long = `/caf\u00e9/${'\u00e9'.repeat(30)}\u4e2d\u6587?q=\u00fc`;  // "é" cut at byte 80 unless cut right
  const file = writeHar(app, 'text.har', `${APP}/`, [
    ['POST', `${APP}/notes`, 201, { body: ['application/json', '{"text":"Hello {{name}}"}'], headers: [{ name: 'X-Note', value: '{{who}}' }] }],
    ['GET', `${APP}${long}`, 200], ['GET', `${APP}/\u4e2d\u6587`, 200]]);
  let r = await audit(app, ['--har', file]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.deepEqual(r.report.runs[0].steps.map((s) => s.status), [201, 200, 200]);
  assert.match(r.xml, /name="step 2 \(&apos;GET \/caf%C3%A9\//);
  r = await audit(app, ['--har', path.join(FIXTURES, 'bad-text.har')]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
});

test('a recorded multipart upload: its file found on disk (upload-on-disk); one without its bytes is not sent', async (t) => {
  const app = makeApp(t, 'audit-express', { files: { '.env': 'MODE=multer-dest\n' } });
  const boundary = '----WebKitFormBoundaryPhoenix';
  const text = `--${boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\nnotes\r\n` +
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="notes.txt"\r\nContent-Type: text/plain\r\n\r\n` +
    `phoenix audit upload bytes 7f3a\r\n--${boundary}--\r\n`;
  const mime = `multipart/form-data; boundary=${boundary}`;
  const file = writeHar(app, 'upload.har', `${APP}/`, [['GET', `${APP}/`, 200, { type: 'document' }],
    ['POST', `${APP}/files`, 201, { body: [mime, text] }],
    ['POST', `${APP}/files`, 201, { params: [mime, [{ name: 'title', value: 'notes' }, { name: 'file', fileName: 'notes.txt', contentType: 'text/plain' }]] }]]);
  const r = await audit(app, ['--har', file]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.deepEqual(kinds(r.report), ['upload-on-disk'], r.stdout);
  assert.ok(r.report.files.some((f) => f.path.startsWith('uploads/') && /same bytes/.test(f.evidence || '')), JSON.stringify(r.report.files));
  assert.ok(r.report.warnings.some((w) => /multipart upload whose body the recording lacks/.test(w)), r.stdout);
  assert.equal(r.report.runs[0].steps.length, 2);
});
