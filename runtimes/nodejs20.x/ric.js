// Hearth's runtime interface client for Node.js: the Lambda Runtime API (2018-06-01) loop.
//
// Node core modules only. Behaviour follows AWS Lambda's own Node.js runtime (aws-lambda-nodejs
// RIC): handler strings "dir/file.fn" (nested properties too), CommonJS and ES modules
// (.js/.mjs/.cjs), async, promise and callback handlers (callbackWaitsForEmptyEventLoop), the
// context object, errors posted as {"errorType","errorMessage","trace"} with the error type in
// Lambda-Runtime-Function-Error-Type, Runtime.* init errors on /runtime/init/error, uncaught
// exceptions and unhandled rejections, and console logging as
// "<ISO time>\t<request id>\t<LEVEL>\t<message>".
//
// HTTP to the Runtime API is spoken over one `net` socket, not through the `http` module, whose
// load costs more of a cold start than everything else here (docs/benchmarks.md).
'use strict';

const net = require('net');
const path = require('path');
const fs = require('fs');
const util = require('util');

const API_PREFIX = '/2018-06-01/runtime/';
const ERROR_CT = 'application/vnd.aws.lambda.error+json';

// ------------------------------------------------------------------------------------------
// Errors (names as Lambda's runtime gives them).

class ImportModuleError extends Error {}
class HandlerNotFound extends Error {}
class MalformedHandlerName extends Error {}
class UserCodeSyntaxError extends Error {}
class MalformedStreamingHandler extends Error {}
class UnhandledPromiseRejection extends Error {
  constructor(reason, promise) {
    super(reason);
    this.reason = reason;
    this.promise = promise;
  }
}
for (const e of [ImportModuleError, HandlerNotFound, MalformedHandlerName, UserCodeSyntaxError,
  MalformedStreamingHandler, UnhandledPromiseRejection]) {
  e.prototype.name = `Runtime.${e.name}`;
}

function isError(e) {
  return e !== null && typeof e === 'object' && typeof e.name === 'string' &&
    typeof e.message === 'string';
}

// The body posted to the Runtime API.
function toRapidResponse(error) {
  try {
    if (util.types.isNativeError(error) || isError(error)) {
      return {
        errorType: error.name,
        errorMessage: error.message,
        trace: typeof error.stack === 'string' ? error.stack.split('\n') : [],
      };
    }
    return {errorType: typeof error, errorMessage: String(error), trace: []};
  } catch (_err) {
    return {
      errorType: 'handled',
      errorMessage: 'callback called with Error argument, but there was a problem while ' +
        'retrieving one or more of its message, name, and stack',
    };
  }
}

// How the error is logged: "\t" + {"errorType","errorMessage","stack":[...]}.
function toFormatted(error) {
  const r = toRapidResponse(error);
  return '\t' + JSON.stringify({errorType: r.errorType, errorMessage: r.errorMessage,
    stack: r.trace});
}

// ------------------------------------------------------------------------------------------
// Logging: console.* -> stdout, one line per call, tagged with the request id.

let currentRequestId; // undefined outside an invocation, as in Lambda

function patchConsole() {
  const write = (level) => (...args) => {
    const msg = util.format(...args).replace(/\n/g, '\r');
    process.stdout.write(`${new Date().toISOString()}\t${currentRequestId}\t${level}\t${msg}\n`);
  };
  console.log = write('INFO');
  console.info = write('INFO');
  console.warn = write('WARN');
  console.error = write('ERROR');
  console.debug = write('DEBUG');
  console.trace = write('TRACE');
  console.fatal = write('FATAL');
}

// ------------------------------------------------------------------------------------------
// Runtime API client: one kept-alive connection.

