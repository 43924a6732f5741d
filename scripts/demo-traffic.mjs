// A little traffic for `make demo`: on each instance, log in and upload a photo, so that the
// instance writes sessions/... and uploads/... files that die with it.
// Usage: node demo-traffic.mjs PORT [PORT...]
const png = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==',
  'base64');
for (const port of process.argv.slice(2)) {
  const base = `http://127.0.0.1:${port}`;
  const login = await fetch(`${base}/login`, {
    method: 'POST',
    headers: {'content-type': 'application/json'},
    body: JSON.stringify({user: 'ada'}),
  });
  const cookie = (login.headers.get('set-cookie') || '').split(';')[0];
  const form = new FormData();
  form.append('photo', new Blob([png], {type: 'image/png'}), 'cat.png');
  const up = await fetch(`${base}/photos`, {method: 'POST', headers: {cookie}, body: form});
  const body = await up.json();
  console.log(`demo traffic: port ${port}: login ${login.status}, upload ${up.status} (${body.id ?? body.error})`);
}
