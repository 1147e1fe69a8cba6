/**
 * How much each stage of a dataset stream buffers (ssh channel, envelope, counters). Node's default
 * of 16 KiB is half an ssh packet: every packet would pause and resume the channel, and a paused
 * channel holds back its window, so the sender waits a round trip again and again.
 */
export const STREAM_BUFFER_BYTES = 1024 * 1024;

/** Options for a Transform or PassThrough on a dataset stream's path. */
export const streamBuffers = { writableHighWaterMark: STREAM_BUFFER_BYTES, readableHighWaterMark: STREAM_BUFFER_BYTES } as const;
