// Test harness for the browser end-to-end tests: the real catcher and gateway binaries on ephemeral
// ports with a temporary SQLite database, an agent stream driven from node over HTTP/2, and headless
// Debian Chromium. Nothing here is a stand-in for a part that runs for real. Every edgebackup.v1 call
// needs a credential: node-side clients send the first admin's bearer token, pages sign in through
// the login page (a login link) as that admin unless a test asks otherwise.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { create } from '@bufbuild/protobuf';
import { timestampNow } from '@bufbuild/protobuf/wkt';
import { createClient } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { chromium } from 'playwright-core';
import {
  AgentEventSchema,
  AgentMessageSchema,
  AgentService,
  HelloSchema,
} from '../src/gen/edgebackup/v1/agent_pb.js';
import { AlertService } from '../src/gen/edgebackup/v1/alerts_pb.js';
import { CatalogService } from '../src/gen/edgebackup/v1/catalog_pb.js';
import { Capability } from '../src/gen/edgebackup/v1/common_pb.js';
import { PackageService } from '../src/gen/edgebackup/v1/packages_pb.js';
import { PolicyService } from '../src/gen/edgebackup/v1/policy_pb.js';
import { SourceService } from '../src/gen/edgebackup/v1/sources_pb.js';

const here = dirname(fileURLToPath(import.meta.url));
export const WEB_DIR = resolve(here, '..');
export const BIN_DIR = resolve(WEB_DIR, process.env.EDGE_BIN_DIR ?? '../target/debug');
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const SCREENSHOTS = process.env.EDGE_SCREENSHOTS === '1';
export const SCREENSHOT_DIR = resolve(WEB_DIR, '../docs/screenshots');
/**
 * The page under test is the one the gateway embeds (built by its build.rs). For a quicker loop
 * while changing web/, EDGE_WEB_DIST=dist serves that build with `vite preview` instead, its
 * grpc-web calls proxied to the same real gateway.
 */
export const WEB_DIST = process.env.EDGE_WEB_DIST ? resolve(WEB_DIR, process.env.EDGE_WEB_DIST) : '';

/** Fails loudly (never skips) when a binary the tests need is missing. */
export function requireBinaries(extra = []) {
  const missing = ['edge-stack', 'catcher', 'gateway', ...extra].map((name) => join(BIN_DIR, name)).filter((p) => !existsSync(p));
  if (!existsSync(CHROMIUM)) missing.push(CHROMIUM);
  if (missing.length > 0) {
    throw new Error(
      `e2e needs the real binaries; missing: ${missing.join(', ')}. Build them with \`cargo build\` ` +
        `(or point EDGE_BIN_DIR at them) and install Debian's chromium.`,
    );
  }
}

