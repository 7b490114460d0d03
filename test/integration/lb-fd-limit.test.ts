// A balancer out of file descriptors (a client opened more connections than its limit allows): the
// instances did nothing wrong, so none is ejected; requests it cannot forward get a 503 saying why, the
// operator gets one warning, and service comes back as soon as connections close. Both data planes.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { startTestAgent } from '../helpers/agent.js';
import type { TestAgent } from '../helpers/agent.js';
import { registerBackend, startBackend } from '../helpers/lb.js';
import type { Backend } from '../helpers/lb.js';
import { freePort, stop, switchyard, waitHttpOk } from '../helpers/process.js';

/** One request on an open connection: its status and body ('' and 0 when nothing came back in time). */
function ask(s: Socket): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    let got = '';
    const timer = setTimeout(() => done(), 5000);
    const done = (): void => {
      clearTimeout(timer);
      s.off('data', onData);
      const [head = '', body = ''] = got.split('\r\n\r\n');
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0), body });
    };
    const onData = (d: Buffer): void => {
      got += d.toString('latin1');
      const len = /content-length: (\d+)/i.exec(got)?.[1];
      const end = got.indexOf('\r\n\r\n');
      if (end >= 0 && len !== undefined && got.length >= end + 4 + Number(len)) done();
    };
    s.on('data', onData);
    s.write('GET / HTTP/1.1\r\nHost: fd\r\n\r\n');
  });
}

describe('balancer at its open-file limit', () => {
  let agent: TestAgent;
  const backends: Backend[] = [];
  before(async () => {
    agent = await startTestAgent();
    for (const name of ['f1', 'f2', 'f3']) {
      const b = await startBackend(name);
      backends.push(b);
      await registerBackend(agent.url, 'fd', b);
    }
  });
  after(async () => {
    for (const b of backends) await b.close();
    await agent.stop();
  });

  for (const plane of ['fast', 'node'] as const) {
    it(`${plane} plane: 503 with the reason, no instance ejected, one warning, and service once connections close`, { timeout: 90_000 }, async () => {
      const [port, admin] = [await freePort(), await freePort()];
      const lb = switchyard(['lb', '--listen', `127.0.0.1:${port}`, '--admin-addr', `127.0.0.1:${admin}`, '--registry', agent.url, '--service', 'fd',
        '--data-plane', plane, '--log-level', 'warn'], {}, { nofile: 256 });
      const socks: Socket[] = [];
      try {
        await waitHttpOk(`http://127.0.0.1:${port}/`, lb, 30_000);
        // More connections than the limit: the balancer holds what it can accept, and every upstream connect fails with EMFILE.
        for (let i = 0; i < 400; i++) {
          const s = connect(port, '127.0.0.1');
          s.on('error', () => undefined);
          socks.push(s);
        }
        await Promise.all(socks.map((s) => new Promise<void>((r) => (s.readyState === 'open' ? r() : s.once('connect', () => r()).once('error', () => r())))));
        await new Promise((r) => setTimeout(r, 500));
        const answers = await Promise.all(socks.filter((s) => !s.destroyed).slice(0, 300).map(ask));
        const refused = answers.filter((a) => a.status === 503);
        assert.ok(refused.length > 0, `some requests met the limit: ${JSON.stringify(answers.slice(0, 3))}`);
        for (const a of answers) {
          assert.ok(a.status === 0 || a.status === 200 || (a.status === 503 && /out of local resources \(EMFILE\)/.test(a.body)), `an answer is 200 or the 503 that says why, got ${a.status} ${a.body}`);
        }
        for (const s of socks) s.destroy();
        // Before: every failed connect counted against the instance, and all three were ejected.
        const metrics = await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text();
        assert.doesNotMatch(metrics, /^switchyard_lb_ejections_total\{/m, 'no instance was ejected');
        for (let i = 0; i < 6; i++) {
          const r = await fetch(`http://127.0.0.1:${port}/`);
          assert.equal(r.status, 200, await r.text());
        }
        const warnings = lb.stderr().split('\n').filter((l) => l.includes('out of file descriptors'));
        assert.equal(warnings.length, 1, `one warning for the burst: ${warnings.join('\n')}`);
      } finally {
        for (const s of socks) s.destroy();
        await stop(lb);
      }
    });
  }
});
