// Prepared queries against a reference model (fast-check): random runs of creates, updates and deletes of plain
// queries and templates with overlapping names, on a real embedded store. After every step the writes must have
// refused exactly what the model refuses (a name claimed twice, a second catch-all template), and every name must
// resolve to the query the model picks: an exact name first, then the template with the longest matching prefix.
// Templates' rendering is checked here too: captures, RemoveEmptyTags, and what an unknown variable is told.
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { EmbeddedStore } from '../../src/registry/store/embedded.js';
import { decodePreparedQuery } from '../../src/registry/server/prepared/model.js';
import type { PreparedQueryRecord } from '../../src/registry/server/prepared/model.js';
import { renderTemplate } from '../../src/registry/server/prepared/template.js';
import { PreparedQueryView } from '../../src/registry/server/prepared/view.js';
import { PreparedQueryWrites } from '../../src/registry/server/prepared/writes.js';
import { HttpError } from '../../src/core/errors.js';

const silent = { warn: () => undefined, info: () => undefined };
const NAMES = ['', 'a', 'ab', 'abc', 'b'];
const PROBES = ['a', 'ab', 'abc', 'abcd', 'b', 'ba', 'x'];

type Cmd =
  | { op: 'create'; name: string; template: boolean }
  | { op: 'update'; pick: number; name: string; template: boolean }
  | { op: 'delete'; pick: number };

const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  fc.record({ op: fc.constant('create' as const), name: fc.constantFrom(...NAMES), template: fc.boolean() }),
  fc.record({ op: fc.constant('update' as const), pick: fc.nat(9), name: fc.constantFrom(...NAMES), template: fc.boolean() }),
  fc.record({ op: fc.constant('delete' as const), pick: fc.nat(9) }),
);

interface ModelQuery {
  id: string;
  name: string;
  template: boolean;
}
const claims = (q: { name: string; template: boolean }): boolean => q.name !== '' || q.template;

function modelResolve(qs: readonly ModelQuery[], probe: string): string | undefined {
  const exact = qs.find((q) => claims(q) && q.name === probe);
  if (exact) return exact.id;
  const tpl = qs.filter((q) => q.template && probe.startsWith(q.name)).sort((x, y) => y.name.length - x.name.length)[0];
  return tpl?.id;
}

const definition = (name: string, template: boolean): Omit<PreparedQueryRecord, 'ID'> =>
  decodePreparedQuery({ Name: name, Service: { Service: 'web' }, ...(template ? { Template: { Type: 'name_prefix_match' } } : {}) });

describe('prepared queries against a model', () => {
  it('writes refuse what the model refuses and every name resolves to the model\'s query', async () => {
    await fc.assert(fc.asyncProperty(fc.array(cmd, { minLength: 1, maxLength: 25 }), async (cmds) => {
      const dir = mkdtempSync(join(tmpdir(), 'sy-pq-'));
      const store = new EmbeddedStore({ dir, sync: 'none', logger: silent });
      try {
        const view = new PreparedQueryView(await store.open());
        store.subscribe((c) => view.apply(c));
        const writes = new PreparedQueryWrites(store, () => Promise.resolve());
        let model: ModelQuery[] = [];
        for (const c of cmds) {
          const target = c.op === 'create' ? undefined : model[c.pick % Math.max(1, model.length)];
          if (c.op !== 'create' && target === undefined) continue;
          // Refused exactly when another query already claims the name (its own claim is no conflict).
          const expectRefused = c.op !== 'delete' && claims(c) && model.some((q) => q !== target && claims(q) && q.name === c.name);
          let refused: string | undefined;
          try {
            if (c.op === 'create') {
              const id = await writes.create(definition(c.name, c.template));
              model.push({ id, name: c.name, template: c.template });
            } else if (c.op === 'update' && target) {
              await writes.update(target.id, definition(c.name, c.template));
              target.name = c.name;
              target.template = c.template;
            } else if (target) {
              await writes.delete(target.id);
              model = model.filter((q) => q !== target);
            }
          } catch (err) {
            assert.ok(err instanceof HttpError && err.status === 400, `${JSON.stringify(c)}: ${String(err)}`);
            refused = err.message;
          }
          assert.equal(refused !== undefined, expectRefused, `${JSON.stringify(c)} refused: ${refused ?? 'no'}; model: ${JSON.stringify(model)}`);
          assert.deepEqual(view.list().map((q) => [q.rec.ID, q.rec.Name, q.rec.Template.Type !== '']).sort(),
            model.map((q) => [q.id, q.name, q.template]).sort(), 'the view holds the model\'s queries');
          for (const p of PROBES) assert.equal(view.resolve(p)?.rec.ID, modelResolve(model, p), `resolve ${JSON.stringify(p)} after ${JSON.stringify(c)}`);
        }
        // A view opened on the store afresh (an agent restarted) agrees too.
        const reopened = new PreparedQueryView({ revision: store.revision(), entries: store.range('pq/') });
        for (const p of PROBES) assert.equal(reopened.resolve(p)?.rec.ID, modelResolve(model, p));
      } finally {
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      }
    }), { numRuns: 60 });
  });

  it('renders templates: captures, prefix and suffix, RemoveEmptyTags', () => {
    const t = { ID: 'a7f5e2b1-0000-4000-8000-000000000001', ...decodePreparedQuery({
      Name: 'geo-', Template: { Type: 'name_prefix_match', Regexp: '^geo-([a-z]+)-(\\w*)$', RemoveEmptyTags: true },
      Service: { Service: '${match(1)}', Tags: ['${match(2)}', 'n-${name.suffix}', '${match(9)}'], Near: '${name.prefix}x', NodeMeta: { full: '${name.full}' } },
    }) };
    const r = renderTemplate(t, 'geo-db-eu1');
    assert.deepEqual([r.Service.Service, r.Service.Tags, r.Service.Near, r.Service.NodeMeta], ['db', ['eu1', 'n-db-eu1'], 'geo-x', { full: 'geo-db-eu1' }]);
    const miss = renderTemplate(t, 'geo-DB');
    assert.deepEqual([miss.Service.Service, miss.Service.Tags], ['', ['n-DB']], 'no match: every capture is empty, and empty tags go');
    assert.equal(t.Service.Service, '${match(1)}', 'the stored template is not changed by a render');
  });
});