/** Spawns `cmd` and resolves once stdout matches `ready` (its first group is returned as `addr`). */
function spawnReady(name, cmd, args, ready, { env = {}, stdin = 'ignore', timeoutMs = 20000 } = {}) {
  return new Promise((resolveReady, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: [stdin, 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let settled = false;
    const fail = (why) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${name} ${why}\n--- stdout:\n${out}\n--- stderr (tail):\n${err.slice(-4000)}`));
    };
    const timer = setTimeout(() => fail(`did not print its ready line within ${timeoutMs} ms`), timeoutMs);
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d) => {
      if (settled) return;
      out += d;
      const m = ready.exec(out);
      if (m) {
        settled = true;
        clearTimeout(timer);
        resolveReady({ child, addr: m[1], out, logs: () => ({ out, err }) });
      }
    });
    child.stderr.on('data', (d) => {
      err += d;
      if (err.length > 200000) err = err.slice(-100000);
    });
    child.on('error', (e) => fail(`could not start: ${e.message}`));
    child.on('exit', (code, sig) => fail(`exited early (code ${code}, signal ${sig})`));
  });
}

/** Waits for `child` to exit after `signal` (none: it was asked some other way), SIGKILL after `graceMs`. */
function stopChild(child, signal = 'SIGTERM', graceMs = 5000) {
  return new Promise((res) => {
    if (child.exitCode !== null || child.signalCode !== null) return res();
    const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(t);
      res();
    });
    if (signal) child.kill(signal);
  });
}

/** `NAME ADDR LOGFILE` as edge-stack prints it. */
function processLine(name, text) {
  const m = new RegExp(`^(?:ok )?${name} (\\S+) (\\S+)$`, 'm').exec(text);
  if (!m) throw new Error(`edge-stack did not report the ${name}: ${text}`);
  return { addr: m[1], url: `http://${m[1]}`, log: m[2], logs: () => readFileSync(m[2], 'utf8') };
}

/**
 * The catcher (SQLite in `dir`) and the gateway, run by the Rust testkit's process harness
 * (`edge-stack`), which this controls over stdin: kill or restart the catcher, stop everything.
 */
export async function startProcesses(dir, { env = {}, config = '' } = {}) {
  const args = ['--dir', dir];
  if (config) {
    const file = join(dir, 'catcher.toml');
    writeFileSync(file, config);
    args.push('--catcher-config', file);
  }
  for (const [k, v] of Object.entries(env)) args.push('--catcher-env', `${k}=${v}`);
  const { child, out } = await spawnReady('edge-stack', join(BIN_DIR, 'edge-stack'), args, /^ready$/m, {
    stdin: 'pipe',
    timeoutMs: 60000,
  });
  const waiting = [];
  createInterface({ input: child.stdout }).on('line', (line) => waiting.shift()?.(line));
  const ask = (command) =>
    new Promise((res, rej) => {
      waiting.push((line) => (line.startsWith('ok') ? res(line) : rej(new Error(`edge-stack ${command}: ${line}`))));
      child.stdin.write(`${command}\n`);
    });
  const admin = /^admin (\S+)\s*$/m.exec(out)?.[1];
  if (!admin) throw new Error(`edge-stack printed no "admin TOKEN" line before ready:\n${out}`);
  const procs = {
    catcher: { ...processLine('catcher', out), kill: () => ask('kill catcher') },
    gateway: processLine('gateway', out),
    /** The first admin's token (the catcher's data/admin.token). */
    adminToken: admin,
    /** Creates a person's token with `role` (viewer, operator or admin); returns the token. */
    person: async (name, role) => {
      const line = await ask(`person ${name} ${role}`);
      const token = /^ok person (\S+)$/.exec(line.trim())?.[1];
      if (!token) throw new Error(`edge-stack did not make a token for ${name}: ${line}`);
      return token;
    },
    /** Revokes the token named `name`: its calls and open streams end within seconds. */
    revokePerson: async (name) => {
      await ask(`revoke-person ${name}`);
    },
    /** Restarts the catcher on the same address and database. */
    restartCatcher: async () => {
      procs.catcher = { ...processLine('catcher', await ask('restart catcher')), kill: () => ask('kill catcher') };
      return procs.catcher;
    },
    /**
     * Starts a real agent (`agent --config CONFIG run`) under edge-stack, which stops it with the
     * rest; the config must name this catcher (see agentConfig). Returns its log file.
     */
    startAgent: async (config) => {
      // Enrolls it on its first start: a one-time token from `catcher enroll`, the catcher's
      // https URL and CA fingerprint, written into its config.
      const text = readFileSync(config, 'utf8');
      const source = /^source_id = "([^"]+)"/m.exec(text)?.[1];
      if (!source) throw new Error(`${config} names no source_id`);
      const mover = /^mover = true/m.test(text) ? ' mover' : '';
      const [, , token, fingerprint, url] = (await ask(`token ${source}${mover}`)).trim().split(' ');
      const enrolled = text.replace(/^catcher_url = .*$/m, `catcher_url = ${JSON.stringify(url)}\ntoken = ${JSON.stringify(token)}\ncatcher_ca_fingerprint = ${JSON.stringify(fingerprint)}`);
      writeFileSync(config, enrolled);
      const line = await ask(`start agent ${config}`);
      const m = /^ok agent (\S+)$/.exec(line.trim());
      if (!m) throw new Error(`edge-stack did not report the agent: ${line}`);
      return { log: m[1], logs: () => (existsSync(m[1]) ? readFileSync(m[1], 'utf8') : '') };
    },
    /** A credential for `sourceId` made as an agent makes it: { ca, cert, key } (PEM). */
    enroll: async (sourceId) => {
      const line = await ask(`enroll ${sourceId}`);
      const dir = /^ok enrolled (\S+)$/.exec(line.trim())?.[1];
      if (!dir) throw new Error(`edge-stack did not enroll ${sourceId}: ${line}`);
      const read = (name) => readFileSync(join(dir, name), 'utf8');
      return { ca: read('ca.crt'), cert: read('agent.crt'), key: read('agent.key') };
    },
    /** Asks edge-stack to stop everything like an operator would (SIGTERM each) and to exit. */
    stop: () => {
      const exited = stopChild(child, null, 30000);
      child.stdin.end('stop\n');
      return exited;
    },
  };
  return procs;
}

/** A connect interceptor sending `authorization: Bearer <token>` on every call. */
export function bearer(token) {
  return (next) => (req) => {
    req.header.set('authorization', `Bearer ${token}`);
    return next(req);
  };
}

/** The login link of the page at `pageUrl` for `token`, going on to `next` (a path) when given. */
export function loginLink(pageUrl, token, next = '') {
  const url = new URL('login', pageUrl);
  if (next) url.searchParams.set('next', next);
  return `${url.href}#token=${token}`;
}

/**
 * Signs `page` in with `token` through a login link: the session cookie then holds for its whole
 * browser context. Resolves on the dashboard; throws the login page's error when refused.
 */
export async function signIn(page, pageUrl, token) {
  await page.goto(loginLink(pageUrl, token));
  const outcome = page.locator('[data-testid="session-user"], [data-testid="login-error"]');
  await outcome.first().waitFor({ timeout: 20000 });
  const refused = page.getByTestId('login-error');
  if ((await refused.count()) > 0) throw new Error(`sign-in refused: ${await refused.innerText()}`);
}

function freePort() {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => res(port));
    });
  });
}

