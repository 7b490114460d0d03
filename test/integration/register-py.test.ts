// Seed 001's register.py flow (python3 + requests, lower-case JSON keys, HTTP check every 5s)
// against a real agent and a real /hostname backend, including an agent that comes up 2 s after
// the script started (the script's retry loop must then succeed).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { http, startTestAgent, waitFor } from '../helpers/agent.js';
import type { TestAgent } from '../helpers/agent.js';
import { freePort } from '../helpers/process.js';

/** .ci/run points SY_PYTHON at Debian's interpreter when the python3 on PATH lacks requests. */
const PYTHON = process.env.SY_PYTHON ?? 'python3';
const SCRIPT = fileURLToPath(new URL('../fixtures/register.py', import.meta.url));

function skipReason(): string | false {
  const probe = spawnSync(PYTHON, ['-c', 'import requests'], { encoding: 'utf8' });

  if (probe.status === 0) return false;
  // In CI the flow must run: a missing python3/requests there is a failure, not a skip.
  if (process.env.CI === 'true') return false;
  return `python3 with requests is not available (${(probe.error?.message ?? probe.stderr).trim() || `exit ${probe.status}`})`;
}

interface ScriptResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs register.py; `progress` sees its stdout so far as it grows. */
function runScript(env: Record<string, string>, timeoutMs = 40_000, progress?: (stdout: string) => void): Promise<ScriptResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, ['-u', SCRIPT], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      progress?.(stdout);
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`register.py did not finish within ${timeoutMs} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The Flask app of the seed: GET /hostname → {"hostname": …}. */
class HostnameApp {
  readonly server: Server;
  port = 0;
  hostnameHits = 0;

  constructor() {
    this.server = createServer((req, res) => {
      if (req.method === 'GET' && req.url === '/hostname') {
        this.hostnameHits += 1;
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ hostname: hostname() }));
        return;
      }
      res.writeHead(404).end();
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  close(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}

interface AgentService {
  ID: string;
  Service: string;
  Tags: string[];
  Port: number;
  Address: string;
}

interface AgentCheck {
  CheckID: string;
  Name: string;
  Status: string;
  Output: string;
  ServiceID: string;
  ServiceName: string;
  Type?: string;
  Interval?: string;
}

/** The assertions shared by both variants, once the script reported success. */
async function assertRegisteredAndPassing(base: string, app: HostnameApp): Promise<void> {
  const services = (await http(base, 'GET', '/v1/agent/services')).json as Record<string, AgentService>;
  const api = services.api;
  assert.ok(api, `service "api" in /v1/agent/services: ${JSON.stringify(services)}`);
  assert.equal(api.ID, 'api', 'ID defaults to the name');
  assert.equal(api.Service, 'api');
  assert.deepEqual(api.Tags, ['flask']);
  assert.equal(api.Port, app.port);
  assert.equal(api.Address, '');

  const checks = (await http(base, 'GET', '/v1/agent/checks')).json as Record<string, AgentCheck>;
  const check = checks['service:api'];
  assert.ok(check, `check "service:api" in /v1/agent/checks: ${JSON.stringify(checks)}`);
  assert.equal(check.Name, "Service 'api' check");
  assert.equal(check.ServiceID, 'api');
  assert.equal(check.ServiceName, 'api');
  if (check.Interval !== undefined) assert.equal(check.Interval, '5s');

  // Interval 5s: the first run comes within 5 s of registration; allow 12 s.
  const passing = await waitFor(async () => {
    const c = ((await http(base, 'GET', '/v1/agent/checks')).json as Record<string, AgentCheck>)['service:api'];
    return c?.Status === 'passing' ? c : undefined;
  }, 'check service:api to become passing', 12_000, 100);
  assert.ok(passing);
  assert.match(passing.Output, /200 OK/);
  assert.ok(app.hostnameHits >= 1, 'the agent called GET /hostname on the backend');

  const health = await http(base, 'GET', '/v1/health/service/api?passing');
  assert.equal(health.status, 200);
  const entries = health.json as { Service: { ID: string; Service: string; Tags: string[]; Port: number }; Checks: { CheckID: string; Status: string }[] }[];
  assert.equal(entries.length, 1, JSON.stringify(entries));
  const entry = entries[0];
  assert.ok(entry);
  assert.equal(entry.Service.ID, 'api');
  assert.deepEqual(entry.Service.Tags, ['flask']);
  assert.equal(entry.Service.Port, app.port);
  assert.ok(entry.Checks.some((c) => c.CheckID === 'service:api' && c.Status === 'passing'));
}

const skip = skipReason();

describe("seed 001's register.py against the agent", { skip }, () => {
  let app: HostnameApp;
  const agents: TestAgent[] = [];

  before(async () => {
    app = await new HostnameApp().start();
  });

  after(async () => {
    for (const a of agents) await a.stop();
    await app?.close();
  });

  it('registers "api" (lower-case keys), and its HTTP check on /hostname becomes passing', async () => {
    const agent = await startTestAgent();
    agents.push(agent);
    const base = agent.url;

    const res = await runScript({
      REGISTER_AGENT_URL: `http://127.0.0.1:${agent.address.port}`,
      FLASK_RUN_PORT: String(app.port),
      REGISTER_CHECK_URL: `http://127.0.0.1:${app.port}/hostname`,
    });
    assert.equal(res.code, 0, `exit code\nstdout:\n${res.stdout}\nstderr:\n${res.stderr}`);
    assert.match(res.stdout, /^Attempt num: 0 Response Status: 200$/m);
    assert.match(res.stdout, /^Registering successful!$/m);
    assert.doesNotMatch(res.stdout, /Run out of retires/);

    await assertRegisteredAndPassing(base, app);
  });

  it("retries until an agent that starts after its first attempt failed is up, then registers", async () => {
    const port = await freePort();
    let stdout = '';
    const scriptDone = runScript({
      REGISTER_AGENT_URL: `http://127.0.0.1:${port}`,
      FLASK_RUN_PORT: String(app.port),
      REGISTER_CHECK_URL: `http://127.0.0.1:${app.port}/hostname`,
    }, undefined, (s) => (stdout = s));
    // Awaited below; until then a spawn failure must not surface as an unhandled rejection.
    scriptDone.catch(() => undefined);
    await waitFor(() => /^Attempt num: 0 Connection error: ConnectionError$/m.test(stdout), () => `register.py's first attempt to find no agent (stdout: ${JSON.stringify(stdout)})`, 20_000);
    const agent = await startTestAgent({ 'http-addr': `127.0.0.1:${port}` });
    agents.push(agent);
    assert.equal(agent.address.port, port);

    const res = await scriptDone;
    assert.equal(res.code, 0, `exit code\nstdout:\n${res.stdout}\nstderr:\n${res.stderr}`);
    assert.match(res.stdout, /^Attempt num: 0 Connection error: ConnectionError$/m, 'the first attempt found no agent');
    const success = /^Attempt num: (\d+) Response Status: 200$/m.exec(res.stdout);
    assert.ok(success, `a successful attempt in:\n${res.stdout}`);
    assert.ok(Number(success[1]) >= 1 && Number(success[1]) <= 9, `succeeded on attempt ${success[1]}`);
    assert.match(res.stdout, /^Registering successful!$/m);

    await assertRegisteredAndPassing(agent.url, app);
  });

  it('the seed-exact loop (REGISTER_STRICT=1) crashes on a refused connection instead of retrying', async () => {
    const port = await freePort();
    const res = await runScript({
      REGISTER_AGENT_URL: `http://127.0.0.1:${port}`,
      FLASK_RUN_PORT: String(app.port),
      REGISTER_CHECK_URL: `http://127.0.0.1:${app.port}/hostname`,
      REGISTER_STRICT: '1',
    }, 20_000);
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, /ConnectionError/);
    assert.doesNotMatch(res.stdout, /Registering successful!/);
  });
});
