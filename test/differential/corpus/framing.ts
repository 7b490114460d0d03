/** Message framing: CL.TE and TE.CL, every Transfer-Encoding obfuscation, Content-Length forms, chunked-body syntax. */
import type { Case, Step } from '../types.js';
import { SMUGGLED, chunks, get, msg, refused, web } from './dsl.js';

const BODY = chunks('hello');
const NEXT = get('/next');
const head = (...lines: string[]): string[] => ['POST /x HTTP/1.1', 'Host: a.test', ...lines];

const classic: Case[] = [
  { id: 'clte-classic', about: 'CL.TE: Content-Length covers a smuggled prefix, chunked ends early', send: msg(head('Content-Length: 6', 'Transfer-Encoding: chunked'), '0\r\n\r\nG'), expect: { sy: [refused(400)] } },
  { id: 'tecl-classic', about: 'TE.CL: chunked covers a smuggled request, Content-Length ends early', send: msg(head('Content-Length: 4', 'Transfer-Encoding: chunked'), `${(SMUGGLED.length).toString(16)}\r\n${SMUGGLED}\r\n0\r\n\r\n`), expect: { sy: [refused(400)] } },
  { id: 'clte-te-first', about: 'both framings, Transfer-Encoding first', send: msg(head('Transfer-Encoding: chunked', `Content-Length: ${BODY.length + SMUGGLED.length}`), BODY + SMUGGLED), expect: { sy: [refused(400)] } },
  { id: 'clte-cl-zero', about: 'Content-Length: 0 with chunked: one side sees a body, the other none', send: msg(head('Content-Length: 0', 'Transfer-Encoding: chunked'), BODY), expect: { sy: [refused(400)] } },
  { id: 'clte-full-smuggle', about: 'CL covers a whole request after the last chunk', send: msg(head(`Content-Length: ${5 + SMUGGLED.length}`, 'Transfer-Encoding: chunked'), `0\r\n\r\n${SMUGGLED}`), expect: { sy: [refused(400)] } },
  { id: 'te-http10', about: 'Transfer-Encoding in an HTTP/1.0 request (RFC 9112 §6.1: must be treated as faulty)', send: msg(['POST /x HTTP/1.0', 'Host: a.test', 'Transfer-Encoding: chunked'], BODY), expect: { sy: [refused(400)] } },
  { id: 'te-http10-cl', about: 'HTTP/1.0 with both framings', send: msg(['POST /x HTTP/1.0', 'Host: a.test', 'Transfer-Encoding: chunked', `Content-Length: ${BODY.length}`], BODY), expect: { sy: [refused(400)] } },
  { id: 'te-get', about: 'a GET with a chunked (empty) body is still framed by it', send: msg(['GET /x HTTP/1.1', 'Host: a.test', 'Transfer-Encoding: chunked'], '0\r\n\r\n'), expect: { all: [web('GET', '/x', { body: '' })] } },
  { id: 'cl-get-body', about: 'a GET with a Content-Length body', send: msg(['GET /x HTTP/1.1', 'Host: a.test', 'Content-Length: 5'], 'hello'), expect: { all: [web('GET', '/x', { body: 'hello' })] } },
  { id: 'te-pipeline-after-zero', about: 'a request after the last chunk is a separate, pipelined request', send: msg(head('Transfer-Encoding: chunked'), BODY) + SMUGGLED, expect: { all: [web('POST', '/x', { body: 'hello' }), web('GET', '/smuggled', { host: 'evil.test' })] } },
];

