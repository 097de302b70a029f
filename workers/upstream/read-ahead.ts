/**
 * How far a relayed stream may run ahead of its client. Reading ahead lets a generation finish (and
 * be settled with its exact usage) even when a client vanished without the runtime cancelling the
 * response's stream (seen under `wrangler dev`, whose proxy does not pass disconnects on), instead
 * of stalling on backpressure until the reservation's alarm. A slow client still bounds the buffer.
 */
export const READ_AHEAD_BYTES = 1 << 20;