// Parses a complete HTTP/1.1 response at the start of `buf` (`used`: its length in bytes; pipelined
// answers may follow it), or returns {need: N} when it needs N bytes or more.
// `eof`: the connection has ended, so a body without length or chunking ends here.
function parseResponse(buf, eof) {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return {need: buf.length + 1};
  const lines = buf.toString('latin1', 0, end).split('\r\n');
  const status = Number(lines[0].split(' ', 2)[1]);
  const headers = {};
  for (let i = 1; i < lines.length; i++) {
    const c = lines[i].indexOf(':');
    if (c > 0) headers[lines[i].slice(0, c).trim().toLowerCase()] = lines[i].slice(c + 1).trim();
  }
  let at = end + 4;
  let body;
  if ((headers['transfer-encoding'] || '').toLowerCase() === 'chunked') {
    const parts = [];
    for (;;) {
      const eol = buf.indexOf('\r\n', at);
      if (eol < 0) return {need: buf.length + 1};
      const size = parseInt(buf.toString('latin1', at, eol).split(';')[0], 16);
      if (buf.length < eol + 2 + size + 2) return {need: eol + 2 + size + 2};
      if (size === 0) {
        at = eol + 4;
        break;
      }
      parts.push(buf.subarray(eol + 2, eol + 2 + size));
      at = eol + 2 + size + 2;
    }
    body = Buffer.concat(parts);
  } else if (headers['content-length'] !== undefined || status === 204 || status === 304 ||
             status < 200) {
    const len = Number(headers['content-length'] || 0);
    if (buf.length < at + len) return {need: at + len};
    body = buf.subarray(at, at + len);
    at += len;
  } else {
    // Neither a length nor chunks: the body runs to the end of the connection.
    if (!eof) return {need: Infinity};
    body = buf.subarray(at);
    return {status, headers, body, close: true, used: buf.length};
  }
  return {status, headers, body, close: (headers.connection || '').toLowerCase() === 'close',
    used: at};
}

function connectionClosed() {
  const e = new Error('connection closed by the Runtime API');
  e.code = 'ECONNRESET';
  return e;
}

class RuntimeClient {
  constructor(endpoint) {
    endpoint = endpoint.replace(/^http:\/\//, '');
    const i = endpoint.lastIndexOf(':');
    if (i <= 0) throw new Error(`bad AWS_LAMBDA_RUNTIME_API '${endpoint}'`);
    this.host = endpoint.slice(0, i).replace(/^\[|\]$/g, '');
    this.port = Number(endpoint.slice(i + 1));
    this.hostport = endpoint;
    this.sock = null;
    this.waiters = []; // the requests written and not answered yet, in order: {resolve, reject}
    this.tail = Promise.resolve(); // requests go one after the other on the one connection
    // A GET next written behind the last response/error POST (pipelined): the promise of its
    // answer, taken by nextInvocation().
    this.nextPending = null;
    this.nextOutstanding = false; // that GET next is not answered (or failed) yet
    this.nextRequest = Buffer.from(this.head('GET', API_PREFIX + 'invocation/next'), 'latin1');
  }

  // One request at a time, in call order; resolves {status, headers (lower-case), body Buffer}.
  // thenNext: GET next is written with it (HTTP/1.1 pipelining), its answer left in nextPending.
  request(method, urlPath, body, headers, thenNext) {
    const run = () => this.requestWithRetry(method, urlPath, body, headers, thenNext);
    const p = this.tail.then(run, run);
    // The following request waits for this one's answer (and the pipelined next's).
    this.tail = p.then(() => (thenNext ? this.nextPending : undefined), () => undefined)
      .then(() => undefined, () => undefined);
    return p;
  }

  // A lost kept-alive connection is reconnected and the request resent; a refused connection is
  // retried a few times with backoff.
  async requestWithRetry(method, urlPath, body, headers, thenNext) {
    let delay = 10;
    for (let attempt = 0; ; attempt++) {
      const fresh = this.sock === null;
      try {
        return await this.roundtrip(method, urlPath, body, headers, thenNext);
      } catch (e) {
        this.close();
        if (attempt >= 5 || (fresh && (e.code !== 'ECONNREFUSED' || attempt >= 3))) throw e;
        if (fresh) {
          await new Promise((r) => setTimeout(r, delay));
          delay *= 2;
        }
      }
    }
  }

  // Closes the connection; the requests still waiting for an answer fail (ECONNRESET).
  close() {
    const waiters = this.waiters;
    this.waiters = [];
    if (this.sock !== null) this.sock.destroy();
    this.sock = null;
    if (waiters.length) {
      const e = connectionClosed();
      for (const w of waiters) w.reject(e);
    }
  }

  connect() {
    const sock = net.connect({host: this.host, port: this.port});
    sock.setNoDelay(true);
    let chunks = [];
    let have = 0;
    let need = 0; // bytes the response needs at least, once its headers said so
    const onBytes = (eof) => {
      if (this.sock !== sock) return;
      let buf = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, have);
      need = 0;
      // Answers come in request order; pipelined ones may share a read.
      while (buf.length > 0 && this.waiters.length > 0 && this.sock === sock) {
        const res = parseResponse(buf, eof);
        if (res.need !== undefined) {
          need = res.need;
          break;
        }
        buf = buf.subarray(res.used);
        const w = this.waiters.shift();
        if (res.close) this.close(); // what was pipelined behind it fails: asked again
        w.resolve(res);
      }
      if (this.sock !== sock) return;
      chunks = buf.length ? [buf] : [];
      have = buf.length;
      // Idle between requests: the handler's event loop decides when it is empty.
      if (this.waiters.length === 0) sock.unref();
    };
    sock.on('data', (chunk) => {
      chunks.push(chunk);
      have += chunk.length;
      if (have >= need) onBytes(false);
    });
    sock.on('end', () => {
      if (this.waiters.length > 0 && have > 0) onBytes(true);
    });
    const fail = (e) => {
      if (this.sock !== sock) return; // an earlier connection, closed on purpose
      this.sock = null;
      const waiters = this.waiters;
      this.waiters = [];
      for (const w of waiters) w.reject(e);
    };
    sock.on('error', fail);
    sock.on('close', () => fail(connectionClosed()));
    this.sock = sock;
  }

