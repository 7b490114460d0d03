/** Which service IDs, check IDs and node names can be registered: only those the API can address again in a URL path. */
import { badRequest } from '../../core/errors.js';
import type { HttpError } from '../../core/errors.js';

/**
 * Longest percent-encoded form accepted. Node's HTTP parser refuses request heads over 16 KiB, so an
 * ID whose deregister URL is longer than this could be registered but never removed.
 */
export const MAX_ENCODED_ID_LENGTH = 8192;

// C0 controls and DEL: the API refuses NUL and newline in paths outright, and none of them is a
// sensible part of a name. Lone surrogates have no UTF-8 form, so no URL can spell them.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/u;
// With the u flag a surrogate pair is one code point, so this matches unpaired surrogates only.
const LONE_SURROGATE = /[\ud800-\udfff]/u;

/**
 * Returns why `id` cannot be addressed in a URL path, or undefined when it can. Consul accepts these
 * at registration and then refuses the very URLs that would deregister or update them.
 */
export function idProblem(id: string): string | undefined {
  const lone = LONE_SURROGATE.exec(id);
  if (lone) return `contains an unpaired UTF-16 surrogate at character ${lone.index} (not valid Unicode: no URL can spell it)`;
  const control = CONTROL.exec(id);
  if (control) {
    const code = (control[0].codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0');
    return `contains the control character U+${code} at character ${control.index} (URL paths with control characters are refused)`;
  }
  const encoded = encodeURIComponent(id).length;
  if (encoded > MAX_ENCODED_ID_LENGTH) {
    return `is ${encoded} characters long once percent-encoded for a URL path, over the limit of ${MAX_ENCODED_ID_LENGTH}`;
  }
  return undefined;
}

/** 400 `Invalid <what> <json>: <why>` when `id` could not be addressed in a URL path. */
export function checkAddressable(what: string, id: string): void {
  const problem = idProblem(id);
  if (problem !== undefined) throw invalid(what, id, problem);
}

function invalid(what: string, id: string, problem: string): HttpError {
  const shown = JSON.stringify(id.length > 80 ? `${id.slice(0, 80)}…` : id);
  return badRequest(`Invalid ${what} ${shown}: ${problem}`);
}
