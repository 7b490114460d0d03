/**
 * Keep-alive PINGs for HTTP/2 sessions, client-facing and instance-facing alike. Node 20 stops
 * reading a connection once nghttp2 has ended it for a protocol error, and keeps the session (its
 * socket, and its streams if any are open) even after the peer closed the connection: nothing on it
 * is ever read again, so no event says so. Such a session does not answer a PING either, and that is
 * how it is found.
 */
import type { Http2Session } from 'node:http2';

export interface LivenessOptions {
  /** A session without frames either way for this long is sent a PING. */
  readonly timeMs: number;
  /** A PING not acknowledged within this: `dead` is called. */
  readonly timeoutMs: number;
}

export interface LivenessHooks {
  /** The caller's idle policy, asked at each silence: true when it closed the session (no PING then). */
  idle(): boolean;
  /** The PING went unanswered. */
  dead(): void;
}

export function watchLiveness(s: Http2Session, o: LivenessOptions, h: LivenessHooks): void {
  let probing = false;
  const acked = (err: Error | null): void => {
    if (err === null) probing = false;
  };
  const expire = (): void => {
    if (probing && !s.destroyed) h.dead();
  };
  s.setTimeout(o.timeMs);
  s.on('timeout', () => {
    if (s.destroyed || h.idle()) return;
    if (!probing) {
      probing = true;
      try {
        s.ping(acked);
      } catch {
        // Closing already: the timer below still ends it if it never goes.
      }
      setTimeout(expire, o.timeoutMs).unref();
    }
    // Node's timer is not re-armed by itself once it fired on a silent connection.
    if (!s.destroyed) s.setTimeout(o.timeMs);
  });
}
