#!/usr/bin/env node
// Runs after `npm install`/`npm ci` (package.json "postinstall").
//
// postgres.js 3.4.x crashes the whole process when a database connection closes while a small
// write is still scheduled: nextWrite() runs from setImmediate and calls socket.write() on a
// socket that is already null (upstream issues #1066, #1154, #1208; fixes proposed in #1168,
// #1176, #1209, not released). For a mail relay that must answer 451 and keep running while the
// database is away, that is not acceptable, so we apply the proposed fix here: the write is
// dropped and the waiting query is settled with CONNECTION_CLOSED, and a closed connection
// forgets its pending write. Idempotent; fails loudly if the code it patches has changed.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MARK = '/* mailhold: guarded nextWrite */';
const files = ['src', 'cjs/src', 'cf/src'].map((d) => path.join(root, 'node_modules', 'postgres', d, 'connection.js'));

const NEXT_WRITE = `  function nextWrite(fn) {
    const x = socket.write(chunk, fn)`;
const GUARDED = `  function nextWrite(fn) {
    ${MARK}
    if (socket === null) {
      nextWriteTimer !== null && clearImmediate(nextWriteTimer)
      chunk = nextWriteTimer = null
      error(Errors.connection('CONNECTION_CLOSED', options, socket))
      return false
    }
    const x = socket.write(chunk, fn)`;
const CLOSED = `    clearImmediate(nextWriteTimer)
    socket.removeListener('data', data)`;
const CLOSED_FIXED = `    clearImmediate(nextWriteTimer)
    chunk = nextWriteTimer = null
    socket.removeListener('data', data)`;

let patched = 0;
for (const file of files) {
  if (!existsSync(file)) continue;
  let text = readFileSync(file, 'utf8');
  if (text.includes(MARK)) {
    patched++;
    continue;
  }
  if (!text.includes(NEXT_WRITE) || !text.includes(CLOSED)) {
    console.error(`patch-postgres: ${file} is not the postgres.js this patch was written for; check the upstream fix and update scripts/patch-postgres.js`);
    process.exit(1);
  }
  text = text.replace(NEXT_WRITE, GUARDED).replace(CLOSED, CLOSED_FIXED);
  writeFileSync(file, text);
  patched++;
}
if (patched === 0) {
  console.error('patch-postgres: node_modules/postgres not found');
  process.exit(1);
}
