/** One DNS message in, at most one out: decoding, FORMERR for what cannot be decoded, and the guarantee never to throw. */
import { decode, encode } from 'dns-packet';
import type { Packet } from 'dns-packet';
import { RCODES, answerQuery } from './answer.js';
import type { AnswerContext, RcodeName } from './answer.js';

export const HEADER_SIZE = 12;
const QR = 0x8000;
const RD = 0x0100;
const OPCODE_MASK = 0x7800;

export type Outcome =
  | { readonly kind: 'answered'; readonly reply: Buffer; readonly qtype: string | undefined; readonly rcode: RcodeName; readonly truncated: boolean }
  | { readonly kind: 'dropped'; readonly reason: 'short' | 'response' };

/**
 * Answers `bytes`. Without a whole header there is no ID to answer to, so the message is dropped;
 * messages that are responses are dropped too, so two servers cannot bounce errors at each other.
 */
export function handleMessage(bytes: Buffer, ctx: AnswerContext): Outcome {
  if (bytes.length < HEADER_SIZE) return { kind: 'dropped', reason: 'short' };
  if ((bytes.readUInt16BE(2) & QR) !== 0) return { kind: 'dropped', reason: 'response' };
  let request: Packet;
  try {
    request = decode(bytes);
  } catch {
    return headerOnly(bytes, 'FORMERR', undefined);
  }
  const qtype = request.questions?.length === 1 ? request.questions[0]?.type : undefined;
  try {
    const result = answerQuery(request, ctx);
    return { kind: 'answered', reply: encode(result.response), qtype, rcode: result.rcode, truncated: result.truncated };
  } catch {
    // A bug must cost one query, not the listener.
    return headerOnly(bytes, 'SERVFAIL', qtype);
  }
}

/** A reply of just the request's header: its ID, opcode and RD, no records. */
export function headerOnly(request: Buffer, rcode: RcodeName, qtype: string | undefined): Outcome {
  const out = Buffer.alloc(HEADER_SIZE);
  out.writeUInt16BE(request.readUInt16BE(0), 0);
  out.writeUInt16BE(QR | (request.readUInt16BE(2) & (OPCODE_MASK | RD)) | (RCODES[rcode] & 0xf), 2);
  return { kind: 'answered', reply: out, qtype, rcode, truncated: false };
}
