// The balancer's state file: written off the event loop, at most once per interval, always the newest set,
// and whatever is pending at close; a damaged or unwritable file is reported, never trusted or thrown.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StateFileWriter, loadServiceSet } from '../../src/discovery/state-file.js';
import type { Instance, ServiceSet } from '../../src/discovery/types.js';
import { waitFor } from '../helpers/agent.js';

function setOf(n: number): ServiceSet {
  const inst: Instance = { id: `n1/web-${n}`, service: 'web', node: 'n1', address: '127.0.0.1', port: 8000 + n, tags: [], meta: {}, weights: { passing: 1, warning: 1 }, status: 'passing' };
  return { catalog: new Map([['web', []]]), instances: new Map([['web', [inst]]]) };
}
const portIn = (file: string): number | undefined => {
  const l = loadServiceSet(file);
  if (l === undefined || 'error' in l) return undefined;
  return l.set.instances.get('web')?.[0]?.port;
};

describe('StateFileWriter', () => {
  it('writes the first set at once, coalesces a burst into one later write of the newest, and flushes at close', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'sy-state-')), 'lb.json');
    const errors: Error[] = [];
    const w = new StateFileWriter(file, 300, (e) => errors.push(e));
    w.save(setOf(1));
    await waitFor(() => (portIn(file) === 8001 ? true : undefined), 'the first set on disk');
    for (let i = 2; i <= 50; i++) w.save(setOf(i));
    // Within the interval nothing more is written; then exactly one write carries the newest set.
    await waitFor(() => (portIn(file) === 8050 ? true : undefined), 'the newest set of the burst on disk');
    assert.equal(w.writes, 2, 'a burst of 49 saves cost one write');
    w.save(setOf(51));
    await w.close();
    assert.equal(portIn(file), 8051, 'close writes what was pending');
    assert.deepEqual(errors, []);
  });

  it('reports an unwritable file through onError and keeps going', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sy-state-'));
    const file = join(dir, 'missing-dir', 'lb.json');
    const errors: Error[] = [];
    const w = new StateFileWriter(file, 10, (e) => errors.push(e));
    w.save(setOf(1));
    await waitFor(() => (errors.length > 0 ? true : undefined), 'the write error reported');
    assert.match(errors[0]?.message ?? '', /ENOENT/);
    await w.close();
    assert.equal(existsSync(file), false);
  });

  it('refuses a damaged file with the reason instead of trusting it', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'sy-state-')), 'lb.json');
    writeFileSync(file, '{"version":1,"catalog":');
    const l = loadServiceSet(file);
    assert.ok(l !== undefined && 'error' in l);
    assert.match(l.error, /lb\.json: /);
    writeFileSync(file, JSON.stringify({ version: 7, catalog: [], instances: [] }));
    const v = loadServiceSet(file);
    assert.ok(v !== undefined && 'error' in v && /not a Switchyard state file \(version 7\)/.test(v.error));
    assert.equal(readFileSync(file, 'utf8').includes('"version":7'), true, 'the file is left as it was');
  });
});
