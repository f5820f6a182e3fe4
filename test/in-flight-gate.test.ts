import { EventEmitter } from 'node:events';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { describe, expect, it } from 'vitest';
import { InFlightGate } from '../shared/http/in-flight.ts';

/**
 * The gate's bookkeeping, request by request, on stand-in connections: the orders of events a real
 * socket gives only now and then (an answer's hook after its connection closed) are played here in
 * the order under test. The bound over real sockets is in shedding.test.ts.
 */

type Socket = EventEmitter & { destroyed: boolean };
const connection = (): Socket => Object.assign(new EventEmitter(), { destroyed: false });
const requestOn = (socket: Socket) => ({ raw: { socket }, inFlight: false }) as unknown as FastifyRequest;
const reply = {} as FastifyReply;

function admit(gate: InFlightGate, request: FastifyRequest): Error | undefined {
  let outcome: Error | undefined;
  gate.admit(request, reply, (error?: Error) => {
    outcome = error;
  });
  return outcome;
}
const release = (gate: InFlightGate, request: FastifyRequest) => gate.release(request, reply, () => undefined);

describe('InFlightGate', () => {
  it('counts requests until answered, and refuses past the bound with OVERLOADED', () => {
    const gate = new InFlightGate(2);
    const socket = connection();
    const [a, b, c] = [requestOn(socket), requestOn(socket), requestOn(connection())];
    expect([admit(gate, a), admit(gate, b)]).toEqual([undefined, undefined]);
    expect(gate.size).toBe(2);
    expect(admit(gate, c)).toMatchObject({ code: 'OVERLOADED' });
    release(gate, c); // the refused request's answer frees nothing
    expect(gate.size).toBe(2);
    release(gate, a);
    release(gate, b);
    expect(gate.size).toBe(0);
  });

  it("a closed connection frees its requests' places once, even if an answer's hook comes after", () => {
    const gate = new InFlightGate(10);
    const gone = connection();
    const stays = connection();
    const [a, b, c] = [requestOn(gone), requestOn(gone), requestOn(stays)];
    for (const request of [a, b, c]) admit(gate, request);
    gone.destroyed = true;
    gone.emit('close');
    expect(gate.size).toBe(1);
    release(gate, a);
    expect(gate.size).toBe(1);
    // A request that reaches the gate on a connection already closed is not counted: nothing would free it.
    const closedUnseen = Object.assign(connection(), { destroyed: true });
    expect([admit(gate, requestOn(gone)), admit(gate, requestOn(closedUnseen))]).toEqual([undefined, undefined]);
    expect(gate.size).toBe(1);
    release(gate, c);
    expect(gate.size).toBe(0);
  });

  it('listens once per connection, not once per request', () => {
    const gate = new InFlightGate(10);
    const socket = connection();
    for (let i = 0; i < 5; i++) {
      const request = requestOn(socket);
      admit(gate, request);
      release(gate, request);
    }
    expect(socket.listenerCount('close')).toBe(1);
  });
});