// Transfer-Encoding field lines: each alone with a chunked body, and again next to a Content-Length
// that covers the same bytes (the TE.CL shape: whichever header a parser ignores, it must not forward).
const valid = (): Step[] => [web('POST', '/x', { body: 'hello' })];
const TE: { name: string; lines: string[]; ok: boolean; status?: number; nodeLikeFast?: boolean }[] = [
  { name: 'plain', lines: ['Transfer-Encoding: chunked'], ok: true },
  { name: 'case-value', lines: ['Transfer-Encoding: Chunked'], ok: true },
  { name: 'upper-value', lines: ['Transfer-Encoding: CHUNKED'], ok: true },
  { name: 'mixed-case', lines: ['Transfer-Encoding: chunKed'], ok: true },
  { name: 'upper-name', lines: ['TRANSFER-ENCODING: chunked'], ok: true },
  { name: 'no-space', lines: ['Transfer-Encoding:chunked'], ok: true },
  { name: 'lead-space', lines: ['Transfer-Encoding:  chunked'], ok: true },
  { name: 'trail-space', lines: ['Transfer-Encoding: chunked  '], ok: true },
  { name: 'lead-tab', lines: ['Transfer-Encoding:\tchunked'], ok: false },
  { name: 'trail-tab', lines: ['Transfer-Encoding: chunked\t'], ok: false },
  { name: 'vtab-after', lines: ['Transfer-Encoding: chunked\x0b'], ok: false },
  { name: 'vtab-before', lines: ['Transfer-Encoding: \x0bchunked'], ok: false },
  { name: 'ff-after', lines: ['Transfer-Encoding: chunked\x0c'], ok: false },
  { name: 'nul-after', lines: ['Transfer-Encoding: chunked\x00'], ok: false },
  { name: 'nul-inside', lines: ['Transfer-Encoding: chun\x00ked'], ok: false },
  { name: 'nbsp-before', lines: ['Transfer-Encoding: \xc2\xa0chunked'], ok: false },
  { name: 'latin1-nbsp', lines: ['Transfer-Encoding: \xa0chunked'], ok: false },
  { name: 'chunked-identity', lines: ['Transfer-Encoding: chunked, identity'], ok: false },
  { name: 'identity-chunked', lines: ['Transfer-Encoding: identity, chunked'], ok: false, status: 501 },
  { name: 'gzip-chunked', lines: ['Transfer-Encoding: gzip, chunked'], ok: false, status: 501 },
  { name: 'chunked-gzip', lines: ['Transfer-Encoding: chunked, gzip'], ok: false },
  { name: 'chunked-chunked', lines: ['Transfer-Encoding: chunked, chunked'], ok: false },
  { name: 'unknown-chunked', lines: ['Transfer-Encoding: x-custom, chunked'], ok: false, status: 501 },
  { name: 'quoted', lines: ['Transfer-Encoding: "chunked"'], ok: false },
  { name: 'param', lines: ['Transfer-Encoding: chunked;q=1'], ok: false },
  { name: 'prefix-x', lines: ['Transfer-Encoding: xchunked'], ok: false },
  { name: 'suffix-x', lines: ['Transfer-Encoding: chunkedx'], ok: false },
  { name: 'truncated', lines: ['Transfer-Encoding: chunk'], ok: false },
  { name: 'identity', lines: ['Transfer-Encoding: identity'], ok: false },
  { name: 'gzip', lines: ['Transfer-Encoding: gzip'], ok: false },
  { name: 'unknown', lines: ['Transfer-Encoding: x-unknown'], ok: false },
  { name: 'empty', lines: ['Transfer-Encoding:'], ok: false, nodeLikeFast: true },
  { name: 'empty-elements', lines: ['Transfer-Encoding: ,chunked,'], ok: false },
  { name: 'dup-same', lines: ['Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'], ok: false },
  { name: 'dup-identity-first', lines: ['Transfer-Encoding: identity', 'Transfer-Encoding: chunked'], ok: false, status: 501 },
  { name: 'dup-identity-last', lines: ['Transfer-Encoding: chunked', 'Transfer-Encoding: identity'], ok: false },
  { name: 'dup-empty-first', lines: ['Transfer-Encoding:', 'Transfer-Encoding: chunked'], ok: false },
  { name: 'space-before-colon', lines: ['Transfer-Encoding : chunked'], ok: false },
  { name: 'tab-before-colon', lines: ['Transfer-Encoding\t: chunked'], ok: false },
  { name: 'folded-value', lines: ['Transfer-Encoding:', ' chunked'], ok: false },
  { name: 'folded-line', lines: ['X-Pad: 1', ' Transfer-Encoding: chunked'], ok: false },
  { name: 'lead-space-name', lines: [' Transfer-Encoding: chunked'], ok: false },
  { name: 'underscore-name', lines: ['Transfer_Encoding: chunked'], ok: false, nodeLikeFast: true },
  { name: 'in-connection', lines: ['Transfer-Encoding: chunked', 'Connection: Transfer-Encoding'], ok: false, nodeLikeFast: true },
];

