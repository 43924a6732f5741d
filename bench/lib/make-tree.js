'use strict';
// Fills DIR with FILES files of BYTES bytes each, in nested folders (a/b/file), like an app
// root with node_modules. usage: node make-tree.js DIR FILES BYTES
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const [dir, filesArg, bytesArg] = process.argv.slice(2);
const files = Number(filesArg), bytes = Number(bytesArg);
const data = crypto.randomBytes(bytes);
for (let i = 0; i < files; i++) {
  const sub = path.join(dir, 'node_modules', `pkg${String(i % 50).padStart(2, '0')}`,
                        `lib${String(Math.floor(i / 50) % 10)}`);
  if (i < 500) fs.mkdirSync(sub, { recursive: true });
  fs.writeFileSync(path.join(sub, `f${i}.js`), data);
}
