#!/usr/bin/env node
// Smoke test for the photos apps (photos-stateless and photos-stateful share one HTTP API).
//
//   BASE_URLS=http://127.0.0.1:5001,http://127.0.0.1:5002 node smoke.mjs
//   BASE_URL=http://127.0.0.1:5000 node smoke.mjs          # one URL, e.g. phoenix's router
//
// It logs in on the first URL, uploads a small random PNG on the next one (rotating through the
// list), then, on EVERY URL, reads GET /me, GET /photos and GET /photos/:id and checks that the
// session and the photo are visible there, byte for byte. With two instances of a stateless app
// it passes; with two instances of photos-stateful it fails, and says which state went missing.
// (If the upload is refused with 401 because the session is unknown on that URL, that is a
// failure; the photo is then uploaded on the login URL so that the photo checks still run.)
//
// Exit status: 0 all checks passed, 1 a check failed, 2 usage error.
// Plain Node >= 20, no dependencies (global fetch, FormData, Blob).

import { randomBytes } from 'node:crypto';
import { deflateSync } from 'node:zlib';

const TIMEOUT_MS = Number(process.env.SMOKE_TIMEOUT_MS || 10000);

function usage(msg) {
  console.error(`smoke: ${msg}`);
  console.error('usage: BASE_URLS=http://127.0.0.1:5001,http://127.0.0.1:5002 node smoke.mjs   (or BASE_URL=...)');
  process.exit(2);
}

const raw = process.env.BASE_URLS || process.env.BASE_URL || '';
const urls = raw.split(',').map((s) => s.trim()).filter(Boolean).map((s) => s.replace(/\/+$/, ''));
if (urls.length === 0) usage('BASE_URLS (comma-separated) or BASE_URL must name at least one base URL');
for (const u of urls) {
  let parsed;
  try { parsed = new URL(u); } catch { usage(`not a URL: ${JSON.stringify(u)}`); }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') usage(`not an http(s) URL: ${u}`);
}
const label = (i) => (urls.length > 1 ? `#${i + 1} ${urls[i]}` : urls[i]);

// ---- a small PNG with random pixels, so that every run uploads different bytes ----
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}
function makePng(w, h) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type: RGB
  const rows = [];
  for (let y = 0; y < h; y++) rows.push(Buffer.from([0]), randomBytes(w * 3)); // filter 0 + pixels
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.concat(rows))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

