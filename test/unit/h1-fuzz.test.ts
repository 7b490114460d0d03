// Property-based fuzzing of the fast plane's parser (src/core/http1/h1.ts) against Node's llhttp: whatever
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
import { parseRequests } from '../helpers/llhttp.js';

const RUNS = Number(process.env.SY_FUZZ_RUNS ?? 5000);
// A fresh seed each run finds more over time; the seed is in every failure message to replay it.
const SEED = process.env.FC_SEED === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(process.env.FC_SEED);

/** Every kind of disagreement found within the budget, each with a shrunk counterexample. */
function property<T>(arb: fc.Arbitrary<T>, check: (x: T) => Finding | undefined, bytesCheck?: (b: Buffer) => Finding | undefined): void {
  const { findings, runs } = hunt(arb, check, { runs: RUNS, seed: SEED, ...(bytesCheck ? { minimize: bytesCheck } : {}) });
  assert.equal(findings.length, 0, `${findings.length} kind(s) of disagreement in ${runs} runs (FC_SEED=${SEED}):\n\n${findings.map(formatFinding).join('\n\n')}`);
}

describe('the reference and the checks themselves', () => {
  it('llhttp (test/helpers/llhttp.ts) reports heads, bodies and errors to the byte', () => {
    const s = 'POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /y HTTP/1.1\r\nHost: b\r\n\r\nGET / HTTP/1.1\r\nHost\r\n\r\n';
    const p = parseRequests(Buffer.from(s, 'latin1'));
    assert.deepEqual(p.messages.map((m) => [m.method, m.url, m.framing.kind, m.body.toString(), m.start, m.headEnd, m.end]), [
      ['POST', '/x', 'chunked', 'abc', 0, 57, 70],
      ['GET', '/y', 'none', '', 70, 98, 98],
    ]);
    assert.equal(p.error?.code, 'HPE_INVALID_HEADER_TOKEN');
    assert.equal(p.error?.at, s.indexOf('Host\r\n\r\n') + 4);
  });
  it('the checks pass what both parsers read alike, and let h1.ts be stricter', () => {
    assert.equal(checkRequest(Buffer.from('POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n', 'latin1')), undefined);
    assert.equal(checkRequest(Buffer.from('POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhel', 'latin1')), undefined, 'both need more bytes');
    assert.equal(checkResponse(Buffer.from('HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n', 'latin1')), undefined, 'a 304 has no body for either');
    assert.equal(checkSplits(Buffer.from('POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n', 'latin1'), [3, 20, 60, 64, 70]), undefined);
    // h1.ts refuses what llhttp accepts (stricter is allowed): not a finding.
    assert.equal(checkRequest(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 'latin1')), undefined);
  });
  it('the long runs\' counterexamples stay fixed', () => {
    // bench:fuzz, 6,000,000 runs, FC_SEED=1732310503: h1 took a second "@" in an absolute-form authority,
    // llhttp refuses it (HPE_INVALID_URL, "Double @ in url").
    for (const s of ['GET p://@@ HTTP/1.1\r\nHost:\r\n\r\n', 'GET http://a@b@c/ HTTP/1.1\r\nHost: x\r\n\r\n']) {
      const finding = checkRequest(Buffer.from(s, 'latin1'));
      assert.equal(finding, undefined, `${JSON.stringify(s)}: ${finding ? formatFinding(finding) : ''}`);
    }
  });
});

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