/** `vite preview` of WEB_DIST on a free port, proxying grpc-web to `gatewayUrl`. */
export async function startPreview(gatewayUrl) {
  if (!existsSync(join(WEB_DIST, 'index.html'))) throw new Error(`EDGE_WEB_DIST=${WEB_DIST} holds no build; run npm run build first`);
  const port = await freePort();
  const { child, logs } = await spawnReady(
    'vite preview',
    join(WEB_DIR, 'node_modules/.bin/vite'),
    ['preview', '--outDir', WEB_DIST, '--host', '127.0.0.1', '--port', String(port), '--strictPort'],
    /(Local)/,
    { env: { GATEWAY_URL: gatewayUrl, NO_COLOR: '1' } },
  );
  return { url: `http://127.0.0.1:${port}`, logs, child, stop: () => stopChild(child) };
}

/** Two stations, so placements have somewhere to be. */
export const STATIONS_TOML = `
[[stations]]
id = "hot-nas"
tier = "hot"
kind = "local"
uri = "/srv/backup/hot"

[[stations]]
id = "warm-s3"
tier = "warm"
kind = "s3"
uri = "s3://edge-warm/packages"
`;

/**
 * A catcher config (with STATIONS_TOML) that makes alerts happen within seconds: alerts evaluated
 * every second, an agent silent after `silentSecs`, per-source RPOs in seconds, and notification
 * `channels` ({ name, kind, url }: webhook or slack).
 */
export function quickAlertsConfig({ silentSecs = 2, rpoBySource = {}, channels = [] } = {}) {
  const q = (v) => JSON.stringify(String(v));
  const channelTables = channels.map((c) => `\n[[channels]]\nname = ${q(c.name)}\nkind = ${q(c.kind ?? 'webhook')}\nurl = ${q(c.url)}\n`).join('');
  const rpo = Object.entries(rpoBySource).map(([source, secs]) => `${q(source)} = ${secs}`);
  return `alert_interval_secs = 1
alert_agent_silent_secs = ${silentSecs}
${STATIONS_TOML}${channelTables}${rpo.length > 0 ? `\n[rpo_by_source]\n${rpo.join('\n')}\n` : ''}`;
}

