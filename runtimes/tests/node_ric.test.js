// Unit tests of the Node.js runtime interface client (node:test) against a fake Runtime API in
// this process; the runtime runs as a child process (its own bootstrap).
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const http = require('node:http');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const {spawn} = require('node:child_process');
const net = require('node:net');

const RIC_DIR = process.env.HEARTH_NODE_RIC_DIR || path.join(__dirname, '..', 'nodejs20.x');

async function runRic(files, handler, events, {closeEach = false, prestart = false, api} = {}) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ric-'));
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, name)), {recursive: true});
    fs.writeFileSync(path.join(root, name), text);
  }
  const posts = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      // Node's server hands on requests pipelined behind an answer that closes the connection;
      // a Runtime API reads no further (the answer to such a request would never be sent).
      if (req.socket.closing) return;
      if (closeEach) req.socket.closing = true;
      if (req.method === 'GET') {
        const ev = events.shift();
        if (!ev) { res.writeHead(500); res.end('{}'); return; }
        if (closeEach) res.setHeader('Connection', 'close');
        res.writeHead(200, {'Lambda-Runtime-Aws-Request-Id': ev.id,
          'Lambda-Runtime-Deadline-Ms': String(Date.now() + 5000),
          'Lambda-Runtime-Invoked-Function-Arn': 'arn:aws:lambda:us-east-1:000000000000:function:f'});
        res.end(ev.payload);
      } else {
        posts.push({path: req.url, type: req.headers['lambda-runtime-function-error-type'],
          body: JSON.parse(Buffer.concat(chunks).toString())});
        if (closeEach) res.setHeader('Connection', 'close');
        res.writeHead(202); res.end('{}');
      }
    });
  });
  if (api === undefined) await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const endpoint = api !== undefined ? api.endpoint : `127.0.0.1:${server.address().port}`;
  const env = {AWS_LAMBDA_RUNTIME_API: endpoint, LAMBDA_TASK_ROOT: root,
    _HANDLER: handler, AWS_LAMBDA_FUNCTION_NAME: 'f', AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '128'};
  // prestart: started with only _HEARTH_PRESTART_FD; the environment arrives on fd 3 (as from
  // the sandbox's init: NUL-terminated KEY=VALUE entries, then end of stream).
  const child = spawn(process.execPath, [path.join(RIC_DIR, 'bootstrap')], {
    env: prestart ? {_HEARTH_PRESTART_FD: '3'} : env, cwd: prestart ? '/' : undefined,
    stdio: ['ignore', 'pipe', 'pipe'].concat(prestart ? ['pipe'] : [])});
  if (prestart) {
    setTimeout(() => {
      child.stdio[3].end(Object.entries(env).map(([k, v]) => `${k}=${v}\0`).join(''));
    }, 200);
  }
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  const code = await new Promise((r) => child.on('exit', r));
  server.close();
  if (api !== undefined) api.close();
  return {code, posts, out};
}

test('async handler, context and console format', async () => {
  const r = await runRic({'index.mjs': `export const handler = async (e, c) => {
    console.log('hi', 1); return {e, id: c.awsRequestId, fn: c.functionName,
    rem: c.getRemainingTimeInMillis() > 0, w: c.callbackWaitsForEmptyEventLoop}; };`},
  'index.handler', [{id: 'r1', payload: '{"a":1}'}]);
  assert.deepStrictEqual(r.posts, [{path: '/2018-06-01/runtime/invocation/r1/response',
    type: undefined, body: {e: {a: 1}, id: 'r1', fn: 'f', rem: true, w: true}}]);
  assert.match(r.out, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\tr1\tINFO\thi 1\n/m);
});

test('callback handler waits for the empty event loop; nested path', async () => {
  const r = await runRic({'a/b/m.js': `exports.h = (e, c, cb) => { cb(null, 'early');
    setTimeout(() => { globalThis.late = 1; }, 20); };`}, 'a/b/m.h', [{id: 'r2', payload: '{}'}]);
  assert.strictEqual(r.posts[0].body, 'early');
});