  head(method, urlPath, payload, headers) {
    let head = `${method} ${urlPath} HTTP/1.1\r\nHost: ${this.hostport}\r\n` +
      'User-Agent: hearth-node-ric/1.0\r\n';
    for (const k in headers || {}) head += `${k}: ${headers[k]}\r\n`;
    if (payload) head += `Content-Length: ${payload.length}\r\n`;
    return head + '\r\n';
  }

  roundtrip(method, urlPath, body, headers, thenNext) {
    return new Promise((resolve, reject) => {
      if (this.sock === null) this.connect();
      this.waiters.push({resolve, reject});
      const payload = body === undefined ? null : (Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8'));
      const head = this.head(method, urlPath, payload, headers);
      this.sock.ref();
      if (thenNext) {
        // HTTP/1.1 pipelining: GET next in the same write as the POST; its answer follows the
        // POST's (the Runtime API may hold the POST's answer until the next invocation is ready).
        this.nextOutstanding = true;
        this.nextPending = new Promise((res, rej) => this.waiters.push({
          resolve: (v) => { this.nextOutstanding = false; res(v); },
          reject: (e) => { this.nextOutstanding = false; rej(e); }}));
        this.nextPending.catch(() => {}); // a lost connection: nextInvocation asks again
        this.sock.write(Buffer.concat([Buffer.from(head, 'latin1'), payload || Buffer.alloc(0),
          this.nextRequest]));
      } else {
        this.sock.write(payload === null ? head : Buffer.concat([Buffer.from(head, 'latin1'), payload]));
      }
    });
  }

  async nextInvocation() {
    let r;
    const pending = this.nextPending;
    this.nextPending = null;
    if (pending !== null) {
      // Asked for already, behind the last POST. A connection closed before its answer (the POST
      // refused with Connection: close, a reset) did not give it: ask again on a new one.
      try {
        r = await pending;
      } catch (_e) {
        r = undefined;
      }
    }
    if (r === undefined) r = await this.request('GET', API_PREFIX + 'invocation/next');
    if (r.status !== 200) {
      const e = new Error(`next: HTTP ${r.status}: ${r.body.toString().slice(0, 200)}`);
      e.fatal = true;
      throw e;
    }
    return r;
  }

  // thenNext (the invocation loop): GET next is pipelined behind the POST; nextInvocation() reads it.
  postResponse(id, body, thenNext) {
    return this.request('POST', API_PREFIX + `invocation/${id}/response`, body,
      {'Content-Type': 'application/json'}, thenNext);
  }

  postError(id, error, thenNext) {
    const r = toRapidResponse(error);
    return this.request('POST', API_PREFIX + `invocation/${id}/error`, JSON.stringify(r),
      {'Content-Type': ERROR_CT, 'Lambda-Runtime-Function-Error-Type': String(r.errorType)}, thenNext);
  }

  postInitError(error) {
    const r = toRapidResponse(error);
    return this.request('POST', API_PREFIX + 'init/error', JSON.stringify(r),
      {'Content-Type': ERROR_CT, 'Lambda-Runtime-Function-Error-Type': String(r.errorType)});
  }
}

// ------------------------------------------------------------------------------------------
// Handler loading.

function moduleRootAndHandler(fullHandlerString) {
  const handlerString = path.basename(fullHandlerString);
  const moduleRoot = fullHandlerString.substring(0, fullHandlerString.indexOf(handlerString));
  return [moduleRoot, handlerString];
}

function splitHandlerString(handler) {
  const match = handler.match(/^([^.]*)\.(.*)$/);
  if (!match || match.length !== 3) throw new MalformedHandlerName('Bad handler');
  return [match[1], match[2]];
}

function resolveHandler(object, nestedProperty) {
  return nestedProperty.split('.').reduce((nested, key) => nested && nested[key], object);
}

function isEsmPackage(dir, appRoot) {
  // The nearest package.json decides what a .js file is.
  for (let d = dir; ; d = path.dirname(d)) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(d, 'package.json'), 'utf8'));
      return pkg.type === 'module';
    } catch (e) {
      if (e.code !== 'ENOENT' && e.code !== 'ENOTDIR') return false;
    }
    if (d === path.dirname(d) || d === path.dirname(appRoot)) return false;
  }
}