// The Node plane reads Transfer-Encoding with llhttp: lists ending in chunked are chunked, undici then
// re-chunks the body; what llhttp refuses is a 400. Recorded as it is (safe: the body is re-framed).
// Node's parser trims the tab and reads an empty field beside a chunked one as chunked, so the node plane
// (which checks what Node's parser accepted) forwards these as valid chunked requests; the fast plane
// refuses them like nginx. Codings before chunked are refused with 501 by both planes, as nginx does.
const NODE_TE_FORWARDS = new Set(['plain', 'case-value', 'upper-value', 'mixed-case', 'upper-name', 'no-space', 'lead-space', 'trail-space', 'lead-tab', 'dup-empty-first']);

function teCases(): Case[] {
  const out: Case[] = [];
  for (const t of TE) {
    const refusal: Step[] = [refused(t.status ?? 400)];
    // underscore-name: Transfer_Encoding is just another header, so the body is not framed at all and
    // its first line is the next "request" (refused).
    const teOnly: readonly Step[] = t.name === 'underscore-name' ? [web('POST', '/x', { body: '' }), refused(400)] : t.ok ? valid() : refusal;
    out.push({ id: `te-${t.name}`, about: `Transfer-Encoding ${JSON.stringify(t.lines)} with a chunked body`, send: msg(head(...t.lines), BODY), expect: t.nodeLikeFast ? { sy: teOnly } : { fast: teOnly, node: NODE_TE_FORWARDS.has(t.name) ? valid() : refusal } });
    // With both framings the request is refused before the codings are looked at.
    const withCl: readonly Step[] = t.name === 'underscore-name' ? [web('POST', '/x', { body: BODY })] : [refused(400)];
    out.push({ id: `tecl-${t.name}`, about: `Transfer-Encoding ${JSON.stringify(t.lines)} next to a Content-Length covering the same bytes`, send: msg(head(...t.lines, `Content-Length: ${BODY.length}`), BODY), expect: { fast: withCl, node: t.name === 'underscore-name' ? [web('POST', '/x', { body: BODY })] : [refused(400)] } });
  }
  return out;
}

// Content-Length forms: a 5-byte body, then a pipelined GET that shows where each side thinks the body ended.
const CL: { name: string; lines: string[]; ok: boolean; node?: boolean }[] = [
  { name: 'plain', lines: ['Content-Length: 5'], ok: true },
  { name: 'lead-space', lines: ['Content-Length:   5'], ok: true },
  { name: 'trail-space', lines: ['Content-Length: 5 '], ok: true },
  { name: 'lead-tab', lines: ['Content-Length:\t5'], ok: false, node: true },
  { name: 'leading-zero', lines: ['Content-Length: 05'], ok: true },
  { name: 'many-zeros', lines: ['Content-Length: 0000000005'], ok: true },
  { name: 'plus', lines: ['Content-Length: +5'], ok: false },
  { name: 'minus', lines: ['Content-Length: -5'], ok: false },
  { name: 'minus-zero', lines: ['Content-Length: -0'], ok: false },
  { name: 'list-same', lines: ['Content-Length: 5,5'], ok: false },
  { name: 'list-space', lines: ['Content-Length: 5, 5'], ok: false },
  { name: 'list-differ', lines: ['Content-Length: 5, 50'], ok: false },
  { name: 'inner-space', lines: ['Content-Length: 5 5'], ok: false },
  { name: 'hex', lines: ['Content-Length: 0x5'], ok: false },
  { name: 'decimal', lines: ['Content-Length: 5.0'], ok: false },
  { name: 'exponent', lines: ['Content-Length: 5e0'], ok: false },
  { name: 'empty', lines: ['Content-Length:'], ok: false },
  { name: 'word', lines: ['Content-Length: five'], ok: false },
  { name: 'nul', lines: ['Content-Length: 5\x00'], ok: false },
  { name: 'vtab', lines: ['Content-Length: 5\x0b'], ok: false },
  { name: 'dup-same', lines: ['Content-Length: 5', 'Content-Length: 5'], ok: false },
  { name: 'dup-differ', lines: ['Content-Length: 5', 'Content-Length: 6'], ok: false },
  { name: 'dup-case', lines: ['Content-Length: 5', 'content-length: 5'], ok: false },
  { name: 'space-before-colon', lines: ['Content-Length : 5'], ok: false },
  { name: 'folded', lines: ['Content-Length:', ' 5'], ok: false },
  { name: 'in-connection', lines: ['Content-Length: 5', 'Connection: Content-Length'], ok: false },
];