/** A time-ordered UUIDv7, as agents mint package ids. */
export function uuidv7(ms = Date.now()) {
  const b = randomBytes(16);
  b.writeUIntBE(ms, 0, 6);
  b[6] = (b[6] & 0x0f) | 0x70;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export const sha256Hex = (data) => createHash('sha256').update(data).digest('hex');

/** An async queue usable as the request side of a bidi stream. */
class Outbox {
  #items = [];
  #wake = undefined;
  #closed = false;
  push(v) {
    this.#items.push(v);
    this.#wake?.();
  }
  close() {
    this.#closed = true;
    this.#wake?.();
  }
  async *[Symbol.asyncIterator]() {
    for (;;) {
      while (this.#items.length > 0) yield this.#items.shift();
      if (this.#closed) return;
      await new Promise((r) => (this.#wake = r));
      this.#wake = undefined;
    }
  }
}

/**
 * One agent session over AgentService/Connect, straight to the catcher's gRPC port (HTTP/2): the
 * bidi stream cannot go through grpc-web. Sends Hello, then sequenced events; records every frame.
 */
export class Agent {
  constructor(catcherUrl, sourceId, { hostname = `${sourceId}.local`, version = 'e2e-agent 0.0.1', label = '', tls } = {}) {
    // An agent's stream needs its credential: TLS to the catcher, verified by its CA.
    const baseUrl = tls ? catcherUrl.replace(/^http:/, 'https:') : catcherUrl;
    this.transport = createGrpcTransport({ baseUrl, nodeOptions: tls ? { ca: tls.ca, cert: tls.cert, key: tls.key } : {} });
    this.client = createClient(AgentService, this.transport);
    this.sourceId = sourceId;
    this.hello = { sourceId, agentVersion: version, hostname, os: 'linux', label, capabilities: [Capability.BACKUP] };
    this.frames = [];
    this.appliedSeq = 0n;
    this.seq = 0n;
    this.#abort = new AbortController();
  }
  #abort;
  #outbox = new Outbox();
  #waiters = [];
  #done;

  /** Opens the stream and resolves with the Welcome. */
  async open() {
    this.#outbox.push(create(AgentMessageSchema, { body: { case: 'hello', value: create(HelloSchema, this.hello) } }));
    const responses = this.client.connect(this.#outbox, { signal: this.#abort.signal });
    this.#done = (async () => {
      try {
        for await (const m of responses) {
          this.frames.push(m);
          if (m.body.case === 'ack') this.appliedSeq = m.body.value.appliedSeq;
          this.#notify();
        }
      } catch (e) {
        this.error = e;
        this.#notify();
      }
      this.ended = true;
      this.#notify();
    })();
    const welcome = await this.waitFor((m) => m.body.case === 'welcome', 'Welcome');
    this.seq = welcome.body.value.lastAppliedSeq;
    return welcome.body.value;
  }

  #notify() {
    for (const w of [...this.#waiters]) w();
  }

  /** Resolves with the first frame (past or future) that matches. */
  waitFor(pred, what, timeoutMs = 10000) {
    return new Promise((res, rej) => {
      const check = () => {
        const hit = this.frames.find(pred);
        if (hit) return finish(() => res(hit));
        if (this.ended || this.error) return finish(() => rej(new Error(`agent stream ended before ${what}: ${this.error?.message ?? 'closed'}`)));
      };
      const timer = setTimeout(() => finish(() => rej(new Error(`no ${what} within ${timeoutMs} ms; frames: ${this.frames.map((f) => f.body.case).join(',')}`))), timeoutMs);
      const finish = (fn) => {
        clearTimeout(timer);
        this.#waiters = this.#waiters.filter((w) => w !== check);
        fn();
      };
      this.#waiters.push(check);
      check();
    });
  }

  /** Sends one sequenced event; `kind` is e.g. { case: 'ingest', value: {...} }. Returns its seq. */
  send(kind) {
    this.seq += 1n;
    const event = create(AgentEventSchema, { seq: this.seq, at: timestampNow(), kind });
    this.#outbox.push(create(AgentMessageSchema, { body: { case: 'event', value: event } }));
    return this.seq;
  }

  /** Sends and waits for the cumulative Ack covering it; throws if the catcher rejected it. */
  async apply(kind) {
    const seq = this.send(kind);
    await this.waitFor((m) => m.body.case === 'ack' && m.body.value.appliedSeq >= seq, `Ack(${seq})`);
    const rejected = this.frames.find((m) => m.body.case === 'eventRejected' && m.body.value.seq === seq);
    if (rejected) throw new Error(`event ${seq} rejected: ${rejected.body.value.code} ${rejected.body.value.message}`);
    return seq;
  }

  ingest(p) {
    return this.apply({ case: 'ingest', value: p });
  }
  progress(packageId, progressPercent, bytesDone, attempt = 0) {
    return this.apply({ case: 'progress', value: { packageId, progressPercent, bytesDone: BigInt(bytesDone), attempt } });
  }
  complete(packageId, sha256, sizeBytes, placements = []) {
    return this.apply({ case: 'complete', value: { packageId, sha256, sizeBytes: BigInt(sizeBytes), placements } });
  }
  /** Sends many events, at most `window` unacknowledged at a time; resolves when all are acked. */
  async sendMany(kinds, window = 1000) {
    let last = this.seq;
    for (let i = 0; i < kinds.length; i++) {
      if (i > 0 && i % window === 0) {
        const upTo = last;
        await this.waitFor((m) => m.body.case === 'ack' && m.body.value.appliedSeq >= upTo, `Ack(${upTo})`, 60_000);
      }
      last = this.send(kinds[i]);
    }
    await this.waitFor((m) => m.body.case === 'ack' && m.body.value.appliedSeq >= last, `Ack(${last})`, 60_000);
    const rejected = this.frames.filter((m) => m.body.case === 'eventRejected');
    if (rejected.length > 0) throw new Error(`${rejected.length} events rejected, first: ${rejected[0].body.value.message}`);
  }

  safetyAlert(reason) {
    return this.apply({ case: 'safetyAlert', value: { reason } });
  }

  async close() {
    this.#outbox.close();
    this.#abort.abort();
    await this.#done?.catch(() => {});
  }
}

export async function launchBrowser() {
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
}

/**
 * The catcher environment every test starts with unless it passes its own value: no protection
 * delay, so the rule edits and restores the tests make apply at once instead of being held as
 * pending changes for a day.
 */
export const DEFAULT_CATCHER_ENV = { CATCHER_PROTECTION_DELAY_SECS: '0' };

/**
 * Everything one test needs: temp dir, catcher, gateway, browser page (signed in as the first admin
 * unless `signedIn: false`). `catcherEnv` is added to DEFAULT_CATCHER_ENV (its values win). Torn
 * down after the test.
 */
export async function startStack(
  t,
  { viewport = { width: 1280, height: 720 }, catcherEnv = {}, catcherConfig = STATIONS_TOML, signedIn = true } = {},
) {
  requireBinaries();
  const dir = mkdtempSync(join(tmpdir(), 'edge-e2e-'));
  const stack = { dir, agents: [] };
  const cleanups = [];
  t.after(async () => {
    for (const fn of cleanups.reverse()) await fn().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });
  const procs = await startProcesses(dir, { env: { ...DEFAULT_CATCHER_ENV, ...catcherEnv }, config: catcherConfig });
  cleanups.push(() => procs.stop());
  stack.catcher = procs.catcher;
  stack.gateway = procs.gateway;
  stack.pageUrl = stack.gateway.url + '/';
  if (WEB_DIST) {
    const preview = await startPreview(stack.gateway.url);
    cleanups.push(() => preview.stop());
    stack.pageUrl = preview.url + '/';
  }
  stack.adminToken = procs.adminToken;
  // straight to the catcher, as the first admin
  const transport = createGrpcTransport({ baseUrl: stack.catcher.url, interceptors: [bearer(stack.adminToken)] });
  stack.api = {
    policy: createClient(PolicyService, transport),
    packages: createClient(PackageService, transport),
    sources: createClient(SourceService, transport),
    catalog: createClient(CatalogService, transport),
    alerts: createClient(AlertService, transport),
  };
  /** Starts a real agent process with `config` (a file path); see agentConfig. */
  stack.startAgent = (config) => procs.startAgent(config);
  stack.browser = await launchBrowser();
  cleanups.push(() => stack.browser.close());
  stack.context = await stack.browser.newContext({ viewport });
  stack.page = await stack.context.newPage();
  stack.consoleErrors = [];
  stack.page.on('console', (m) => {
    if (m.type() === 'error') stack.consoleErrors.push(m.text());
  });
  stack.page.on('pageerror', (e) => stack.consoleErrors.push(String(e)));
  /** A token for a new person with `role` (viewer, operator or admin). */
  stack.person = (name, role) => procs.person(name, role);
  /** Revokes the person's token; their open streams end within seconds. */
  stack.revokePerson = (name) => procs.revokePerson(name);
  /** Signs `page` (its whole context) in with `token` through a login link. */
  stack.signIn = (page = stack.page, token = stack.adminToken) => signIn(page, stack.pageUrl, token);
  if (signedIn) {
    await stack.signIn();
    // back to a blank page, as before sign-in existed: no dashboard watches while a test sets up
    await stack.page.goto('about:blank');
  }
  // one credential per source: an agent that reconnects (a second stack.agent for its source,
  // after closing the first) speaks with the credential it was enrolled with
  const credentials = new Map();
  stack.agent = async (sourceId, opts) => {
    let tls = credentials.get(sourceId);
    if (!tls) {
      tls = await procs.enroll(sourceId);
      credentials.set(sourceId, tls);
    }
    const a = new Agent(stack.catcher.url, sourceId, { ...opts, tls });
    cleanups.push(() => a.close());
    await a.open();
    return a;
  };
  /** Restarts the catcher on the same address and database. */
  stack.restartCatcher = async () => {
    stack.catcher = await procs.restartCatcher();
    return stack.catcher;
  };
  return stack;
}

/**
 * Writes the TOML config of a real agent into `file`: one watched folder, one local station,
 * quick passes, no panic brake, and `restoreRoots` it may restore into.
 */
export function agentConfig(file, { sourceId, catcherUrl, stateDir, folder, station, restoreRoots = [], packageType = 'user_data' }) {
  const q = (v) => JSON.stringify(String(v));
  writeFileSync(
    file,
    `source_id = ${q(sourceId)}
catcher_url = ${q(catcherUrl)}
state_dir = ${q(stateDir)}
max_backoff_secs = 1
log_level = "info,agent=debug"
restore_roots = [${restoreRoots.map(q).join(', ')}]

[safety]
enabled = false

[schedule]
interval_secs = 2
debounce_ms = 300

[[folders]]
path = ${q(folder)}
package_type = ${q(packageType)}

[[stations]]
id = "hot"
kind = "local"
uri = ${q(station)}
`,
  );
  return file;
}

/** Writes a screenshot into docs/screenshots when EDGE_SCREENSHOTS=1. */
export async function screenshot(page, name, opts = {}) {
  if (!SCREENSHOTS) return;
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOT_DIR, name), ...opts });
}

/** Polls `fn` until it returns a truthy value (node side), for catcher-side conditions. */
export async function eventually(fn, what, timeoutMs = 10000) {
  const until = Date.now() + timeoutMs;
  let last;
  while (Date.now() < until) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
}

/** Waits until the attribute `attr` of the first element matching `locator` satisfies `pred`. */
export async function attrEventually(locator, attr, pred, what, timeoutMs = 15_000) {
  return eventually(
    async () => {
      if ((await locator.count()) === 0) return false;
      const v = await locator.first().getAttribute(attr, { timeout: 1000 });
      return pred(v) ? v ?? true : false;
    },
    what,
    timeoutMs,
  );
}

/** Waits until the text of the first element matching `locator` satisfies `pred`; returns the text. */
export async function textEventually(locator, pred, what, timeoutMs = 15_000) {
  return eventually(
    async () => {
      if ((await locator.count()) === 0) return false;
      const v = await locator.first().innerText({ timeout: 1000 });
      return pred(v) ? v : false;
    },
    what,
    timeoutMs,
  );
}

/** Opens the dashboard (at `hash`, when given) on the stack's page and waits for the live stream. */
export async function openDashboard(stack, hash = '') {
  await stack.page.goto(stack.pageUrl + hash);
  await attrEventually(stack.page.getByTestId('connection-indicator'), 'data-state', (s) => s === 'connected', 'the live stream');
}