async function importFile(file) {
  const {pathToFileURL} = require('url');
  return import(pathToFileURL(file).href);
}

async function loadModule(appRoot, moduleRoot, module) {
  const base = path.resolve(appRoot, moduleRoot, module);
  const exists = (f) => { try { return fs.statSync(f).isFile(); } catch { return false; } };
  if (exists(base + '.js')) {
    if (isEsmPackage(path.dirname(base), appRoot)) return importFile(base + '.js');
    try {
      return require(base + '.js');
    } catch (e) {
      if (e && e.code === 'ERR_REQUIRE_ESM') return importFile(base + '.js');
      throw e;
    }
  }
  if (exists(base + '.mjs')) return importFile(base + '.mjs');
  if (exists(base + '.cjs')) return require(base + '.cjs');
  // A module of node_modules (or a directory with an index) named like the handler's module.
  try {
    return require(require.resolve(path.join(moduleRoot, module), {paths: [appRoot]}));
  } catch (e) {
    if (e && e.code === 'MODULE_NOT_FOUND' && String(e.message).includes(`'${path.join(moduleRoot, module)}'`)) {
      throw new ImportModuleError(`Error: Cannot find module '${module}'\nRequire stack:\n- ${__filename}`);
    }
    throw e;
  }
}

async function loadHandler(appRoot, fullHandlerString) {
  if (fullHandlerString.includes('..')) {
    throw new MalformedHandlerName(
      "'../' not allowed in handler name. Relative paths are not supported.");
  }
  const [moduleRoot, moduleAndHandler] = moduleRootAndHandler(fullHandlerString);
  const [module, handlerPath] = splitHandlerString(moduleAndHandler);
  let userApp;
  try {
    userApp = await loadModule(appRoot, moduleRoot, module);
  } catch (e) {
    if (e instanceof SyntaxError) throw new UserCodeSyntaxError(String(e));
    if (e && (e.code === 'MODULE_NOT_FOUND' || e.code === 'ERR_MODULE_NOT_FOUND')) {
      const err = new ImportModuleError(String(e));
      throw err;
    }
    throw e;
  }
  const handlerFunc = resolveHandler(userApp, handlerPath);
  if (handlerFunc === undefined) {
    throw new HandlerNotFound(`${fullHandlerString} is undefined or not exported`);
  }
  if (typeof handlerFunc !== 'function') {
    throw new HandlerNotFound(`${fullHandlerString} is not a function`);
  }
  return handlerFunc;
}

