// The long fuzz run of the fast plane's parser (src/core/http1/h1.ts) against llhttp: the properties of
// test/unit/h1-fuzz.test.ts with a large budget, every kind of disagreement kept with a shrunk
// counterexample, the report written to bench/results/fuzz.md.
//   BENCH_FUZZ_RUNS   total runs over all properties (default 1 000 000)
//   FC_SEED           first seed (default: random; the report names it)
import { writeFileSync } from 'node:fs';
import { versions } from 'node:process';
import type fc from 'fast-check';
import {
  checkRequest, checkResponse, checkSplits, hunt, mutatedRequest, mutatedResponse, randomRequest, splitCase, validRequest, validResponse,
} from '../test/helpers/h1-fuzz.js';
import type { Finding } from '../test/helpers/h1-fuzz.js';
import { envNum } from './lib/util.js';

const TOTAL = envNum('BENCH_FUZZ_RUNS', 1_000_000);
const SEED = process.env.FC_SEED === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(process.env.FC_SEED);

interface Prop {
  name: string;
  share: number;
  run(runs: number, seed: number): { findings: Finding[]; runs: number };
}
const prop = <T>(name: string, share: number, arb: fc.Arbitrary<T>, check: (x: T) => Finding | undefined, bytesCheck?: (b: Buffer) => Finding | undefined): Prop => ({
  name, share, run: (runs, seed) => hunt(arb, check, { runs, seed, ...(bytesCheck ? { minimize: bytesCheck } : {}) }),
});
const PROPS: Prop[] = [
  prop('valid-looking requests', 0.15, validRequest, checkRequest, checkRequest),
  prop('mutated requests', 0.4, mutatedRequest, checkRequest, checkRequest),
  prop('random bytes and HTTP-ish tokens', 0.1, randomRequest, checkRequest, checkRequest),
  prop('split points (head re-parse, chunked pieces)', 0.1, splitCase, ([b, cuts]) => checkSplits(b, cuts)),
  prop('valid-looking responses', 0.1, validResponse, checkResponse, checkResponse),
  prop('mutated responses', 0.15, mutatedResponse, checkResponse, checkResponse),
];

const rows: string[] = [];
const details: string[] = [];
const t0 = performance.now();
let totalRuns = 0;
for (const [i, p] of PROPS.entries()) {
  const budget = Math.round(TOTAL * p.share);
  const s = performance.now();
  const r = p.run(budget, SEED + i * 1000);
  const secs = (performance.now() - s) / 1000;
  totalRuns += r.runs;
  process.stdout.write(`${p.name}: ${r.runs} runs in ${secs.toFixed(1)} s, ${r.findings.length} kind(s) of disagreement\n`);
  rows.push(`| ${p.name} | ${r.runs.toLocaleString('en')} | ${secs.toFixed(1)} | ${r.findings.length} |`);
  for (const f of r.findings) {
    details.push(`### ${p.name}: ${f.kind}\n\n${f.detail}\n\n\`\`\`\n${JSON.stringify(f.bytes.toString('latin1'))}\n\`\`\`\n`);
  }
}
const secs = (performance.now() - t0) / 1000;
const report = `# Fuzzing h1.ts against llhttp

\`npm run bench:fuzz\` (bench/fuzz.ts): ${totalRuns.toLocaleString('en')} runs in ${secs.toFixed(0)} s, FC_SEED=${SEED}, Node ${versions.node}, llhttp ${versions.llhttp}.

Property: whatever src/core/http1/h1.ts accepts (parseRequestHead / parseResponseHead, then the body by
Content-Length or ChunkedDecoder), llhttp accepts too and reads the same way: method, target or status,
framing, where the head and the body end, the body bytes. h1.ts may refuse more, never less. A policy-valid
method that llhttp does not know (uppercase, '_', '-') is not counted. One shrunk counterexample per kind of
disagreement (the hunt goes on after each kind is found), reduced byte by byte while the kind stays the same.

| property | runs | seconds | kinds of disagreement |
|---|---:|---:|---:|
${rows.join('\n')}

## Counterexamples

${details.length === 0 ? 'None.' : details.join('\n')}
`;
writeFileSync('bench/results/fuzz.md', report);
process.stdout.write(`\nwrote bench/results/fuzz.md (${details.length} counterexample(s))\n`);