function clCases(): Case[] {
  const out: Case[] = CL.map((c) => ({
    id: `cl-${c.name}`, about: `Content-Length ${JSON.stringify(c.lines)} with a 5-byte body and a pipelined GET`,
    send: msg(head(...c.lines), 'hello') + NEXT,
    expect: c.node === undefined
      ? { sy: c.ok ? [web('POST', '/x', { body: 'hello' }), web('GET', '/next')] : [refused(400)] }
      : { fast: c.ok ? [web('POST', '/x', { body: 'hello' }), web('GET', '/next')] : [refused(400)], node: c.node ? [web('POST', '/x', { body: 'hello' }), web('GET', '/next')] : [refused(400)] },
  }));
  out.push(
    { id: 'cl-huge', about: 'a Content-Length beyond 2^64', send: msg(head('Content-Length: 99999999999999999999999'), 'hello'), expect: { sy: [refused(400)] } },
    { id: 'cl-wrap-2p64', about: 'Content-Length 2^64+5: wraps to 5 in a 64-bit parser without overflow checks', send: msg(head('Content-Length: 18446744073709551621'), 'hello') + NEXT, expect: { sy: [refused(400)] } },
    { id: 'cl-wrap-2p32', about: 'Content-Length 2^32+5: wraps to 5 in a 32-bit parser (the rest of the stream is body)', send: msg(head('Content-Length: 4294967301'), 'hello') + NEXT, expect: { fast: [], node: [refused(400)] } },
    { id: 'cl-zero-then-bytes', about: 'Content-Length: 0, then bytes that are the next request', send: msg(head('Content-Length: 0')) + NEXT, expect: { all: [web('POST', '/x', { body: '' }), web('GET', '/next')] } },
    { id: 'cl-http10', about: 'HTTP/1.0 POST with Content-Length', send: msg(['POST /x HTTP/1.0', 'Host: a.test', 'Content-Length: 5'], 'hello'), expect: { all: [web('POST', '/x', { body: 'hello' })] } },
    { id: 'cl-short-body', about: 'a body shorter than its Content-Length, then the client ends', send: msg(head('Content-Length: 10'), 'hello'), expect: { fast: [], node: [refused(400)] } },
  );
  return out;
}

