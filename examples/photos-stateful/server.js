'use strict';
// photos-stateful: a tiny photo-sharing app that keeps its state on the server it runs on.
//
// It makes, on purpose, the three classic mistakes that break "kill your servers every day":
//   1. uploads saved to the local disk        (multer({ dest: 'uploads/' }))
//   2. sessions saved to local files          (session-file-store, path 'sessions/')
//   3. data cached in the process             (global.photoCache, a Map)
// See README.md. ../photos-stateless/ is the same HTTP API done right.

const fs = require('fs');
const path = require('path');
const express = require('express');
const multer = require('multer');
const session = require('express-session');
const FileStore = require('session-file-store')(session);

const PORT = process.env.PORT;
if (!PORT || !/^\d+$/.test(PORT) || Number(PORT) < 1 || Number(PORT) > 65535) {
  console.error(`photos-stateful: PORT must be set to a TCP port number (got ${PORT === undefined ? 'nothing' : JSON.stringify(PORT)})`);
  process.exit(2);
}
const INSTANCE = process.env.PHOENIX_INSTANCE || process.env.DYNO || '-';
const ROOT = __dirname;

// Mistake 1: uploaded files go to the disk of this server. Relative to the app root,
// which is also the process's cwd under a Procfile.
const UPLOAD_DIR = 'uploads/';
const upload = multer({
  dest: UPLOAD_DIR,
  limits: { fileSize: 5 * 1024 * 1024, files: 1 },
});

// Mistake 3: the photo list lives in this process only. Another instance has its own
// (empty) copy; a restart forgets it.
global.photoCache = global.photoCache || new Map(); // id -> { id, user, name, type, size, uploadedAt }
const photoCache = global.photoCache;

const app = express();
app.disable('x-powered-by');
app.set('trust proxy', true);

// Mistake 2: sessions are files on this server's disk.
app.use(session({
  store: new FileStore({ path: 'sessions/', retries: 0, logFn() {} }),
  secret: process.env.SESSION_SECRET || 'phoenix-demo-secret',
  resave: false,
  saveUninitialized: false,
  cookie: { httpOnly: true, sameSite: 'lax' },
}));
app.use(express.urlencoded({ extended: false, limit: '16kb' }));
app.use(express.json({ limit: '16kb' }));

const ID_RE = /^[0-9a-f]{32}$/; // multer's generated file names
const wantsHtml = (req) => req.accepts(['json', 'html']) === 'html';

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}

function listPhotos() {
  return [...photoCache.values()].sort((a, b) => b.uploadedAt.localeCompare(a.uploadedAt));
}

app.get('/healthz', (req, res) => {
  res.type('text/plain').send('ok');
});

app.get('/', (req, res) => {
  const user = req.session.user;
  const items = listPhotos().map((p) =>
    `<li><a href="/photos/${p.id}"><img src="/photos/${p.id}" alt="" height="48"> ${escapeHtml(p.name)}</a> by ${escapeHtml(p.user)}</li>`).join('\n');
  res.type('html').send(`<!doctype html>
<html><head><meta charset="utf-8"><title>photos-stateful</title></head>
<body>
<h1>photos-stateful</h1>
<p>Served by instance <code>${escapeHtml(INSTANCE)}</code> (pid ${process.pid}).</p>
${user
    ? `<p>Logged in as <b>${escapeHtml(user)}</b>.</p>
<form method="post" action="/photos" enctype="multipart/form-data">
  <input type="file" name="photo" accept="image/*" required> <button>Upload</button>
</form>`
    : `<form method="post" action="/login">
  <input name="user" placeholder="your name" required maxlength="64"> <button>Log in</button>
</form>`}
<h2>Photos</h2>
<ul>
${items || '<li>none yet</li>'}
</ul>
</body></html>
`);
});

app.post('/login', (req, res, next) => {
  const user = req.body && typeof req.body.user === 'string' ? req.body.user.trim() : '';
  if (!user || user.length > 64) {
    return res.status(400).json({ error: 'field "user" is required (1 to 64 characters)' });
  }
  req.session.regenerate((err) => {
    if (err) return next(err);
    req.session.user = user;
    req.session.save((err2) => {
      if (err2) return next(err2);
      if (wantsHtml(req)) return res.redirect(303, '/');
      res.json({ user, instance: INSTANCE });
    });
  });
});

app.get('/me', (req, res) => {
  if (!req.session.user) return res.status(401).json({ error: 'not logged in' });
  res.json({ user: req.session.user, instance: INSTANCE });
});

function requireLogin(req, res, next) {
  if (!req.session.user) return res.status(401).json({ error: 'not logged in' });
  next();
}

app.post('/photos', requireLogin, upload.single('photo'), (req, res) => {
  const f = req.file;
  if (!f) return res.status(400).json({ error: 'multipart field "photo" is required' });
  if (!/^image\//.test(f.mimetype)) {
    fs.unlink(f.path, () => {});
    return res.status(415).json({ error: `not an image: ${f.mimetype}` });
  }
  const photo = {
    id: f.filename,
    user: req.session.user,
    name: f.originalname,
    type: f.mimetype,
    size: f.size,
    uploadedAt: new Date().toISOString(),
  };
  photoCache.set(photo.id, photo);
  if (wantsHtml(req)) return res.redirect(303, '/');
  res.status(201).location(`/photos/${photo.id}`).json(photo);
});

app.get('/photos', (req, res) => {
  res.json(listPhotos());
});

app.get('/photos/:id', (req, res, next) => {
  const id = req.params.id;
  if (!ID_RE.test(id)) return res.status(404).json({ error: 'no such photo' });
  const meta = photoCache.get(id);
  // The file is read from this server's disk; if another instance took the upload, it is not here.
  res.sendFile(path.join(ROOT, UPLOAD_DIR, id), {
    headers: { 'Content-Type': meta ? meta.type : 'application/octet-stream' },
  }, (err) => {
    if (!err) return;
    if (err.code === 'ENOENT' || err.status === 404) {
      if (!res.headersSent) res.status(404).json({ error: 'no such photo' });
      return;
    }
    next(err);
  });
});

app.use((err, req, res, next) => {
  if (err instanceof multer.MulterError) {
    return res.status(err.code === 'LIMIT_FILE_SIZE' ? 413 : 400).json({ error: err.message });
  }
  console.error(err);
  if (res.headersSent) return next(err);
  res.status(500).json({ error: 'internal error' });
});

const server = app.listen(Number(PORT), () => {
  console.log(`photos-stateful listening on ${PORT} (instance ${INSTANCE})`);
});
server.on('error', (err) => {
  console.error(`photos-stateful: cannot listen on ${PORT}: ${err.message}`);
  process.exit(1);
});

let stopping = false;
function shutdown(signal) {
  if (stopping) return;
  stopping = true;
  console.log(`photos-stateful: ${signal}, closing`);
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  // Requests still running after 10 s are cut off; phoenix's own stop_timeout is the hard bound.
  setTimeout(() => server.closeAllConnections(), 10000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