// ---- HTTP with one shared cookie jar, as a browser talking to a load balancer ----
const jar = new Map();
function cookieHeader() {
  return [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
}
async function http(base, method, path, { json, form } = {}) {
  const headers = { accept: 'application/json' };
  if (jar.size) headers.cookie = cookieHeader();
  let body;
  if (json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(json);
  } else if (form) {
    body = form; // fetch sets the multipart content-type with its boundary
  }
  let res;
  try {
    res = await fetch(base + path, { method, headers, body, redirect: 'manual', signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch (err) {
    const why = err.name === 'TimeoutError' ? `no answer within ${TIMEOUT_MS} ms` : (err.cause && err.cause.message) || err.message;
    return { status: 0, error: `${method} ${path}: cannot reach ${base}: ${why}` };
  }
  for (const sc of res.headers.getSetCookie()) {
    const pair = sc.split(';', 1)[0];
    const eq = pair.indexOf('=');
    if (eq > 0) jar.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
  }
  const buf = Buffer.from(await res.arrayBuffer());
  let data;
  try { data = JSON.parse(buf.toString('utf8')); } catch { data = undefined; }
  return { status: res.status, type: res.headers.get('content-type') || '', buf, data };
}
const brief = (r) => (r.error ? r.error : `HTTP ${r.status} ${r.buf.toString('utf8').slice(0, 200).replace(/\s+/g, ' ')}`);

// ---- the test ----
const failures = [];
let checks = 0;
function ok(msg) { checks++; console.log(`ok    ${msg}`); }
function fail(msg, hint) {
  checks++;
  failures.push(msg);
  console.log(`FAIL  ${msg}`);
  if (hint) console.log(`      -> ${hint}`);
}
function finish() {
  if (failures.length === 0) {
    console.log(`smoke: PASS, ${checks} checks on ${urls.length} URL(s)`);
    process.exit(0);
  }
  console.log(`smoke: FAIL, ${failures.length} of ${checks} checks failed on ${urls.length} URL(s)`);
  process.exit(1);
}

const user = `smoke-${randomBytes(4).toString('hex')}`;
const png = makePng(8, 8);
const loginAt = 0;
const uploadAt = 1 % urls.length;

// 0. every URL answers
for (let i = 0; i < urls.length; i++) {
  const r = await http(urls[i], 'GET', '/healthz');
  if (r.status === 200) ok(`GET /healthz on ${label(i)}`);
  else fail(`GET /healthz on ${label(i)}: ${brief(r)}`);
}
if (failures.length) finish();

// 1. log in on the first URL
{
  const r = await http(urls[loginAt], 'POST', '/login', { json: { user } });
  if (r.status !== 200 || !r.data || r.data.user !== user) {
    fail(`POST /login {user:"${user}"} on ${label(loginAt)}: ${brief(r)}`);
    finish();
  }
  if (jar.size === 0) {
    fail(`POST /login on ${label(loginAt)} set no cookie`);
    finish();
  }
  ok(`POST /login as ${user} on ${label(loginAt)}${r.data.instance ? ` (instance ${r.data.instance})` : ''}`);
}

// 2. upload on the next URL
let photoId;
let uploadedAt = uploadAt;
async function uploadOn(i) {
  const form = new FormData();
  form.append('photo', new Blob([png], { type: 'image/png' }), 'smoke.png');
  return http(urls[i], 'POST', '/photos', { form });
}
{
  const r = await uploadOn(uploadAt);
  if (r.status === 201 && r.data && typeof r.data.id === 'string') {
    photoId = r.data.id;
    ok(`POST /photos (${png.length} bytes) on ${label(uploadAt)}: id ${photoId}`);
  } else if (r.status === 401 && uploadAt !== loginAt) {
    fail(`POST /photos on ${label(uploadAt)}: ${brief(r)}`,
      `the session made by POST /login on ${label(loginAt)} is unknown here: sessions are kept on the instance (memory or local files)`);
    // Already failed; upload where the session is known, so that the photo checks still run
    // and show whether uploads and the photo list are shared too.
    const r2 = await uploadOn(loginAt);
    if (r2.status === 201 && r2.data && typeof r2.data.id === 'string') {
      photoId = r2.data.id;
      uploadedAt = loginAt;
      console.log(`      (uploaded on ${label(loginAt)} instead, id ${photoId}, to go on checking the photo)`);
    }
  } else {
    fail(`POST /photos on ${label(uploadAt)}: ${brief(r)}`);
  }
}

// 3. everything is visible everywhere
for (let i = 0; i < urls.length; i++) {
  const me = await http(urls[i], 'GET', '/me');
  if (me.status === 200 && me.data && me.data.user === user) {
    ok(`GET /me on ${label(i)}: ${user}`);
  } else {
    fail(`GET /me on ${label(i)}: expected user ${user}, got ${brief(me)}`,
      i !== loginAt && me.status === 401
        ? `logged in on ${label(loginAt)}, unknown here: sessions are kept on the instance (memory or local files)`
        : undefined);
  }

  if (!photoId) continue;

  const list = await http(urls[i], 'GET', '/photos');
  if (list.status === 200 && Array.isArray(list.data) && list.data.some((p) => p && p.id === photoId)) {
    ok(`GET /photos on ${label(i)}: lists ${photoId}`);
  } else {
    fail(`GET /photos on ${label(i)}: ${photoId} not listed (${list.status === 200 && Array.isArray(list.data) ? `${list.data.length} photo(s) listed` : brief(list)})`,
      i !== uploadedAt ? `uploaded on ${label(uploadedAt)}, not listed here: the list is cached in the instance (global or module variable)` : undefined);
  }

  const img = await http(urls[i], 'GET', `/photos/${photoId}`);
  if (img.status !== 200) {
    fail(`GET /photos/${photoId} on ${label(i)}: ${brief(img)}`,
      i !== uploadedAt && img.status === 404 ? `uploaded on ${label(uploadedAt)}, missing here: the file was saved to that instance's local disk` : undefined);
  } else if (!img.buf.equals(png)) {
    fail(`GET /photos/${photoId} on ${label(i)}: ${img.buf.length} bytes differ from the ${png.length} uploaded`);
  } else if (!img.type.startsWith('image/png')) {
    fail(`GET /photos/${photoId} on ${label(i)}: bytes match but Content-Type is ${JSON.stringify(img.type)}, not image/png`);
  } else {
    ok(`GET /photos/${photoId} on ${label(i)}: ${png.length} bytes, byte-exact, image/png`);
  }
}

finish();
