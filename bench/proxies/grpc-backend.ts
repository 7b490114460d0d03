// A gRPC backend for bench/h2.ts: @grpc/grpc-js serving test.Echo/Unary, answering each message with
// its own bytes (no (de)serialisation cost beyond the framing). Port from argv[2] (0: any), printed once listening.
import * as grpc from '@grpc/grpc-js';

const raw = (b: Buffer): Buffer => b;
const server = new grpc.Server();
server.addService({
  Unary: { path: '/test.Echo/Unary', requestStream: false, responseStream: false, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw },
}, {
  Unary: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, call.request),
});
server.bindAsync(`127.0.0.1:${process.argv[2] ?? '0'}`, grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
  process.stdout.write(`${port}\n`);
});
process.on('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
