/**
 * Seals and opens objects for one bank's seal key. `InlineSealer` does it on the calling thread;
 * `seal-pool.ts` spreads the work over worker threads (zstd and AES-GCM off the event loop).
 */
import { keyedId, openSealed, seal } from './seal';

export interface Sealer {
  /** `plain` sealed for object key `ad`. */
  seal(plain: Buffer, ad: string): Promise<Buffer>;
  /** A buffer of at least `bytes` to fill and give to sealInput (reused memory). */
  takeInput(bytes: number): Buffer;
  /**
   * Like seal, for the first `length` bytes of `input`, a buffer from takeInput that the sealer owns
   * from now on (the caller never touches it again): it goes to a thread without a copy, and the
   * sealed bytes may come back in it. Call `release` once done with `sealed`.
   */
  sealInput(input: Buffer, length: number, ad: string): Promise<{ sealed: Buffer; release: () => void }>;
  /** Gives back a buffer from takeInput that was not sealed after all. */
  giveInput(input: Buffer): void;
  /** The plaintext of a sealed object of key `ad`; BANK_CORRUPT when it does not open. */
  open(sealed: Buffer, ad: string): Promise<Buffer>;
  /**
   * Like open, with the plaintext's keyed id (HMAC-SHA256 under `idKey`, hex) worked out beside it:
   * the caller checks it. It reads `sealed` until the promise settles (a thread reads a shared
   * buffer where it lies; other bytes it copies at the call): the caller keeps them unchanged till then.
   */
  openAndHash(sealed: Buffer, ad: string, idKey: Buffer): Promise<{ plain: Buffer; id: string }>;
  /**
   * Gives back a plaintext openAndHash returned, once nothing refers to it any more: its memory is
   * opened into again (a restore's chunks), where it would otherwise wait for the collector. With
   * threads the buffer is transferred away: a view kept by mistake reads as empty, never as
   * another chunk's bytes.
   */
  giveOutput(plain: Buffer): void;
  /** Frees threads, if any. */
  close(): Promise<void>;
}

export class InlineSealer implements Sealer {
  constructor(private readonly key: Buffer, private readonly url: string) {}
  async seal(plain: Buffer, ad: string): Promise<Buffer> {
    return seal(this.key, plain, ad);
  }
  takeInput(bytes: number): Buffer {
    return Buffer.allocUnsafe(bytes);
  }
  async sealInput(input: Buffer, length: number, ad: string): Promise<{ sealed: Buffer; release: () => void }> {
    return { sealed: seal(this.key, input.subarray(0, length), ad), release: () => undefined };
  }
  giveInput(): void {}
  async open(sealed: Buffer, ad: string): Promise<Buffer> {
    return openSealed(this.key, sealed, ad, this.url);
  }
  async openAndHash(sealed: Buffer, ad: string, idKey: Buffer): Promise<{ plain: Buffer; id: string }> {
    const plain = openSealed(this.key, sealed, ad, this.url);
    return { plain, id: keyedId(idKey, plain) };
  }
  giveOutput(): void {}
  async close(): Promise<void> {}
}
