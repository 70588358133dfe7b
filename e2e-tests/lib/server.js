// The one static file server of the page tests, the npm package's tests and the benchmark runners
// (e2e-tests/lib/chromium.js says why they share this folder): on 127.0.0.1 with a free port. With
// `isolated` it sends the COOP/COEP headers that make the page cross-origin isolated (threads,
// SharedArrayBuffer, fine-grained performance.now()); without, it does not, so the single-thread
// fallback can be checked. `overrides` maps URL paths to bytes served instead of files (broken
// models). Every request is logged in `requests` (paths) and `transfers` ({path, range, status,
// bytes}: body bytes sent). Single HTTP Range requests (`bytes=a-b`, `a-`) are answered with 206
// unless `ranges` is false (a server that ignores Range: 200, whole file). `pace: {bytes, ms}`
// sends bodies in pieces of `bytes` with `ms` between them, as a slow network streams a file.
import { createServer } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.ts': 'text/plain; charset=utf-8',
};

async function send(res, body, pace) {
  if (!pace) return void res.end(body);
  for (let at = 0; at < body.length; at += pace.bytes) {
    res.write(body.subarray(at, at + pace.bytes));
    await new Promise((r) => setTimeout(r, pace.ms));
  }
  res.end();
}

export async function serve(root, { isolated = true, overrides = {}, ranges = true, pace = null } = {}) {
  const requests = [];
  const transfers = [];
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    requests.push(path);
    const headers = { 'Cache-Control': 'no-store' };
    if (isolated) {
      headers['Cross-Origin-Opener-Policy'] = 'same-origin';
      headers['Cross-Origin-Embedder-Policy'] = 'require-corp';
      headers['Cross-Origin-Resource-Policy'] = 'same-origin';
    }
    try {
      let body = overrides[path];
      let type = TYPES[extname(path)] ?? 'application/octet-stream';
      if (body === undefined) {
        let file = normalize(join(root, path));
        if (file !== root && !file.startsWith(root + sep)) throw Object.assign(new Error('outside root'), { status: 403 });
        if ((await stat(file)).isDirectory()) file = join(file, 'index.html');
        body = await readFile(file);
        type = TYPES[extname(file)] ?? type;
      }
      const m = ranges ? /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '') : null;
      if (m) {
        const start = Number(m[1]);
        const end = Math.min(m[2] === '' ? body.length - 1 : Number(m[2]), body.length - 1);
        if (start > end) {
          res.writeHead(416, { ...headers, 'Content-Range': `bytes */${body.length}` });
          transfers.push({ path, range: req.headers.range, status: 416, bytes: 0 });
          res.end();
          return;
        }
        const part = body.subarray(start, end + 1);
        res.writeHead(206, { ...headers, 'Content-Type': type, 'Content-Length': part.length, 'Content-Range': `bytes ${start}-${end}/${body.length}`, 'Accept-Ranges': 'bytes' });
        transfers.push({ path, range: req.headers.range, status: 206, bytes: part.length });
        await send(res, part, pace);
        return;
      }
      res.writeHead(200, { ...headers, 'Content-Type': type, 'Content-Length': body.length });
      transfers.push({ path, range: req.headers.range ?? null, status: 200, bytes: body.length });
      await send(res, body, pace);
    } catch (e) {
      const status = e.status ?? (e.code === 'ENOENT' || e.code === 'ENOTDIR' ? 404 : 500);
      res.writeHead(status, { ...headers, 'Content-Type': 'text/plain' });
      res.end(`${status}\n`);
    }
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  return {
    origin: `http://127.0.0.1:${port}`,
    requests,
    transfers,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}
