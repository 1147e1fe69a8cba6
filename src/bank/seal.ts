/**
 * Sealed objects: `[0x01 version][12-byte random nonce][AES-256-GCM ciphertext][16-byte tag]`, the
 * object's key string as associated data (a blob copied to another key does not open). The AEAD's
 * plaintext is `[0x00 raw | 0x01 zstd] + payload`: zstd level 3, kept raw unless it saves 2%.
 * Synchronous and pure but for the nonce; `seal-pool.ts` runs these in worker threads.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { decompress } from 'zstd-napi';
import { CCtx, DCtx, compressBound, getFrameContentSize } from 'zstd-napi/binding';
import { FerryError } from '../errors';

const VERSION = 0x01;
const NONCE = 12;
const TAG = 16;
const RAW = 0x00;
const ZSTD = 0x01;
export const ZSTD_LEVEL = 3;
/** Overhead of a sealed object beyond its (possibly compressed) payload. */
export const SEAL_OVERHEAD = 1 + NONCE + 1 + TAG;

/**
 * One compression context and output buffer per thread, reused: seal is synchronous, and a fresh
 * buffer per chunk costs a page fault per 4 KiB where memory is slow to map (measured: a third of
 * the put path's CPU on this project's test machines).
 */
let cctx: CCtx | undefined;
let scratch = Buffer.alloc(0);

/** Bytes enciphered or deciphered per call: small pieces come from malloc's free lists, not fresh mappings per chunk. */
const PIECE = 64 * 1024;

/** Bytes of each of the three samples `looksIncompressible` tries. */
const SAMPLE = 16 * 1024;

/**
 * True when samples at the start, middle and end of `plain` each save under 2% with zstd: media,
 * archives and encrypted files, which zstd would otherwise scan whole for nothing (more than half
 * of a typical volume's bytes). A chunk with any compressible sample is compressed whole.
 */
export function looksIncompressible(plain: Buffer, ctx: CCtx, out: Buffer): boolean {
  if (plain.length < 8 * SAMPLE) return false;
  for (const at of [0, (plain.length - SAMPLE) >> 1, plain.length - SAMPLE]) {
    const n = ctx.compress(out, plain.subarray(at, at + SAMPLE), 1);
    if (n <= SAMPLE * 0.98) return false;
  }
  return true;
}

/** `[flag] + payload` as the AEAD's plaintext: zstd unless that saves less than 2%. */
function frame(plain: Buffer): Buffer[] {
  if (plain.length >= 64) {
    const bound = compressBound(plain.length) + 1;
    if (scratch.length < bound) scratch = Buffer.allocUnsafe(Math.max(bound, 4 * 1024 * 1024 + 65536));
    cctx ??= new CCtx();
    if (looksIncompressible(plain, cctx, scratch)) return [Buffer.from([RAW]), plain];
    const n = cctx.compress(scratch.subarray(1), plain, ZSTD_LEVEL);
    if (n <= plain.length * 0.98) {
      scratch[0] = ZSTD;
      return [scratch.subarray(0, 1 + n)];
    }
  }
  return [Buffer.from([RAW]), plain];
}

/** A chunk's id: HMAC-SHA256 of its plaintext under the bank's chunk-id key, hex. */
export function keyedId(idKey: Buffer, plain: Buffer): string {
  return createHmac('sha256', idKey).update(plain).digest('hex');
}

/**
 * Seals `plain` for the object key `ad` with the bank's seal key. With `into` long enough, the sealed
 * object is written into it (a view of it is returned), else into a new buffer; `into` may be the
 * very buffer `plain` lies in, from its start. The payload is enciphered in pieces (Node's cipher
 * returns a fresh buffer per call: a whole chunk's would be a fresh mapping of memory per chunk),
 * each written only once the piece after it is enciphered, and the header last: a write never
 * lands on plaintext not yet read.
 */
export function seal(key: Buffer, plain: Buffer, ad: string, into?: Buffer): Buffer {
  const nonce = randomBytes(NONCE);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(Buffer.from(ad, 'utf8'));
  const parts = frame(plain);
  const payload = parts.reduce((n, b) => n + b.length, 0);
  const size = 1 + NONCE + payload + TAG;
  const out = into && into.length >= size ? into.subarray(0, size) : Buffer.allocUnsafe(size);
  let at = 1 + NONCE;
  let pending: Buffer | undefined;
  for (const part of parts) {
    for (let from = 0; from < part.length; from += PIECE) {
      const piece = cipher.update(part.subarray(from, Math.min(part.length, from + PIECE)));
      if (pending) at += pending.copy(out, at);
      pending = piece;
    }
  }
  if (pending) at += pending.copy(out, at);
  at += cipher.final().copy(out, at);
  if (at !== 1 + NONCE + payload) throw new FerryError('INTERNAL', `sealing ${ad} made ${at - 1 - NONCE} bytes of ciphertext for ${payload}`);
  out[0] = VERSION;
  nonce.copy(out, 1);
  cipher.getAuthTag().copy(out, at);
  return out;
}