test('thrown error shape', async () => {
  const r = await runRic({'index.js': `exports.handler = async () => { throw new RangeError('no'); };`},
    'index.handler', [{id: 'r3', payload: '{}'}]);
  assert.strictEqual(r.posts[0].path, '/2018-06-01/runtime/invocation/r3/error');
  assert.strictEqual(r.posts[0].type, 'RangeError');
  assert.strictEqual(r.posts[0].body.errorMessage, 'no');
  assert.strictEqual(r.posts[0].body.trace[0], 'RangeError: no');
});

test('init errors go to init/error', async () => {
  for (const [files, handler, type] of [
    [{'index.js': 'exports.x = 1;'}, 'index.handler', 'Runtime.HandlerNotFound'],
    [{}, 'nope.handler', 'Runtime.ImportModuleError'],
    [{'index.js': 'exports.handler = ('}, 'index.handler', 'Runtime.UserCodeSyntaxError'],
    [{'index.js': ''}, 'index', 'Runtime.MalformedHandlerName']]) {
    const r = await runRic(files, handler, []);
    assert.strictEqual(r.posts[0].path, '/2018-06-01/runtime/init/error', r.out);
    assert.strictEqual(r.posts[0].type, type);
    assert.notStrictEqual(r.code, 0);
  }
});

test('unhandled rejection fails the invocation and exits', async () => {
  const r = await runRic({'index.js': `exports.handler = async () => { Promise.reject(new Error('x'));
    await new Promise((res) => setTimeout(res, 100)); };`}, 'index.handler', [{id: 'r4', payload: '{}'}]);
  assert.strictEqual(r.posts[0].type, 'Runtime.UnhandledPromiseRejection');
  assert.strictEqual(r.posts[0].body.errorMessage, 'Error: x');
  assert.strictEqual(r.code, 128);
});

test('large events, connections closed by the Runtime API after every answer', async () => {
  const big = JSON.stringify({data: 'x'.repeat(3 * 1024 * 1024)});
  const r = await runRic({'index.js': `exports.handler = async (e) => ({n: e.data.length, k: e.k});`},
    'index.handler', [{id: 'r5', payload: big}, {id: 'r6', payload: '{"k":2,"data":""}'}],
    {closeEach: true});
  assert.deepStrictEqual(r.posts.map((p) => [p.path, p.body]), [
    ['/2018-06-01/runtime/invocation/r5/response', {n: 3 * 1024 * 1024}],
    ['/2018-06-01/runtime/invocation/r6/response', {n: 0, k: 2}]]);
});

test('pre-started: the environment arrives on fd 3 and becomes process.env, cwd the task root', async () => {
  const r = await runRic({'index.js': `exports.handler = async () => ({
    keys: Object.keys(process.env).filter((k) => k !== '_X_AMZN_TRACE_ID'), cwd: process.cwd(),
    fn: process.env.AWS_LAMBDA_FUNCTION_NAME});`}, 'index.handler', [{id: 'r1', payload: '{}'}],
  {prestart: true});
  assert.strictEqual(r.posts.length, 1, r.out);
  const body = r.posts[0].body;
  assert.deepStrictEqual(body.keys, ['AWS_LAMBDA_RUNTIME_API', 'LAMBDA_TASK_ROOT', '_HANDLER',
    'AWS_LAMBDA_FUNCTION_NAME', 'AWS_LAMBDA_FUNCTION_MEMORY_SIZE', 'NODE_PATH']);  // NODE_PATH: the RIC's
  assert.strictEqual(body.fn, 'f');
  assert.ok(body.cwd.includes('ric-'), body.cwd);
});

// ------------------------------------------------------------------------------------------
// HTTP/1.1 pipelining: the answer's POST and the following GET next go out in one write.

// A Runtime API over a plain `net` server, for what `http` hides: the bytes each read brought, the
// answers that went out in one write, answers held or refused as a test asks.
// events: [{id, payload}], served in order to GET next (then 500).
// refuse: {id: how that invocation's POST is answered instead of 202}: '413close' (413 with
//   Connection: close, then a lingering close, as the daemon does), '400' (kept alive), '202reset'
//   (202, then the connection is reset without answering what was pipelined behind it).
// hold: like the daemon, the answer to a POST with GET next already read behind it is held and sent
//   in the same write as the next invocation, which is ready `hold` ms after that POST.
const NEXT = 'GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\n';

