/**
 * Real gRPC servers and clients for tests (@grpc/grpc-js): a `test.Echo` service with all four call
 * kinds (JSON messages, no .proto needed) that says which instance answered, and the standard
 * grpc.health.v1.Health service with its protobuf messages encoded here.
 */
import * as grpc from '@grpc/grpc-js';

export interface Msg {
  text?: string;
  n?: number;
  delayMs?: number;
  /** Fail the call with this gRPC status. */
  fail?: number;
  from?: string;
  meta?: string;
}

const json = {
  serialize: (m: Msg): Buffer => Buffer.from(JSON.stringify(m)),
  deserialize: (b: Buffer): Msg => JSON.parse(b.toString()) as Msg,
};

const method = (name: string, requestStream: boolean, responseStream: boolean): grpc.MethodDefinition<Msg, Msg> => ({
  path: `/test.Echo/${name}`, requestStream, responseStream,
  requestSerialize: json.serialize, requestDeserialize: json.deserialize, responseSerialize: json.serialize, responseDeserialize: json.deserialize,
});

export const ECHO: grpc.ServiceDefinition = {
  Unary: method('Unary', false, false),
  ServerStream: method('ServerStream', false, true),
  ClientStream: method('ClientStream', true, false),
  Bidi: method('Bidi', true, true),
};

// --- grpc.health.v1 (HealthCheckRequest { string service = 1; }, HealthCheckResponse { ServingStatus status = 1; }) ---

function readHealthRequest(b: Buffer): string {
  // Field 1, wire type 2: tag 0x0a, a varint length, the bytes.
  if (b.length === 0) return '';
  if (b[0] !== 0x0a) throw new Error('unexpected field in HealthCheckRequest');
  let len = 0;
  let shift = 0;
  let i = 1;
  for (;;) {
    const c = b[i++] as number;
    len |= (c & 0x7f) << shift;
    if ((c & 0x80) === 0) break;
    shift += 7;
  }
  return b.subarray(i, i + len).toString('utf8');
}

const HEALTH: grpc.ServiceDefinition = {
  Check: {
    path: '/grpc.health.v1.Health/Check', requestStream: false, responseStream: false,
    requestSerialize: (r: { service: string }) => Buffer.concat([Buffer.from([0x0a, Buffer.byteLength(r.service)]), Buffer.from(r.service)]),
    // An object, as protobuf decoders return: grpc-js takes a falsy message for a missing one.
    requestDeserialize: (b: Buffer) => ({ service: readHealthRequest(b) }),
    responseSerialize: (status: number) => (status === 0 ? Buffer.alloc(0) : Buffer.from([0x08, status])),
    responseDeserialize: (b: Buffer) => (b.length >= 2 ? (b[1] as number) : 0),
  },
};

export const SERVING = 1;
export const NOT_SERVING = 2;

export interface GrpcBackend {
  readonly name: string;
  readonly port: number;
  readonly server: grpc.Server;
  calls: number;
  /** Every Unary call fails with UNAVAILABLE (a sick instance). */
  unavailable: boolean;
  /** Calls the client (or the balancer) cancelled. */
  cancelled: number;
  /** The deadline of each unary call as the server read it from grpc-timeout (ms since the epoch; Infinity: none). */
  deadlines: number[];
  /** Health status per service name ('' = the whole server); absent: NOT_FOUND. */
  health: Map<string, number>;
  close(): Promise<void>;
}

