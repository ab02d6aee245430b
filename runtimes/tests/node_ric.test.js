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

const RIC_DIR = process.env.HEARTH_NODE_RIC_DIR || path.join(__dirname, '..', 'nodejs20.x');

async function runRic(files, handler, events, {closeEach = false, prestart = false} = {}) {
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
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const env = {AWS_LAMBDA_RUNTIME_API: `127.0.0.1:${server.address().port}`, LAMBDA_TASK_ROOT: root,
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