/** A zstd payload up to this size is deciphered into the thread's reused buffer before it is decompressed. */
const SCRATCH_MAX = 8 * 1024 * 1024;
const MiB = 1024 * 1024;
let dctx: DCtx | undefined;
let payloadScratch = Buffer.alloc(0);

/** Where `openSealed` writes a plaintext: `take(n)` gives a buffer of at least n bytes. */
export type PlainBuffers = (bytes: number) => Buffer;

const freshBuffers: PlainBuffers = (n) => Buffer.allocUnsafe(n);

/**
 * Opens what `seal` made for the same key `ad`; BANK_CORRUPT (naming `ad` and `where`) when it does
 * not. The plaintext is written into a buffer from `take` (by default a new one) and returned as a
 * view of it: a caller that reuses its buffers (a restore's seal threads) makes no fresh memory per
 * chunk. Decipher and decompress write in small pieces or into reused memory, never a second copy
 * of the whole object; nothing is returned before the AEAD tag checks.
 */
export function openSealed(key: Buffer, sealed: Buffer, ad: string, where: string, take: PlainBuffers = freshBuffers): Buffer {
  const corrupt = (why: string, cause?: unknown): FerryError => new FerryError(
    'BANK_CORRUPT',
    `object ${ad} of bank ${where} does not open (${why}); run ferry bank check to see what it breaks`,
    { cause, details: { object: ad } },
  );
  if (sealed.length < 1 + NONCE + TAG + 1) throw corrupt(`${sealed.length} bytes is too short`);
  if (sealed[0] !== VERSION) throw corrupt(`unknown seal version ${sealed[0]}`);
  const payloadLength = sealed.length - SEAL_OVERHEAD;
  let flag: number;
  let payload: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(1, 1 + NONCE));
    decipher.setAAD(Buffer.from(ad, 'utf8'));
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG));
    flag = decipher.update(sealed.subarray(1 + NONCE, 2 + NONCE))[0];
    // A raw payload is the plaintext: deciphered straight into the caller's buffer. A zstd one goes
    // to reused scratch memory first (a fresh buffer when it is very large).
    if (flag === RAW) payload = take(payloadLength).subarray(0, payloadLength);
    else if (payloadLength <= SCRATCH_MAX) {
      if (payloadScratch.length < payloadLength) payloadScratch = Buffer.allocUnsafe(Math.ceil(payloadLength / MiB) * MiB);
      payload = payloadScratch.subarray(0, payloadLength);
    } else payload = Buffer.allocUnsafe(payloadLength);
    let at = 0;
    for (let from = 2 + NONCE, end = sealed.length - TAG; from < end; from += PIECE) {
      at += decipher.update(sealed.subarray(from, Math.min(end, from + PIECE))).copy(payload, at);
    }
    at += decipher.final().copy(payload, at);
    if (at !== payloadLength) throw new Error(`deciphered ${at} bytes of ${payloadLength}`);
  } catch (err) {
    throw corrupt('it fails authentication: damaged, moved from another key, or sealed with another key', err);
  }
  if (flag === RAW) return payload;
  if (flag === ZSTD) {
    let size: number | null;
    try {
      size = getFrameContentSize(payload);
    } catch (err) {
      throw corrupt('its zstd payload has no frame header', err);
    }
    // seal() compresses in one call, which records the size in the frame; without it (or past any
    // chunk's size), zstd sizes the output itself.
    if (size === null || size > SCRATCH_MAX) {
      try {
        return decompress(payload);
      } catch (err) {
        throw corrupt('its zstd payload does not decompress', err);
      }
    }
    const out = take(size).subarray(0, size);
    let n: number;
    try {
      dctx ??= new DCtx();
      n = dctx.decompress(out, payload);
    } catch (err) {
      throw corrupt('its zstd payload does not decompress', err);
    }
    if (n !== size) throw corrupt(`its zstd payload holds ${n} bytes, its frame says ${size}`);
    return out;
  }
  throw corrupt(`unknown payload flag ${flag}`);
}