/** A gRPC server on 127.0.0.1 (port 0) with the Echo and Health services; every answer names `name`. */
export async function startGrpcBackend(name: string): Promise<GrpcBackend> {
  const server = new grpc.Server();
  const b: GrpcBackend = {
    name, port: 0, server, calls: 0, unavailable: false, cancelled: 0, deadlines: [], health: new Map([['', SERVING]]),
    close: () => new Promise<void>((resolve) => {
      server.forceShutdown();
      resolve();
    }),
  };
  const meta = (call: { metadata: grpc.Metadata }): string => String(call.metadata.get('x-test')[0] ?? '');
  server.addService(ECHO, {
    Unary: (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      b.calls++;
      const m = call.request;
      const d = call.getDeadline();
      b.deadlines.push(d instanceof Date ? d.getTime() : d);
      call.on('cancelled', () => b.cancelled++);
      const answer = (): void => {
        if (b.unavailable) {
          cb({ code: grpc.status.UNAVAILABLE, details: `${name} is unavailable` });
          return;
        }
        if (m.fail !== undefined) {
          cb({ code: m.fail, details: `failed as asked by ${name}` });
          return;
        }
        const trailer = new grpc.Metadata();
        trailer.set('x-served-by', name);
        cb(null, { text: m.text ?? '', from: name, meta: meta(call) }, trailer);
      };
      if (m.delayMs) setTimeout(answer, m.delayMs);
      else answer();
    },
    ServerStream: (call: grpc.ServerWritableStream<Msg, Msg>) => {
      b.calls++;
      const n = call.request.n ?? 3;
      let i = 0;
      const next = (): void => {
        while (i < n) {
          const ok = call.write({ n: i++, from: name, text: call.request.text ?? '' });
          if (!ok) {
            call.once('drain', next);
            return;
          }
        }
        call.end();
      };
      next();
    },
    ClientStream: (call: grpc.ServerReadableStream<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      b.calls++;
      let sum = 0;
      call.on('data', (m: Msg) => (sum += m.n ?? 0));
      call.on('end', () => cb(null, { n: sum, from: name }));
    },
    Bidi: (call: grpc.ServerDuplexStream<Msg, Msg>) => {
      b.calls++;
      call.on('data', (m: Msg) => call.write({ text: m.text ?? '', n: m.n ?? 0, from: name }));
      call.on('end', () => call.end());
    },
  });
  server.addService(HEALTH, {
    Check: (call: grpc.ServerUnaryCall<{ service: string }, number>, cb: grpc.sendUnaryData<number>) => {
      const st = b.health.get(call.request.service);
      if (st === undefined) cb({ code: grpc.status.NOT_FOUND, details: 'unknown service' });
      else cb(null, st);
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  (b as { port: number }).port = port;
  return b;
}

export type EchoClient = grpc.Client & {
  Unary(m: Msg, md: grpc.Metadata, o: grpc.CallOptions, cb: (err: grpc.ServiceError | null, r?: Msg) => void): grpc.ClientUnaryCall;
  ServerStream(m: Msg, md?: grpc.Metadata, o?: grpc.CallOptions): grpc.ClientReadableStream<Msg>;
  ClientStream(md: grpc.Metadata, o: grpc.CallOptions, cb: (err: grpc.ServiceError | null, r?: Msg) => void): grpc.ClientWritableStream<Msg>;
  Bidi(md?: grpc.Metadata, o?: grpc.CallOptions): grpc.ClientDuplexStream<Msg, Msg>;
};

const EchoCtor = grpc.makeGenericClientConstructor(ECHO, 'test.Echo');

/** A client for `target` (host:port); TLS with `ca` when given (checked against `servername`). */
export function echoClient(target: string, tls?: { ca: Buffer; servername: string }): EchoClient {
  const creds = tls ? grpc.credentials.createSsl(tls.ca) : grpc.credentials.createInsecure();
  const opts: grpc.ChannelOptions = tls ? { 'grpc.ssl_target_name_override': tls.servername, 'grpc.default_authority': tls.servername } : {};
  return new EchoCtor(target, creds, opts) as unknown as EchoClient;
}

/** One unary call as a promise: the answer and the trailing metadata, or the error. */
export function unary(c: EchoClient, m: Msg, o: { meta?: Record<string, string>; deadlineMs?: number } = {}): Promise<{ answer: Msg; trailers: grpc.Metadata }> {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(o.meta ?? {})) md.set(k, v);
  return new Promise((resolve, reject) => {
    let trailers = new grpc.Metadata();
    const call = c.Unary(m, md, o.deadlineMs !== undefined ? { deadline: Date.now() + o.deadlineMs } : {}, (err, r) => {
      if (err) reject(err);
      else setImmediate(() => resolve({ answer: r as Msg, trailers }));
    });
    call.on('status', (s: grpc.StatusObject) => (trailers = s.metadata));
  });
}

export { grpc };