function parseRequest(buf) {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const lines = buf.toString('latin1', 0, end).split('\r\n');
  const [method, url] = lines[0].split(' ');
  const headers = {};
  for (const l of lines.slice(1)) {
    const c = l.indexOf(':');
    headers[l.slice(0, c).trim().toLowerCase()] = l.slice(c + 1).trim();
  }
  const n = Number(headers['content-length'] || 0);
  if (buf.length < end + 4 + n) return null;
  return {method, url, headers, body: buf.subarray(end + 4, end + 4 + n), rest: buf.subarray(end + 4 + n)};
}

function answer(status, body, headers = {}) {
  let head = `HTTP/1.1 ${status} X\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`;
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
  return Buffer.concat([Buffer.from(head + '\r\n'), Buffer.from(body)]);
}

async function rawApi(events, {refuse = {}, hold} = {}) {
  const api = {posts: [], writes: [], connections: 0};
  const timers = new Set();
  const sockets = new Set();
  const server = net.createServer((sock) => {
    api.connections++;
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    let buf = Buffer.alloc(0);
    let held = null;
    let busy = false; // an answer is being prepared (held until the next invocation is ready)
    let done = false;
    const send = (statuses, data) => { api.writes.push(statuses); sock.write(data); };
    const serve = () => {
      while (!busy && !done) {
        const req = parseRequest(buf);
        if (req === null) return;
        buf = req.rest;
        if (req.method === 'POST') {
          const id = req.url.split('/')[4];
          const pipelined = buf.subarray(0, NEXT.length).toString('latin1') === NEXT &&
            parseRequest(buf) !== null;
          api.posts.push({path: req.url, type: req.headers['lambda-runtime-function-error-type'],
            body: JSON.parse(req.body.toString()), pipelined});
          const how = refuse[id];
          delete refuse[id];
          if (how === '413close') {
            send([413], answer(413, '{"errorType":"RequestEntityTooLarge"}', {Connection: 'close'}));
            sock.end(); // lingering: what else arrives is read and dropped
            done = true;
            return;
          }
          if (how === '400') {
            send([400], answer(400, '{"errorType":"InvalidRequestID"}'));
            continue;
          }
          const ok = answer(202, '{"status":"OK"}');
          if (how === '202reset') {
            send([202], ok);
            done = true;
            sock.end(() => sock.resetAndDestroy());
            return;
          }
          if (hold !== undefined && pipelined) {
            held = ok;
            continue;
          }
          send([202], ok);
        } else if (req.method === 'GET' && req.url.endsWith('/invocation/next')) {
          const reply = () => {
            const ev = events.shift();
            const res = ev ? answer(200, ev.payload, {'Lambda-Runtime-Aws-Request-Id': ev.id,
              'Lambda-Runtime-Deadline-Ms': String(Date.now() + 60000),
              'Lambda-Runtime-Trace-Id': `Root=1-${ev.id}`})
              : answer(500, '{"errorType":"Runtime.Shutdown"}');
            const status = ev ? 200 : 500;
            if (held !== null) {
              send([202, status], Buffer.concat([held, res]));
              held = null;
            } else {
              send([status], res);
            }
          };
          if (held === null) {
            reply();
          } else {
            busy = true;
            const t = setTimeout(() => { timers.delete(t); busy = false; reply(); serve(); }, hold);
            timers.add(t);
          }
        } else {
          send([404], answer(404, '{}'));
        }
      }
    };
    sock.on('data', (d) => { if (!done) { buf = Buffer.concat([buf, d]); serve(); } });
    sock.on('error', () => {});
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  api.endpoint = `127.0.0.1:${server.address().port}`;
  api.close = () => {
    for (const t of timers) clearTimeout(t);
    for (const sock of sockets) sock.destroy();
    server.close();
  };
  return api;
}

const ECHO = {'index.js': `exports.handler = async (e, c) => {
  if (e.fail) throw new TypeError('bad ' + c.awsRequestId);
  return {id: c.awsRequestId, e, trace: process.env._X_AMZN_TRACE_ID}; };`};
const evs = (...ids) => ids.map((id) => ({id, payload: JSON.stringify({n: id})}));
const ok = (id) => ({path: `/2018-06-01/runtime/invocation/${id}/response`, type: undefined,
  body: {id, e: {n: id}, trace: `Root=1-${id}`}, pipelined: true});

test('pipelining: the POST and GET next arrive in one read, before any answer', async () => {
  const api = await rawApi(evs('r1', 'r2', 'r3'));
  const r = await runRic(ECHO, 'index.handler', [], {api});
  assert.deepStrictEqual(api.posts, [ok('r1'), ok('r2'), ok('r3')], r.out);
  assert.strictEqual(api.connections, 1);
  assert.strictEqual(r.code, 1); // 500 once the events are served
});

test('pipelining: errors too', async () => {
  const api = await rawApi([{id: 'e1', payload: '{"fail":true}'}, ...evs('e2')]);
  const r = await runRic(ECHO, 'index.handler', [], {api});
  assert.strictEqual(api.posts.length, 2, r.out);
  const [p] = api.posts;
  assert.deepStrictEqual([p.path, p.type, p.body.errorMessage, p.pipelined],
    ['/2018-06-01/runtime/invocation/e1/error', 'TypeError', 'bad e1', true]);
  assert.deepStrictEqual(api.posts[1], {...ok('e2')});
});

test('pipelining: a server holding the 202 until the next invocation is ready', async () => {
  const api = await rawApi(evs('r1', 'r2', 'r3'), {hold: 50});
  const r = await runRic(ECHO, 'index.handler', [], {api});
  assert.deepStrictEqual(api.posts, [ok('r1'), ok('r2'), ok('r3')], r.out);
  assert.deepStrictEqual(api.writes, [[200], [202, 200], [202, 200], [202, 500]]);
  assert.strictEqual(r.code, 1);
});

test('pipelining: refused posts (413 + close, 400, reset) still get each next invocation once', async () => {
  const api = await rawApi(evs('r1', 'r2', 'r3', 'r4'),
    {refuse: {r1: '413close', r2: '400', r3: '202reset'}});
  const r = await runRic(ECHO, 'index.handler', [], {api});
  assert.deepStrictEqual(api.posts, [ok('r1'), ok('r2'), ok('r3'), ok('r4')], r.out);
  assert.strictEqual(api.connections, 3);
  assert.match(r.out, /hearth-node-ric: response rejected: \{"errorType":"RequestEntityTooLarge"\}/);
  assert.strictEqual(r.code, 1);
});

test('pipelining: a refused post with a holding server', async () => {
  const api = await rawApi(evs('r1', 'r2', 'r3'), {refuse: {r2: '413close'}, hold: 20});
  const r = await runRic(ECHO, 'index.handler', [], {api});
  assert.deepStrictEqual(api.posts, [ok('r1'), ok('r2'), ok('r3')], r.out);
  assert.deepStrictEqual(api.writes, [[200], [202, 200], [413], [200], [202, 500]]);
});

test('pipelining: an exception after the answer, while the next is awaited, ends the runtime at once', async () => {
  // The 202 is held until a next invocation that never comes: the runtime reports on another
  // connection and exits instead of taking (and losing) an invocation it cannot run.
  const api = await rawApi(evs('r1', 'r2'), {hold: 10000});
  const r = await runRic({'index.js': `exports.handler = async () => {
    setTimeout(() => { throw new Error('late'); }, 50); return 'done'; };`}, 'index.handler', [], {api});
  assert.strictEqual(r.code, 129, r.out);
  assert.deepStrictEqual(api.posts.map((p) => [p.path, p.type]), [
    ['/2018-06-01/runtime/invocation/r1/response', undefined],
    ['/2018-06-01/runtime/invocation/r1/error', 'Error']]);
  assert.strictEqual(api.connections, 2);
  assert.deepStrictEqual(api.writes, [[200], [202]]); // r2 never taken
});