// ------------------------------------------------------------------------------------------
// Invocations.

function parseJsonHeader(v) {
  if (v === undefined || v === '') return undefined;
  try { return JSON.parse(v); } catch { return undefined; }
}

function makeContext(headers, callbackContext) {
  const env = process.env;
  const deadline = Number(headers['lambda-runtime-deadline-ms'] || 0);
  const identity = parseJsonHeader(headers['lambda-runtime-cognito-identity']);
  const clientContext = parseJsonHeader(headers['lambda-runtime-client-context']);
  const context = {
    callbackWaitsForEmptyEventLoop: true,
    functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
    functionName: env.AWS_LAMBDA_FUNCTION_NAME,
    memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
    clientContext,
    identity,
    invokedFunctionArn: headers['lambda-runtime-invoked-function-arn'],
    awsRequestId: headers['lambda-runtime-aws-request-id'],
    tenantId: headers['lambda-runtime-aws-tenant-id'],
    getRemainingTimeInMillis: () => deadline - Date.now(),
    // Legacy completion methods.
    succeed: (result) => callbackContext.callback(null, result),
    fail: (err) => callbackContext.callback(err === undefined || err === null ? 'handled' : err),
    done: (err, result) => callbackContext.callback(err, result),
  };
  return context;
}

// Runs one invocation; resolves with {error} or {result} (not serialized yet).
function runHandler(handler, event, headers) {
  return new Promise((resolve) => {
    let finished = false;
    let pending; // what the callback delivered, posted once the event loop is empty
    const finish = (outcome) => {
      if (finished) return;
      finished = true;
      process.removeListener('beforeExit', onEmpty);
      resolve(outcome);
    };
    const onEmpty = () => finish(pending || {result: null});
    const callbackContext = {
      callback: (err, result) => {
        if (finished || pending) return;
        pending = err !== undefined && err !== null ? {error: err} : {result};
        if (!context.callbackWaitsForEmptyEventLoop) finish(pending);
      },
    };
    const context = makeContext(headers, callbackContext);
    // When the event loop empties (no callback yet: the result is null, as in Lambda).
    process.on('beforeExit', onEmpty);
    let ret;
    try {
      ret = handler(event, context, callbackContext.callback);
    } catch (e) {
      finish({error: e});
      return;
    }
    if (ret && typeof ret.then === 'function') {
      ret.then((v) => finish({result: v}), (e) => finish({error: e === undefined || e === null ? 'handled' : e}));
    }
  });
}

let client;
let inflight; // request id of the invocation in flight

function errorLog(prefix, error) {
  console.error(prefix, toFormatted(error));
}

async function handleInvocation(handler, r) {
  const id = r.headers['lambda-runtime-aws-request-id'];
  currentRequestId = id;
  inflight = id;
  const trace = r.headers['lambda-runtime-trace-id'];
  if (trace) process.env._X_AMZN_TRACE_ID = trace; else delete process.env._X_AMZN_TRACE_ID;
  let event;
  try {
    event = r.body.length ? JSON.parse(r.body.toString('utf8')) : {};
  } catch (e) {
    const err = new Error(`Unexpected input: ${e.message}`);
    err.name = 'Runtime.UnmarshalError';
    errorLog('Invoke Error', err);
    await client.postError(id, err, true);
    inflight = undefined;
    return;
  }
  const outcome = await runHandler(handler, event, r.headers);
  if ('error' in outcome) {
    errorLog('Invoke Error', outcome.error);
    await client.postError(id, outcome.error, true);
  } else {
    let body;
    try {
      body = JSON.stringify(outcome.result === undefined ? null : outcome.result);
    } catch (e) {
      const err = new Error(`Unable to stringify response body: ${e.message}`);
      err.name = 'Runtime.MarshalError';
      errorLog('Invoke Error', err);
      await client.postError(id, err, true);
      inflight = undefined;
      return;
    }
    if (body === undefined) body = 'null';
    const res = await client.postResponse(id, body, true);
    if (res.status === 413) {
      process.stderr.write(`hearth-node-ric: response rejected: ${res.body.toString()}\n`);
    }
  }
  inflight = undefined;
}

