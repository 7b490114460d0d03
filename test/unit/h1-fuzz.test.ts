// Property-based fuzzing of the fast plane's parser (src/proxy/h1.ts) against Node's llhttp: whatever
// h1.ts accepts, llhttp accepts too and reads the same way (method, target or status, framing, where
// the head and the body end); h1.ts may only refuse more. Plus: any split of the bytes parses the same.
// A bounded run (SY_FUZZ_RUNS per property, default 5000; FC_SEED to replay a seed); the long run is
// `npm run bench:fuzz` (bench/fuzz.ts). A failure prints the shrunk counterexample bytes and the seed.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type fc from 'fast-check';
import {
  checkRequest, checkResponse, checkSplits, formatFinding, hunt, mutatedRequest, mutatedResponse, randomRequest, splitCase, validRequest, validResponse,
} from '../helpers/h1-fuzz.js';
import type { Finding } from '../helpers/h1-fuzz.js';

const RUNS = Number(process.env.SY_FUZZ_RUNS ?? 5000);
// A fresh seed each run finds more over time; the seed is in every failure message to replay it.
const SEED = process.env.FC_SEED === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(process.env.FC_SEED);

/** Every kind of disagreement found within the budget, each with a shrunk counterexample. */
function property<T>(arb: fc.Arbitrary<T>, check: (x: T) => Finding | undefined, bytesCheck?: (b: Buffer) => Finding | undefined): void {
  const { findings, runs } = hunt(arb, check, { runs: RUNS, seed: SEED, ...(bytesCheck ? { minimize: bytesCheck } : {}) });
  assert.equal(findings.length, 0, `${findings.length} kind(s) of disagreement in ${runs} runs (FC_SEED=${SEED}):\n\n${findings.map(formatFinding).join('\n\n')}`);
}

describe('h1.ts accepts nothing llhttp refuses or reads differently (fast-check)', () => {
  it('valid-looking requests', () => {
    property(validRequest, checkRequest, checkRequest);
  });
  it('mutated requests (CR, LF, NUL, SP, HTAB, ":", ",", digits, Transfer-Encoding letters inserted, deleted, replaced)', () => {
    property(mutatedRequest, checkRequest, checkRequest);
  });
  it('random bytes and random HTTP-ish tokens', () => {
    property(randomRequest, checkRequest, checkRequest);
  });
  it('any split of a request parses as the whole (head re-parsed per read, chunked body fed in pieces)', () => {
    property(splitCase, ([b, cuts]) => checkSplits(b, cuts));
  });
  it('valid-looking responses', () => {
    property(validResponse, checkResponse, checkResponse);
  });
  it('mutated responses', () => {
    property(mutatedResponse, checkResponse, checkResponse);
  });
});