// Chunked body syntax: a valid head, the body under test, then a pipelined GET.
const CH: { name: string; body: string; ok: boolean; node?: boolean }[] = [
  { name: 'valid', body: '5\r\nhello\r\n0\r\n\r\n', ok: true },
  { name: 'upper-hex', body: 'A\r\nhellohello\r\n0\r\n\r\n', ok: true },
  { name: 'many-zero-last', body: '5\r\nhello\r\n000\r\n\r\n', ok: true },
  { name: 'leading-zeros', body: '0005\r\nhello\r\n0\r\n\r\n', ok: true },
  { name: 'size-overflow-17', body: '10000000000000005\r\nhello\r\n0\r\n\r\n', ok: false },
  { name: 'size-overflow-ff', body: 'ffffffffffffffff1\r\nhello\r\n0\r\n\r\n', ok: false },
  { name: 'size-13-digits', body: 'fffffffffffff\r\nhello\r\n0\r\n\r\n', ok: false },
  { name: 'size-20-zeros', body: '00000000000000000005\r\nhello\r\n0\r\n\r\n', ok: false, node: true },
  { name: 'size-0x', body: '0x5\r\nhello\r\n0\r\n\r\n', ok: false },
  { name: 'size-plus', body: '+5\r\nhello\r\n0\r\n\r\n', ok: false },
  { name: 'size-minus', body: '-5\r\nhello\r\n0\r\n\r\n', ok: false },
  { name: 'size-lead-space', body: ' 5\r\nhello\r\n0\r\n\r\n', ok: false },
  { name: 'size-trail-space', body: '5 \r\nhello\r\n0\r\n\r\n', ok: false },
  { name: 'size-trail-tab', body: '5\t\r\nhello\r\n0\r\n\r\n', ok: false },
  { name: 'size-empty', body: '\r\nhello\r\n0\r\n\r\n', ok: false },
  { name: 'ext', body: '5;name=value\r\nhello\r\n0\r\n\r\n', ok: true },
  { name: 'ext-quoted', body: '5;name="a b"\r\nhello\r\n0\r\n\r\n', ok: true },
  { name: 'ext-bare-name', body: '5;ext\r\nhello\r\n0;last\r\n\r\n', ok: true },
  { name: 'ext-space-before-semicolon', body: '5 ;ext\r\nhello\r\n0\r\n\r\n', ok: false },
  { name: 'ext-nul', body: '5;ext\x00\r\nhello\r\n0\r\n\r\n', ok: false },
  { name: 'ext-bare-cr', body: '5;a\rb\r\nhello\r\n0\r\n\r\n', ok: false },
  { name: 'ext-bare-lf', body: '5;ext\nhello\r\n0\r\n\r\n', ok: false },
  { name: 'ext-long', body: `5;${'x'.repeat(5000)}\r\nhello\r\n0\r\n\r\n`, ok: false, node: true },
  { name: 'size-bare-lf', body: '5\nhello\r\n0\r\n\r\n', ok: false },
  { name: 'size-bare-cr', body: '5\rhello\r\n0\r\n\r\n', ok: false },
  { name: 'data-longer', body: '3\r\nhello\r\n0\r\n\r\n', ok: false },
  { name: 'data-no-crlf', body: '5\r\nhello0\r\n\r\n', ok: false },
  { name: 'data-bare-lf', body: '5\r\nhello\n0\r\n\r\n', ok: false },
  { name: 'data-bare-cr', body: '5\r\nhello\r0\r\n\r\n', ok: false },
  { name: 'last-bare-lf', body: '5\r\nhello\r\n0\n\n', ok: false },
  { name: 'trailer', body: '5\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n', ok: true },
  { name: 'trailer-no-colon', body: '5\r\nhello\r\n0\r\nX-Trailer\r\n\r\n', ok: false },
  { name: 'trailer-folded', body: '5\r\nhello\r\n0\r\nX-Trailer: 1\r\n 2\r\n\r\n', ok: false },
  { name: 'trailer-cl', body: '5\r\nhello\r\n0\r\nContent-Length: 50\r\n\r\n', ok: true, node: false },
  { name: 'trailer-te', body: '5\r\nhello\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n', ok: true, node: false },
  { name: 'trailer-bare-lf', body: '5\r\nhello\r\n0\r\nX-Trailer: 1\n\r\n', ok: false },
  { name: 'trailer-nul', body: '5\r\nhello\r\n0\r\nX-Trailer: \x00\r\n\r\n', ok: false },
  { name: 'no-last-chunk', body: `5\r\nhello\r\n${NEXT}`, ok: false },
];

function chunkCases(): Case[] {
  return CH.map((c) => {
    const want = c.name === 'upper-hex' ? 'hellohello' : 'hello';
    return {
      id: `chunk-${c.name}`, about: `chunked body ${JSON.stringify(c.body.slice(0, 60))} and a pipelined GET`,
      send: msg(head('Transfer-Encoding: chunked'), c.body) + (c.name === 'no-last-chunk' ? '' : NEXT),
      expect: {
        fast: c.ok ? [web('POST', '/x', { body: want }), web('GET', '/next')] : [refused(400)],
        node: (c.node ?? c.ok) ? [web('POST', '/x', { body: want }), web('GET', '/next')] : [refused(400)],
      },
    };
  });
}

export const cases: Case[] = [...classic, ...teCases(), ...clCases(), ...chunkCases()];