// Uncaught exceptions and unhandled rejections fail the invocation in flight (or the init) and
// end the process, as Lambda's runtime does.
let dying = false;
async function fatal(error, prefix, code) {
  if (dying) return;
  dying = true;
  errorLog(prefix, error);
  try {
    // Behind a pipelined GET next (the last answer posted, or being posted), the connection is
    // taken until the next invocation comes: report on another one, and end before it comes.
    const c = client.nextOutstanding ? new RuntimeClient(process.env.AWS_LAMBDA_RUNTIME_API || '') : client;
    if (inflight !== undefined) await c.postError(inflight, error);
    else await c.postInitError(error);
  } catch (_e) {
    // the Runtime API is gone
  }
  process.exit(code);
}

function setupPaths(taskRoot) {
  const wanted = ['/opt/nodejs/node20/node_modules', '/opt/nodejs/node_modules',
    '/var/runtime/node_modules', '/var/runtime', taskRoot];
  const current = (process.env.NODE_PATH || '').split(':').filter((p) => p && !wanted.includes(p));
  process.env.NODE_PATH = wanted.concat(current).join(':');
  require('module')._initPaths();
}

// A pre-started runtime (the daemon's pool, docs/architecture.md): node was started before its
// function was known, with only the variables read at start-up; the function's whole environment
// arrives on the descriptor _HEARTH_PRESTART_FD names (NUL-terminated KEY=VALUE entries, to the end
// of the stream) once the sandbox holds its code, /opt and /tmp. It becomes process.env exactly,
// in that order. False when the sandbox went away before a function came.
function awaitFunction() {
  const fdVar = process.env._HEARTH_PRESTART_FD;
  if (fdVar === undefined) return true;
  const fd = Number(fdVar);
  const chunks = [];
  const buf = Buffer.allocUnsafe(262144);
  for (;;) {
    let n;
    try {
      n = fs.readSync(fd, buf, 0, buf.length, null);
    } catch (e) {
      if (e.code === 'EINTR') continue;
      if (e.code === 'EAGAIN') { // a non-blocking descriptor: wait a little, synchronously
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
        continue;
      }
      throw e;
    }
    if (n === 0) break;
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  fs.closeSync(fd);
  const data = Buffer.concat(chunks);
  if (data.length === 0) return false;
  for (const k of Object.keys(process.env)) delete process.env[k];
  for (const item of data.toString('utf8').split('\0')) {
    if (!item) continue;
    const eq = item.indexOf('=');
    process.env[eq < 0 ? item : item.slice(0, eq)] = eq < 0 ? '' : item.slice(eq + 1);
  }
  return true;
}

async function main() {
  if (!awaitFunction()) process.exit(0);
  const endpoint = process.env.AWS_LAMBDA_RUNTIME_API || '';
  try {
    client = new RuntimeClient(endpoint);
  } catch (e) {
    process.stderr.write(`hearth-node-ric: ${e.message}\n`);
    process.exit(1);
  }
  const taskRoot = process.env.LAMBDA_TASK_ROOT || '/var/task';
  setupPaths(taskRoot);
  patchConsole();
  process.on('uncaughtException', (e) => fatal(e, 'Uncaught Exception', 129));
  process.on('unhandledRejection', (reason, promise) => {
    fatal(new UnhandledPromiseRejection(reason, promise), 'Unhandled Promise Rejection', 128);
  });
  try { process.chdir(taskRoot); } catch (_e) { /* keep the launcher's directory */ }
  let handler;
  try {
    handler = await loadHandler(taskRoot, process.env._HANDLER || '');
  } catch (e) {
    await fatal(e, 'Uncaught Exception', 129);
    return;
  }
  for (;;) {
    let r;
    try {
      r = await client.nextInvocation();
    } catch (e) {
      if (e.fatal) {
        process.stderr.write(`hearth-node-ric: ${e.message}\n`);
        process.exit(1);
      }
      process.exit(0); // the Runtime API is gone: the environment is shutting down
    }
    await handleInvocation(handler, r);
  }
}

module.exports = {main, toRapidResponse, loadHandler, RuntimeClient, makeContext, runHandler};
